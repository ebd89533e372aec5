"""PGFA: end-to-end skeleton-text alignment with test-time prototype-guided alignment.

Zhou et al., *Zero-Shot Skeleton-Based Action Recognition With Prototype-Guided Feature
Alignment*, IEEE TIP 34, 2025. A skeleton encoder (ST-GCN slim / Shift-GCN) and a linear
projection into the frozen text space are trained from scratch with a symmetric
multi-positive KL contrastive loss; at test time the unseen-class text anchors are
replaced by prototypes of confidently pseudo-labelled test features
(:func:`zeroskel.methods.alignment.prototype_alignment`).

Differences from the reference code (all documented in the run's ``metrics.json``):
the epoch is chosen on a seen-class validation split (never on the test set), accuracy
is sample-level, warm-up epoch 0 trains at ``lr/5`` (``train.warmup_reference_bug``
reproduces the reference's lr 0), and the temperature may be learnable.

Library entry points: :func:`train_pgfa` (used by :func:`zeroskel.engine.runs.train`),
:func:`evaluate_pgfa`, :class:`PGFAClassifier` (``score`` / ``predict`` for GZSL
evaluators), :class:`PGFAModel`, :func:`multi_positive_kl_loss`.

Modules, in the order data flows through them: ``texts`` (class texts and anchor banks),
``model`` (encoder + projections), ``losses``, ``training`` (the two stages, selection,
resume), ``scoring`` (features, cosine, ZSL top-1), ``classifier`` (a trained model as one
checkpoint, ensembles), ``evaluation`` (test ZSL / GZSL metrics).
"""
from __future__ import annotations

from .classifier import CHECKPOINT_KIND, CHECKPOINT_VERSION, PGFAClassifier, PGFAEnsemble
from .evaluation import evaluate_classifier, evaluate_pgfa
from .losses import LOSSES, block_mean_loss, class_ce_loss, contrastive_loss, multi_positive_kl_loss
from .model import PGFAModel, build_model
from .scoring import cosine, embed, zsl_eval
from .texts import anchor_bank, load_texts, num_blocks, num_segments, part_names
from .training import SELECT_RULES, check_config, chosen_epoch, select_epoch, select_rule, train_pgfa

__all__ = ["CHECKPOINT_KIND", "CHECKPOINT_VERSION", "LOSSES", "PGFAClassifier", "PGFAEnsemble", "PGFAModel",
           "SELECT_RULES", "anchor_bank", "block_mean_loss", "build_model", "check_config", "chosen_epoch",
           "class_ce_loss", "contrastive_loss", "cosine", "embed", "evaluate_classifier", "evaluate_pgfa",
           "load_texts", "multi_positive_kl_loss", "num_blocks", "num_segments", "part_names", "select_epoch",
           "select_rule", "train_pgfa", "zsl_eval"]
