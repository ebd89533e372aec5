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
                           logit_scale: torch.Tensor | float, sharpness: float = 10.0) -> torch.Tensor:
    """Symmetric multi-positive KL contrastive loss (PGFA / ActionCLIP style).

    ``L = s * cos(f_i, t_j)`` (B, B), where ``t_j`` is the text of sample j's class;
    targets ``P_i = softmax_j(sharpness * [y_i == y_j])``; loss =
    ``(KL(P || softmax_row(L)) + KL(P || softmax_row(L^T))) / 2``, each KL summed over j and
    averaged over the batch.

    Args:
        feats: (B, D) projected skeleton features (not necessarily normalised).
        text: (B, D) text embedding of each sample's class.
        labels: (B,) class ids.
        logit_scale: s (scalar, e.g. 1/0.07).
        sharpness: target sharpness (the reference uses 10).
    Returns:
        scalar loss.
    """
    f = F.normalize(feats, dim=1)
    t = F.normalize(text, dim=1)
    logits = logit_scale * f @ t.t()
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)
    target = torch.softmax(sharpness * same, dim=1)
    log_target = torch.log_softmax(sharpness * same, dim=1)

    def kl(lg):
        return (target * (log_target - torch.log_softmax(lg, dim=1))).sum(dim=1).mean()

    return 0.5 * (kl(logits) + kl(logits.t()))


def contrastive_loss(model: "PGFAModel", feats: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                     sharpness: float = 10.0) -> torch.Tensor:
    """PGFA's training loss for ``model``'s (B, feature_dim) outputs and (B, feature_dim) targets
    (each sample's class anchor): :func:`multi_positive_kl_loss`, averaged over the blocks of a
    temporal-segment model (global, then each segment against its own texts)."""
    return block_mean_loss(model, feats, text,
                           lambda f, t: multi_positive_kl_loss(f, t, labels, model.logit_scale, sharpness))


def block_mean_loss(model: "PGFAModel", feats: torch.Tensor, text: torch.Tensor, loss_fn) -> torch.Tensor:
    """Mean of ``loss_fn(feature block, text block)`` over ``model``'s blocks (one block unless
    the model has temporal segments); ``text`` is (B or C, feature_dim)."""
    return torch.stack([loss_fn(f, t) for f, t in zip(model.blocks(feats), model.blocks(text))]).mean()


def class_ce_loss(feats: torch.Tensor, class_text: torch.Tensor, target: torch.Tensor,
                  logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Cross-entropy over every training class's text anchor (CLIP-style classification).

    Unlike :func:`multi_positive_kl_loss`, whose negatives are only the classes present in
    the batch, every step contrasts each sample with all K training classes.

    Args:
        feats: (B, D) projected skeleton features; class_text: (K, D) text embeddings of
        the training classes; target: (B,) indices into those K classes; logit_scale: s.
    """
    logits = logit_scale * F.normalize(feats, dim=1) @ F.normalize(class_text, dim=1).t()
    return F.cross_entropy(logits, target)


#: names of ``model.loss``
LOSSES = ("batch_kl", "class_ce")
