"""Feature-based zero-shot baselines: DeViSE-style projection and CADA-VAE.

Both work on pre-extracted skeleton features (N, D) and sentence-level class text
embeddings (:class:`~zeroskel.methods.base.ClassTexts`), and follow the
:class:`~zeroskel.methods.base.ZeroShotMethod` interface: ``fit`` on seen-class features,
``score`` any set of classes (unseen only for ZSL, all classes for GZSL).

* :class:`DeViSE` (Frome et al., NeurIPS 2013, as used for skeletons by SynSE / PURLS):
  a linear map (or small MLP) from skeleton features into the text space, trained with a
  softmax cross-entropy over scaled cosines to the seen-class texts or with DeViSE's hinge
  ranking loss; a test feature is scored by its cosine to each candidate class text.
* :class:`CADAVAE` (Schonfeld et al., CVPR 2019): one VAE per modality, tied by
  cross-reconstruction and a Wasserstein distance between the two posteriors, with the
  paper's linear warm-ups of the KL, cross-reconstruction and distance weights; then a
  softmax classifier on latent codes (seen classes: samples from the skeleton VAE's
  posteriors of training samples, unseen classes: samples from the text VAE's posterior of
  the class text), so the same model serves ZSL and GZSL.

This module also holds the small training helpers shared with
:mod:`zeroskel.methods.smie` (seeding, device, warm-up + cosine schedule, batching).

Determinism: every random draw inside ``fit`` / ``score`` happens under
``torch.random.fork_rng`` seeded from ``seed`` (the caller's global RNG state is left
untouched), so two fits with the same seed, data and device give identical scores.
"""
from __future__ import annotations

import contextlib
import inspect
import math
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from .base import ClassTexts, ZeroShotMethod, check_classes, check_features


# ---------------------------------------------------------------------------------------
# shared helpers (also used by smie.py)
# ---------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` from a string, with a ConfigError naming the ``device`` argument."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device: cannot parse {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available")
    return dev


@contextlib.contextmanager
def cpu_threads(num_threads: int | None, device: torch.device):
    """Limit torch's intra-op CPU threads inside the block (restored after).

    These models are small: on a busy machine, several OpenMP threads per tiny matmul spend
    more time synchronising than computing (a 2-thread fit measured 10-50x slower than a
    1-thread fit with 8 busy processes on 2 cores). ``None`` leaves torch's setting alone.
    """
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ConfigError(f"num_threads must be a positive int or None, got {num_threads!r}")
    if num_threads is None or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Run the block with torch's RNG seeded to ``seed``, restoring the caller's state after."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps (never 0, unlike the SMIE
    reference whose first epoch runs at lr 0), then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def batches(n: int, batch_size: int, gen: torch.Generator, shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index batches over ``n`` samples (last one may be short; never empty)."""
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    bs = max(1, min(batch_size, n))
    for i in range(0, n, bs):
        yield order[i:i + bs]


def normalized_text(texts: ClassTexts, center_on: np.ndarray | None = None) -> np.ndarray:
    """(C, D) L2-normalised sentence embeddings; optionally centred first on the mean of the
    rows ``center_on`` (e.g. the seen classes), which removes the component all sentence
    embeddings share and spreads the classes apart."""
    t = texts.sentence.astype(np.float32)
    if not np.isfinite(t).all():
        raise DataError("class texts: 'sentence' contains NaN or inf")
    # a zero embedding is a broken text whether or not centring would move it off zero
    _check_nonzero(np.linalg.norm(t, axis=1), "zero sentence embedding")
    if center_on is not None:
        t = t - t[center_on].mean(axis=0, keepdims=True)
    norm = np.linalg.norm(t, axis=1, keepdims=True)
    _check_nonzero(norm[:, 0], "sentence embedding equal to the mean of the centring classes")
    return t / norm


def _check_nonzero(norm: np.ndarray, what: str) -> None:
    if (norm < 1e-12).any():
        raise DataError(f"class texts: {what} for class ids {np.flatnonzero(norm < 1e-12).tolist()}")


def mlp(sizes: Sequence[int], dropout: float = 0.0, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ``act`` (and dropout) in between."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def as_number(name: str, value, kind: type = float):
    """``kind(value)`` for a numeric constructor argument; ConfigError naming it otherwise.

    Accepts numeric strings (YAML 1.1 reads ``3e-4`` as a string) but not bools, NaN or
    infinities (no option of the feature methods means anything with them: ``lr=inf`` trained
    to NaN and ``epochs=inf`` failed inside ``int``).
    """
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        if not math.isfinite(float(value)):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        out = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if kind is int and out != float(value):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    return out


def as_widths(who: str, name: str, value, length: int | None = None) -> tuple[int, ...]:
    """Layer widths (a list of integers >= 1, of ``length`` entries when given) as a tuple;
    ConfigError naming ``who: name`` otherwise (a bare number, a string, a width 0 or -3)."""
    shape = f"{length} layer widths" if length is not None else "a list of layer widths"
    msg = f"{who}: {name} must be {shape} (integers >= 1, e.g. {[256] * (length or 2)}), got {value!r}"
    out = _numbers(value, name, int, msg)
    if any(v < 1 for v in out) or (length is not None and len(out) != length):
        raise ConfigError(msg)
    return out


def _numbers(value, name: str, kind: type, msg: str) -> tuple:
    """A list/tuple/array of numbers as a tuple of ``kind``; ConfigError(``msg``) for anything
    else (a bare number, a string, a mapping, a non-numeric entry)."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple, np.ndarray)):
        raise ConfigError(msg)
    try:
        return tuple(as_number(name, v, kind) for v in value)
    except ConfigError:
        raise ConfigError(msg) from None


def as_flag(who: str, name: str, value) -> bool:
    """A true/false option; ConfigError naming ``who: name`` for anything else (``bool('no')``
    would be True)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigError(f"{who}: {name} must be true or false, got {value!r}")


def check_run_args(who: str, seed, device, num_threads) -> int:
    """The seed as an int in [0, 2**64) (what torch's and numpy's generators take), checked with
    ``device`` and ``num_threads`` when the method is built: a negative or huge seed used to fail
    inside numpy or torch (CADA-VAE's ``seed=-1`` at the first ``score``), a bad device or thread
    count only at ``fit``."""
    # an int as it is: as_number goes through float, which rounds seeds above 2**53
    value = int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) \
        else as_number("seed", seed, int)
    if not 0 <= value < 2 ** 64:
        raise ConfigError(f"{who}: seed must be an integer in [0, 2**64), got {seed!r}")
    if num_threads is not None and (isinstance(num_threads, (bool, np.bool_))
                                    or not isinstance(num_threads, (int, np.integer)) or num_threads < 1):
        raise ConfigError(f"{who}: num_threads must be a positive int or None, got {num_threads!r}")
    resolve_device(device)
    return value


def check_positive(who: str = "", **kw) -> None:
    """ConfigError naming the first of ``kw`` that is not > 0 (prefixed ``who: `` if given)."""
    for k, v in kw.items():
        if as_number(k, v) <= 0:
            raise ConfigError(f"{who + ': ' if who else ''}{k} must be > 0, got {v!r}")


class TorchMethod(ZeroShotMethod):
    """Common plumbing of the torch-based feature methods (params, fitted checks, inputs)."""

    def get_params(self) -> dict:
        """Constructor arguments and their current values (JSON-able), scikit-learn style."""
        sig = inspect.signature(type(self).__init__)
        out = {}
        for k in sig.parameters:
            if k == "self":
                continue
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, tuple) else (str(v) if isinstance(v, torch.device) else v)
        return out

    @property
    def hparams(self) -> dict:
        """Same as :meth:`get_params` (the key the evaluation protocol records)."""
        return self.get_params()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _set_training(self, *, epochs, batch_size, lr, weight_decay, warmup_epochs, seed, device,
                      num_threads) -> None:
        """Store the optimisation arguments every torch method shares, as numbers."""
        self.epochs = as_number('epochs', epochs, int)
        self.batch_size = as_number('batch_size', batch_size, int)
        self.lr = as_number('lr', lr, float)
        self.weight_decay = as_number('weight_decay', weight_decay, float)
        self.warmup_epochs = as_number('warmup_epochs', warmup_epochs, int)
        self.seed = check_run_args(self.name, seed, device, num_threads)
        self.device = device
        self.num_threads = num_threads

    def fit(self, feats: np.ndarray, labels: np.ndarray, texts: ClassTexts, seen_classes) -> "TorchMethod":
        """:meth:`ZeroShotMethod.fit` (``feats`` (N, D), ``labels`` (N,), ``seen_classes`` (S,)) with
        this method's CPU thread count."""
        self._fitted = False                      # a failed fit leaves the method unfitted
        with cpu_threads(self.num_threads, resolve_device(self.device)):
            super().fit(feats, labels, texts, seen_classes)
        self._fitted = True
        return self

    def num_parameters(self) -> int:
        """Trainable parameters of the fitted networks (CADA-VAE: both VAEs, no classifier)."""
        self._check_fitted()
        return sum(p.numel() for name in ("net_", "vx_", "vt_") if hasattr(self, name)
                   for p in getattr(self, name).parameters())

    def score(self, feats: np.ndarray, classes) -> np.ndarray:
        """(N, K) scores of ``feats`` (N, D) against ``classes`` (K ids, any order); higher =
        more likely."""
        feats, classes = self._score_inputs(feats, classes)
        with cpu_threads(self.num_threads, resolve_device(self.device)), torch.no_grad():
            return self._score(feats, classes)

    def _score(self, feats: np.ndarray, classes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not getattr(self, "_fitted", False):
            raise ConfigError(f"{self.name}: call fit() before score()")

    def _score_inputs(self, feats: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        feats = check_features(feats, f"{self.name}.score", dim=self.feature_dim)
        classes = check_classes(classes, self.texts_.num_classes, f"{self.name}.score classes")
        return feats, classes

    def _check_seen(self, seen: np.ndarray, need: int) -> None:
        if len(seen) < need:
            raise ConfigError(f"{self.name}.fit: needs at least {need} seen classes, got {len(seen)}")


def _standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


# ---------------------------------------------------------------------------------------
# DeViSE
# ---------------------------------------------------------------------------------------
class DeViSE(TorchMethod):
    """Projection of skeleton features into the text space, scored by cosine.

    Features are standardised with the training mean / std, projected by a linear map
    (``hidden=()``) or an MLP, and L2-normalised; class texts are L2-normalised sentence
    embeddings. Score of sample i for class k = cos(P(x_i), t_k), shape (N, K).

    Args:
        hidden: hidden layer widths of the projection; ``()`` = linear map.
        loss: ``"hinge"`` (DeViSE ranking loss: sum over other seen classes j of
            max(0, margin - cos_y + cos_j), averaged over the batch; the default, better on
            held-out seen data) or ``"softmax"`` (cross-entropy over cos / temperature against
            the seen-class texts).
        temperature: softmax temperature on cosines (``loss="softmax"``).
        margin: ranking margin on cosines (``loss="hinge"``).
        dropout: dropout between hidden layers and on the input.
        center_text: centre text embeddings on the seen-class mean before normalising.
        epochs, batch_size, lr, weight_decay, warmup_epochs: Adam(W) with linear warm-up and
            cosine decay, stepped per iteration.
        seed: seed of all random draws inside fit.
        device: torch device the model trains and scores on.
        num_threads: torch intra-op CPU threads during fit / score (``None``: torch's setting).
    """

    name = "devise"

    def __init__(self, hidden: Sequence[int] = (), loss: str = "hinge", temperature: float = 0.1,
                 margin: float = 0.2, dropout: float = 0.0, center_text: bool = False,
                 epochs: int = 60, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-4,
                 warmup_epochs: int = 5, seed: int = 0, device: str | torch.device = "cpu",
                 num_threads: int | None = 1) -> None:
        if loss not in ("softmax", "hinge"):
            raise ConfigError(f"devise: loss must be 'softmax' or 'hinge', got {loss!r}")
        check_positive("devise", temperature=temperature, margin=margin, epochs=epochs, batch_size=batch_size,
                       lr=lr)
        if not 0 <= as_number("dropout", dropout) < 1:
            raise ConfigError(f"devise: dropout must be in [0, 1), got {dropout!r}")
        self.hidden = as_widths("devise", "hidden", hidden)
        self.loss = loss
        self.temperature = as_number('temperature', temperature, float)
        self.margin = as_number('margin', margin, float)
        self.dropout = as_number('dropout', dropout, float)
        self.center_text = as_flag("devise", "center_text", center_text)
        self._set_training(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                           warmup_epochs=warmup_epochs, seed=seed, device=device, num_threads=num_threads)

    def _fit(self, feats, labels, texts, seen) -> None:
        self._check_seen(seen, 2)
        dev = resolve_device(self.device)
        self.mean_, self.std_ = _standardizer(feats)
        text = normalized_text(texts, seen if self.center_text else None)
        self.text_ = torch.from_numpy(text).to(dev)
        x = torch.from_numpy((feats - self.mean_) / self.std_).to(dev)
        # labels -> positions among the seen classes (targets of the softmax over seen texts)
        pos = np.searchsorted(seen, labels)
        y = torch.from_numpy(pos).to(dev)
        t_seen = self.text_[torch.from_numpy(seen).to(dev)]
        with seeded(self.seed, dev):
            gen = torch.Generator().manual_seed(self.seed)
            drop = [nn.Dropout(self.dropout)] if self.dropout > 0 else []
            self.net_ = nn.Sequential(*drop, mlp([x.shape[1], *self.hidden, text.shape[1]], self.dropout)).to(dev)
            opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            steps_per_epoch = math.ceil(len(x) / max(1, min(self.batch_size, len(x))))
            total, warm = self.epochs * steps_per_epoch, self.warmup_epochs * steps_per_epoch
            step = 0
            self.net_.train()
            for _ in range(self.epochs):
                for idx in batches(len(x), self.batch_size, gen):
                    for g in opt.param_groups:
                        g["lr"] = self.lr * warmup_cosine(step, total, warm)
                    idx = idx.to(dev)
                    cos = F.normalize(self.net_(x[idx]), dim=1) @ t_seen.T   # (B, S)
                    if self.loss == "softmax":
                        loss = F.cross_entropy(cos / self.temperature, y[idx])
                    else:
                        cos_y = cos.gather(1, y[idx, None])
                        viol = (self.margin - cos_y + cos).clamp_min(0)
                        viol = viol.scatter(1, y[idx, None], 0.0)        # no term for the true class
                        loss = viol.sum(1).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
        self.net_.eval()

    @torch.no_grad()
    def embed(self, feats: np.ndarray) -> np.ndarray:
        """(N, D_text) L2-normalised projections of ``feats`` (N, D)."""
        self._check_fitted()
        feats = check_features(feats, f"{self.name}.embed", dim=self.feature_dim)
        dev = resolve_device(self.device)
        x = torch.from_numpy((feats - self.mean_) / self.std_).to(dev)
        return F.normalize(self.net_(x), dim=1).cpu().numpy()

    def _score(self, feats: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """(N, K) cosines between the projected ``feats`` (N, D) and the texts of ``classes``."""
        z = torch.from_numpy(self.embed(feats)).to(self.text_.device)
        return (z @ self.text_[torch.from_numpy(classes).to(z.device)].T).cpu().numpy()


# ---------------------------------------------------------------------------------------
# CADA-VAE
# ---------------------------------------------------------------------------------------
class _VAE(nn.Module):
    """Gaussian encoder (mu, logvar) + deterministic decoder for one modality."""

    def __init__(self, dim: int, enc_hidden: Sequence[int], dec_hidden: Sequence[int], latent: int) -> None:
        super().__init__()
        self.enc = mlp([dim, *enc_hidden, 2 * latent])
        self.dec = mlp([latent, *dec_hidden, dim])
        self.latent = latent

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return h[:, :self.latent], h[:, self.latent:]


def _sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def _ramp(frac: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, linear in between (fractions of training)."""
    if frac <= start:
        return 0.0
    if frac >= end:
        return 1.0
    return (frac - start) / (end - start)


class CADAVAE(TorchMethod):
    """Cross- and Distribution-Aligned VAEs (Schonfeld et al., CVPR 2019) on skeleton features.

    Training pairs each seen sample's standardised feature x (D,) with its class text t
    (L2-normalised and scaled by sqrt(D_text) so that both modalities have unit per-dimension
    scale). Loss per pair, averaged over the batch::

        |x - Dx(zx)|_1 + |t - Dt(zt)|_1                                (reconstruction)
        - beta  * (KL(qx || N(0,I)) + KL(qt || N(0,I)))                 (beta: warm-up)
        + cross * (|x - Dx(zt)|_1 + |t - Dt(zx)|_1)                     (cross: warm-up)
        + dist  * W2(qx, qt)                                            (dist: warm-up)

    with W2 the 2-Wasserstein distance of the diagonal Gaussians. Weights ramp linearly from 0
    to their maximum between the given fractions of training (the paper's epochs 0-93, 21-75,
    6-22 of 100).

    Scoring ``classes``: a linear softmax classifier on latent codes is trained for that class
    set (cached per set, seeded): a seen class gets ``n_seen_latent`` samples from the skeleton
    posteriors of its training samples, an unseen class ``n_unseen_latent`` samples from the
    text posterior of its class text. Test features are encoded to the skeleton posterior
    mean; score = classifier logits (N, K).

    Args:
        latent_dim: latent size (paper: 64).
        feat_hidden: (encoder, decoder) hidden widths of the skeleton VAE.
        text_hidden: (encoder, decoder) hidden widths of the text VAE.
        epochs, batch_size, lr: VAE training (Adam with amsgrad, as the paper).
        beta_max, beta_warmup: KL weight and its (start, end) warm-up fractions.
        cross_max, cross_warmup: cross-reconstruction weight and warm-up fractions.
        distance_max, distance_warmup: distribution-alignment weight and warm-up fractions.
        n_seen_latent, n_unseen_latent: classifier training samples per seen / unseen class.
        cls_epochs, cls_lr, cls_batch_size: softmax classifier training (Adam). The paper's
            lr 1e-3 under-trains the classifier with the few hundred steps small datasets give;
            1e-2 was better on held-out seen data (benchmarks/select_feature_baselines.py).
        center_text: centre text embeddings on the seen-class mean before normalising.
        seed: seed of all random draws in fit and of each classifier's training.
        device: torch device.
        num_threads: torch intra-op CPU threads during fit / score (``None``: torch's setting).
    """

    name = "cada_vae"

    def __init__(self, latent_dim: int = 64, feat_hidden: Sequence[int] = (256, 256),
                 text_hidden: Sequence[int] = (256, 256), epochs: int = 100, batch_size: int = 50,
                 lr: float = 1e-3, beta_max: float = 0.25, beta_warmup: Sequence[float] = (0.0, 0.93),
                 cross_max: float = 2.37, cross_warmup: Sequence[float] = (0.21, 0.75),
                 distance_max: float = 8.13, distance_warmup: Sequence[float] = (0.06, 0.22),
                 n_seen_latent: int = 200, n_unseen_latent: int = 400, cls_epochs: int = 20,
                 cls_lr: float = 1e-2, cls_batch_size: int = 32, center_text: bool = False,
                 seed: int = 0, device: str | torch.device = "cpu", num_threads: int | None = 1) -> None:
        check_positive("cada_vae", latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, lr=lr,
                       n_seen_latent=n_seen_latent, n_unseen_latent=n_unseen_latent,
                       cls_epochs=cls_epochs, cls_lr=cls_lr, cls_batch_size=cls_batch_size)
        for k, v in (("beta_warmup", beta_warmup), ("cross_warmup", cross_warmup),
                     ("distance_warmup", distance_warmup)):
            msg = f"cada_vae: {k} must be (start, end) with 0 <= start < end <= 1, got {v!r}"
            v = _numbers(v, k, float, msg)
            if len(v) != 2 or not 0 <= v[0] < v[1] <= 1:
                raise ConfigError(msg)
        self.latent_dim = as_number('latent_dim', latent_dim, int)
        self.feat_hidden = as_widths("cada_vae", "feat_hidden (encoder, decoder)", feat_hidden, 2)
        self.text_hidden = as_widths("cada_vae", "text_hidden (encoder, decoder)", text_hidden, 2)
        self.epochs = as_number('epochs', epochs, int)
        self.batch_size = as_number('batch_size', batch_size, int)
        self.lr = as_number('lr', lr, float)
        self.beta_max = as_number('beta_max', beta_max, float)
        self.beta_warmup = tuple(float(v) for v in beta_warmup)
        self.cross_max = as_number('cross_max', cross_max, float)
        self.cross_warmup = tuple(float(v) for v in cross_warmup)
        self.distance_max = as_number('distance_max', distance_max, float)
        self.distance_warmup = tuple(float(v) for v in distance_warmup)
        self.n_seen_latent = as_number('n_seen_latent', n_seen_latent, int)
        self.n_unseen_latent = as_number('n_unseen_latent', n_unseen_latent, int)
        self.cls_epochs = as_number('cls_epochs', cls_epochs, int)
        self.cls_lr = as_number('cls_lr', cls_lr, float)
        self.cls_batch_size = as_number('cls_batch_size', cls_batch_size, int)
        self.center_text = as_flag("cada_vae", "center_text", center_text)
        self.seed = check_run_args("cada_vae", seed, device, num_threads)
        self.device = device
        self.num_threads = num_threads

    # ------------------------------------------------------------------ training
    def _fit(self, feats, labels, texts, seen) -> None:
        dev = resolve_device(self.device)
        self.mean_, self.std_ = _standardizer(feats)
        text = normalized_text(texts, seen if self.center_text else None) * math.sqrt(texts.sentence.shape[1])
        self.text_ = torch.from_numpy(text.astype(np.float32)).to(dev)
        x = torch.from_numpy((feats - self.mean_) / self.std_).to(dev)
        y = torch.from_numpy(labels).to(dev)
        self.train_x_, self.train_y_ = x, y
        self._classifiers: dict[tuple[int, ...], nn.Linear] = {}
        with seeded(self.seed, dev):
            gen = torch.Generator().manual_seed(self.seed)
            self.vx_ = _VAE(x.shape[1], self.feat_hidden[:1], self.feat_hidden[1:], self.latent_dim).to(dev)
            self.vt_ = _VAE(text.shape[1], self.text_hidden[:1], self.text_hidden[1:], self.latent_dim).to(dev)
            params = list(self.vx_.parameters()) + list(self.vt_.parameters())
            opt = torch.optim.Adam(params, lr=self.lr, amsgrad=True)
            steps_per_epoch = math.ceil(len(x) / max(1, min(self.batch_size, len(x))))
            total = self.epochs * steps_per_epoch
            step = 0
            for _ in range(self.epochs):
                for idx in batches(len(x), self.batch_size, gen):
                    frac = step / total
                    beta = self.beta_max * _ramp(frac, *self.beta_warmup)
                    cross = self.cross_max * _ramp(frac, *self.cross_warmup)
                    dist = self.distance_max * _ramp(frac, *self.distance_warmup)
                    idx = idx.to(dev)
                    loss = self._vae_loss(x[idx], self.text_[y[idx]], beta, cross, dist)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
        self.vx_.eval(); self.vt_.eval()

    def _vae_loss(self, xb, tb, beta, cross, dist) -> torch.Tensor:
        mx, lx = self.vx_.encode(xb)
        mt, lt = self.vt_.encode(tb)
        zx, zt = _sample(mx, lx), _sample(mt, lt)
        l1 = lambda a, b: (a - b).abs().sum(1)  # noqa: E731
        recon = l1(xb, self.vx_.dec(zx)) + l1(tb, self.vt_.dec(zt))
        kl = lambda m, lv: -0.5 * (1 + lv - m.pow(2) - lv.exp()).sum(1)  # noqa: E731
        kld = kl(mx, lx) + kl(mt, lt)
        cr = l1(xb, self.vx_.dec(zt)) + l1(tb, self.vt_.dec(zx))
        w2 = torch.sqrt(((mx - mt) ** 2).sum(1) + ((torch.exp(0.5 * lx) - torch.exp(0.5 * lt)) ** 2).sum(1) + 1e-12)
        return (recon + beta * kld + cross * cr + dist * w2).mean()

    # ------------------------------------------------------------------ classifier
    def _classifier(self, classes: np.ndarray) -> nn.Linear:
        """Softmax classifier over sorted ``classes``, trained on sampled latent codes."""
        key = tuple(int(c) for c in classes)
        if key in self._classifiers:
            return self._classifiers[key]
        dev = self.train_x_.device
        seen = set(self.seen_classes_.tolist())
        # a distinct, reproducible seed per class set
        seed = int(np.random.SeedSequence([self.seed, *key]).generate_state(1)[0])
        with seeded(seed, dev), torch.no_grad():
            gen = torch.Generator().manual_seed(seed)
            zs, ys = [], []
            for k, c in enumerate(key):
                if c in seen:
                    pool = torch.nonzero(self.train_y_ == c).flatten()
                    pick = pool[torch.randint(len(pool), (self.n_seen_latent,), generator=gen).to(dev)]
                    mu, lv = self.vx_.encode(self.train_x_[pick])
                    n = self.n_seen_latent
                else:
                    n = self.n_unseen_latent
                    mu, lv = self.vt_.encode(self.text_[[c] * n])
                zs.append(_sample(mu, lv))
                ys.append(torch.full((n,), k, dtype=torch.long, device=dev))
            z, y = torch.cat(zs), torch.cat(ys)
        with seeded(seed, dev):
            clf = nn.Linear(self.latent_dim, len(key)).to(dev)
            opt = torch.optim.Adam(clf.parameters(), lr=self.cls_lr, betas=(0.5, 0.999))
            for _ in range(self.cls_epochs):
                for idx in batches(len(z), self.cls_batch_size, gen):
                    idx = idx.to(dev)
                    loss = F.cross_entropy(clf(z[idx]), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
        clf.eval()
        self._classifiers[key] = clf
        return clf

    @torch.no_grad()
    def encode(self, feats: np.ndarray) -> np.ndarray:
        """(N, latent_dim) skeleton-posterior means of ``feats`` (N, D)."""
        self._check_fitted()
        feats = check_features(feats, f"{self.name}.encode", dim=self.feature_dim)
        x = torch.from_numpy((feats - self.mean_) / self.std_).to(self.train_x_.device)
        return self.vx_.encode(x)[0].cpu().numpy()

    def _score(self, feats: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """(N, K) classifier logits of ``feats`` (N, D) over ``classes`` (in the given order)."""
        order = np.argsort(classes)
        with torch.enable_grad():
            clf = self._classifier(classes[order])
        z = torch.from_numpy(self.encode(feats)).to(self.train_x_.device)
        logits = clf(z).cpu().numpy()
        out = np.empty_like(logits)
        out[:, order] = logits
        return out
