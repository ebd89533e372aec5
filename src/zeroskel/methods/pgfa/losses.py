"""Training objectives of PGFA: the symmetric multi-positive KL contrastive loss (the paper's),
a class-level cross-entropy option, and the per-block mean used by segment / part models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # annotations only
    from .model import PGFAModel


def multi_positive_kl_loss(feats: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                           logit_scale: torch.Tensor | float, sharpness: float = 10.0,
                           mix: "tuple[float, torch.Tensor] | None" = None) -> torch.Tensor:
    """Symmetric multi-positive KL contrastive loss (PGFA / ActionCLIP style).

    ``L = s * cos(f_i, t_j)`` (B, B), where ``t_j`` is the text of sample j's class;
    ``G[i, j] = [y_i == y_j]``; targets ``softmax_j(sharpness * G[i])`` for the rows of ``L`` and
    ``softmax_i(sharpness * G[:, j])`` for its columns; loss = the mean of the two KL divergences
    (target || softmax of ``L`` by rows, resp. by columns), each summed over the softmax axis and
    averaged over the batch.

    With ``mix = (lam, perm)`` sample i is the mixup ``lam * x_i + (1 - lam) * x_perm[i]`` (its
    text ``t_i`` stays its first class's) and ``G[i, j] = lam [y_i == y_j] + (1 - lam)
    [y_perm[i] == y_j]``; ``lam = 1`` is the unmixed loss.

    Args:
        feats: (B, D) projected skeleton features (not necessarily normalised).
        text: (B, D) text embedding of each sample's class.
        labels: (B,) class ids.
        logit_scale: s (scalar, e.g. 1/0.07).
        sharpness: target sharpness (the reference uses 10).
        mix: None, or (lam, (B,) long pairing) of a mixed batch.
    Returns:
        scalar loss.
    """
    f = F.normalize(feats, dim=1)
    t = F.normalize(text, dim=1)
    logits = logit_scale * f @ t.t()
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)
    if mix is not None:
        lam, perm = mix
        same = lam * same + (1.0 - lam) * same[perm]

    def kl(lg, g):
        target, log_target = torch.softmax(sharpness * g, dim=1), torch.log_softmax(sharpness * g, dim=1)
        return (target * (log_target - torch.log_softmax(lg, dim=1))).sum(dim=1).mean()

    return 0.5 * (kl(logits, same) + kl(logits.t(), same.t()))


def contrastive_loss(model: "PGFAModel", feats: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                     sharpness: float = 10.0, mix: "tuple[float, torch.Tensor] | None" = None) -> torch.Tensor:
    """PGFA's training loss for ``model``'s (B, feature_dim) outputs and (B, feature_dim) targets
    (each sample's class anchor): :func:`multi_positive_kl_loss` (``mix``: a mixup batch's
    ``(lam, perm)``), averaged over the blocks of a temporal-segment model (global, then each
    segment against its own texts)."""
    return block_mean_loss(model, feats, text,
                           lambda f, t: multi_positive_kl_loss(f, t, labels, model.logit_scale, sharpness, mix))


def block_mean_loss(model: "PGFAModel", feats: torch.Tensor, text: torch.Tensor, loss_fn) -> torch.Tensor:
    """Mean of ``loss_fn(feature block, text block)`` over ``model``'s blocks (one block unless
    the model has temporal segments); ``text`` is (B or C, feature_dim)."""
    return torch.stack([loss_fn(f, t) for f, t in zip(model.blocks(feats), model.blocks(text))]).mean()


def class_ce_loss(feats: torch.Tensor, class_text: torch.Tensor, target: torch.Tensor,
                  logit_scale: torch.Tensor | float,
                  mix: "tuple[float, torch.Tensor] | None" = None) -> torch.Tensor:
    """Cross-entropy over every training class's text anchor (CLIP-style classification).

    Unlike :func:`multi_positive_kl_loss`, whose negatives are only the classes present in
    the batch, every step contrasts each sample with all K training classes.

    Args:
        feats: (B, D) projected skeleton features; class_text: (K, D) text embeddings of
        the training classes; target: (B,) indices into those K classes; logit_scale: s;
        mix: a mixup batch's (lam, perm) (:func:`mixed_cross_entropy`).
    """
    logits = logit_scale * F.normalize(feats, dim=1) @ F.normalize(class_text, dim=1).t()
    return mixed_cross_entropy(logits, target, mix)


def mixed_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                        mix: "tuple[float, torch.Tensor] | None" = None) -> torch.Tensor:
    """Cross-entropy of (B, K) ``logits`` against (B,) ``target``; for a mixup batch
    (``mix = (lam, perm)``) ``lam * CE(target) + (1 - lam) * CE(target[perm])``."""
    if mix is None:
        return F.cross_entropy(logits, target)
    lam, perm = mix
    return lam * F.cross_entropy(logits, target) + (1.0 - lam) * F.cross_entropy(logits, target[perm])


#: names of ``model.loss``
LOSSES = ("batch_kl", "class_ce")
