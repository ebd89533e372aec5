"""SMIE (Zhou et al., ACM MM 2023): zero-shot recognition by mutual-information estimation.

On pre-extracted skeleton features (the paper's "sota" track, which also starts from frozen
Shift-GCN features). A discriminator T(v, t) = MLP([v; t]) scores (visual, text) pairs and
is trained to maximise the Jensen-Shannon MI estimate (Deep InfoMax style)::

    I(v; t) = E_pos[-softplus(-T(v_i, t_{y_i}))] - E_neg[softplus(T(v', t'))]

with v = LayerNorm(x) (no affine parameters) and t the L2-normalised class text. At test
time a sample is scored against each candidate class k by log sigmoid(T(v, t_k)) and
classified by argmax. Test features get the same LayerNorm as training features; the
reference's ``MI.get_acc`` feeds the raw encoder features to the discriminator (it skips
``self.ln``), a train/test mismatch not reproduced here.

Negatives (``negatives``):

* ``"other_class"`` (default): each sample is paired with the text of a seen class drawn
  uniformly from the classes other than its own, so a negative is never a positive. This
  fixes the reference, whose negatives pair text i with the visual feature of the next
  sample in the batch and are false negatives whenever neighbours share a class (common with
  few classes: 1 in 8 pairs on average for an 8-class split).
* ``"roll"``: the reference behaviour, T(v_{i+1}, t_{y_i}) over the shuffled batch.

Temporal-masking term: the reference also encodes each sequence with its highest-motion
frames dropped and a random subset kept (v1), and adds
``temporal_weight * max(0, margin - (I(v; t) - I(v1; t)))`` so that MI grows with the
frames observed. That needs features of masked *sequences*, which a feature file does not
have: pass them as ``fit(..., masked_feats=...)`` (row i = masked version of row i of
``feats``) to enable the term; without them it is skipped (as the reference's own "sota"
track on pre-extracted features does). ``zeroskel extract --masked 15 20`` makes them: one
masked view per training sample, drawn once (``--masked-seed``) and reused every epoch,
each sample with its own frame subset; the reference draws a new subset at every training
step, the same one for the whole batch.

Optimisation: Adam with a linear warm-up and cosine decay (per iteration). The reference's
lr 1e-5 was set for ~300 iterations per epoch on NTU; small datasets give a handful of
iterations per epoch, so the default lr here is larger.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from .base import ClassTexts, check_features
from .baselines import (TorchMethod, as_flag, as_number, as_widths, batches, check_positive, mlp, normalized_text,
                        resolve_device, seeded, warmup_cosine)


def sample_other_classes(pos: torch.Tensor, num_classes: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """(B, n) class positions drawn uniformly from ``range(num_classes)`` minus each ``pos[b]``.

    Shifting the own position by 1..num_classes-1 (mod num_classes) gives every other class
    the same probability and never the own class.
    """
    shift = torch.randint(1, num_classes, (len(pos), n), generator=gen)
    return (pos[:, None] + shift) % num_classes


class SMIE(TorchMethod):
    """JSD mutual-information discriminator between skeleton features and class texts.

    Args:
        hidden: hidden widths of the discriminator MLP over [v; t] (at least one: a linear
            critic ranks the classes the same way for every sample). The reference uses
            (1024, 512), i.e. 1024 -> 1024 -> 512 -> 1 for 256-d features and 768-d text
            (1.6M parameters, ~25 ms per CPU step); the default (512, 256) is ~3x cheaper
            for CPU runs on small datasets.
        negatives: ``"other_class"`` (default, no false negatives) or ``"roll"`` (reference).
        num_negatives: negatives per sample for ``"other_class"`` (each a different-class text);
            must be 1 for ``"roll"``.
        temporal_weight: weight of the temporal hinge term (reference 0.5); used only when
            ``fit`` gets ``masked_feats``.
        margin: margin of the temporal hinge (reference 0.1).
        center_text: centre text embeddings on the seen-class mean before normalising (off in
            the reference; on by default: chosen with lr 3e-4 on held-out seen data,
            benchmarks/select_feature_baselines.py, and used by every SMIE row of
            benchmarks/RESULTS.md).
        epochs, batch_size, lr, weight_decay, warmup_epochs: Adam, linear warm-up then cosine
            to 0 (reference: 100 epochs, 15 warm-up, batch 128, lr 1e-5, weight decay 0).
        seed: seed of all random draws inside fit.
        device: torch device.
        num_threads: torch intra-op CPU threads during fit / score (``None``: torch's setting).
    """

    name = "smie"

    def __init__(self, hidden: Sequence[int] = (512, 256), negatives: str = "other_class",
                 num_negatives: int = 1, temporal_weight: float = 0.5, margin: float = 0.1,
                 center_text: bool = True, epochs: int = 100, batch_size: int = 64, lr: float = 3e-4,
                 weight_decay: float = 0.0, warmup_epochs: int = 15, seed: int = 0,
                 device: str | torch.device = "cpu", num_threads: int | None = 1) -> None:
        if negatives not in ("other_class", "roll"):
            raise ConfigError(f"smie: negatives must be 'other_class' or 'roll', got {negatives!r}")
        check_positive("smie", epochs=epochs, batch_size=batch_size, lr=lr, num_negatives=num_negatives)
        if as_number("temporal_weight", temporal_weight) < 0 or as_number("warmup_epochs", warmup_epochs) < 0:
            raise ConfigError("smie: temporal_weight and warmup_epochs must be >= 0")
        for key, value in (("temporal_weight", temporal_weight), ("margin", margin)):
            if not math.isfinite(as_number(key, value)):
                # inf / NaN made every loss NaN: the fit ran to the end and scored NaN or garbage
                raise ConfigError(f"smie: {key} must be a finite number, got {value!r}")
        self.hidden = as_widths("smie", "hidden", hidden)
        if not self.hidden:
            # T(v, t) = w_v.v + w_t.t + b: the argmax over classes of w_t.t_k ignores v, so every
            # sample got the same class
            raise ConfigError("smie: hidden must have at least one layer width (e.g. [512, 256]): without "
                              "a hidden layer the critic's class ranking does not depend on the skeleton "
                              f"features, got {hidden!r}")
        self.negatives = negatives
        self.num_negatives = as_number('num_negatives', num_negatives, int)
        if negatives == "roll" and self.num_negatives != 1:
            # the rolled batch gives one negative per sample; the count used to be ignored
            raise ConfigError(f"smie: num_negatives={num_negatives!r} needs negatives='other_class'; "
                              "'roll' (the reference) has one negative per sample")
        self.temporal_weight = as_number('temporal_weight', temporal_weight, float)
        self.margin = as_number('margin', margin, float)
        self.center_text = as_flag("smie", "center_text", center_text)
        self._set_training(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           warmup_epochs=warmup_epochs, seed=seed, device=device, num_threads=num_threads)

    def fit(self, feats: np.ndarray, labels: np.ndarray, texts: ClassTexts, seen_classes,
            masked_feats: np.ndarray | None = None) -> "SMIE":
        """Fit on seen-class ``feats`` (N, D) with ``labels`` (N,).

        ``masked_feats``: optional (N, D) features of the same samples' temporally masked
        sequences; enables the temporal term. Without it the term is skipped.
        """
        if masked_feats is not None:
            feats_arr = check_features(feats, "smie.fit")
            masked_feats = check_features(masked_feats, "smie.fit masked_feats")
            if masked_feats.shape != feats_arr.shape:
                raise DataError(f"smie.fit: masked_feats shape {masked_feats.shape} != feats shape "
                                f"{feats_arr.shape}")
        self._masked = masked_feats
        try:
            return super().fit(feats, labels, texts, seen_classes)
        finally:
            self._masked = None

    def _fit(self, feats, labels, texts, seen) -> None:
        if self.negatives == "other_class":
            self._check_seen(seen, 2)
        dev = resolve_device(self.device)
        self.text_ = torch.from_numpy(normalized_text(texts, seen if self.center_text else None)).to(dev)
        v = self._visual(torch.from_numpy(feats).to(dev))
        v1 = None if self._masked is None else self._visual(torch.from_numpy(self._masked).to(dev))
        self.used_temporal_ = v1 is not None and self.temporal_weight > 0
        y = torch.from_numpy(labels).to(dev)
        seen_t = torch.from_numpy(seen).to(dev)
        pos_of = torch.full((self.texts_.num_classes,), -1, dtype=torch.long, device=dev)
        pos_of[seen_t] = torch.arange(len(seen), device=dev)
        S = len(seen)
        with seeded(self.seed, dev):
            gen = torch.Generator().manual_seed(self.seed)
            self.net_ = mlp([v.shape[1] + self.text_.shape[1], *self.hidden, 1]).to(dev)
            opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            steps_per_epoch = math.ceil(len(v) / max(1, min(self.batch_size, len(v))))
            total, warm = self.epochs * steps_per_epoch, self.warmup_epochs * steps_per_epoch
            step = 0
            self.net_.train()
            self.loss_history_: list[float] = []
            for _ in range(self.epochs):
                ep_loss = 0.0
                for idx in batches(len(v), self.batch_size, gen):
                    for g in opt.param_groups:
                        g["lr"] = self.lr * warmup_cosine(step, total, warm)
                    idx = idx.to(dev)
                    vb, tb = v[idx], self.text_[y[idx]]
                    pos = -F.softplus(-self._t(vb, tb)).mean()
                    if self.negatives == "roll":
                        neg = F.softplus(self._t(torch.roll(vb, -1, 0), tb)).mean()
                    else:
                        # a uniformly drawn seen class other than the sample's own:
                        # shift its position among the seen classes by 1..S-1 (mod S)
                        neg_pos = sample_other_classes(pos_of[y[idx]].cpu(), S, self.num_negatives, gen)
                        neg_cls = seen_t[neg_pos.to(dev)]                                 # (B, n)
                        vn = vb[:, None].expand(-1, self.num_negatives, -1).reshape(-1, vb.shape[1])
                        neg = F.softplus(self._t(vn, self.text_[neg_cls.flatten()])).mean()
                    mi0 = pos - neg
                    loss = -mi0
                    if self.used_temporal_:
                        pos1 = -F.softplus(-self._t(v1[idx], tb)).mean()
                        mi1 = pos1 - neg        # the reference reuses the unmasked negatives
                        loss = loss + self.temporal_weight * F.relu(self.margin - (mi0 - mi1))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                    ep_loss += float(loss.detach()) * len(idx)
                self.loss_history_.append(ep_loss / len(v))
        self.net_.eval()

    @staticmethod
    def _visual(x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[1:])

    def _t(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net_(torch.cat([v, t], dim=1)).squeeze(1)

    def _score(self, feats: np.ndarray, classes: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """(N, K) log sigmoid(T(v_i, t_k)) of ``feats`` (N, D) against ``classes``."""
        dev = self.text_.device
        v = self._visual(torch.from_numpy(feats).to(dev))
        t = self.text_[torch.from_numpy(classes).to(dev)]
        n, k = len(v), len(t)
        out = torch.empty(n * k, device=dev)
        ii = torch.arange(n, device=dev).repeat_interleave(k)
        kk = torch.arange(k, device=dev).repeat(n)
        for s in range(0, n * k, chunk):
            sl = slice(s, s + chunk)
            out[sl] = -F.softplus(-self._t(v[ii[sl]], t[kk[sl]]))
        return out.view(n, k).cpu().numpy()
