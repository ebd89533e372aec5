"""PGFA: the loss, test-time prototype alignment, and short real-data runs on UTD-MHAD."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import need
from zeroskel.errors import CheckpointError, ConfigError, DataError
from zeroskel.methods.alignment import (align_kwargs, aligned_scores, balanced_assignment, center_features,
                                        prototype_alignment)
from zeroskel.methods.pgfa import PGFAModel, multi_positive_kl_loss, select_epoch


# ---------------------------------------------------------------- loss
def _np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_loss_matches_hand_computation():
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = np.array([0, 0, 1])
    class_text = np.array([[1.0, 0.0], [0.0, 1.0]])
    t = class_text[labels]
    s = 2.0
    # cosines by hand: f0.t = [1, 1, 0]; f1.t = [0, 0, 1]; f2.t = [1, 1, 1] / sqrt(2)
    logits = s * np.array([[1, 1, 0], [0, 0, 1], [2 ** -0.5, 2 ** -0.5, 2 ** -0.5]])
    same = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], float)
    logp = _np_log_softmax(10 * same)
    p = np.exp(logp)

    def kl(lg):
        return np.mean(np.sum(p * (logp - _np_log_softmax(lg)), axis=1))

    want = 0.5 * (kl(logits) + kl(logits.T))
    got = multi_positive_kl_loss(torch.tensor(f), torch.tensor(t), torch.tensor(labels), s)
    assert got.item() == pytest.approx(want, rel=1e-10)
    # the target puts ~1/k on each of the k same-class columns (spec: 0.3333 for k = 3)
    assert np.exp(_np_log_softmax(10 * np.ones((1, 3))))[0] == pytest.approx([1 / 3] * 3)
    # the reference KLDivLoss(mean over B^2) * B is a batch-mean KL: sum / B
    lg = torch.tensor(logits)
    ref = 0.5 * sum(F.kl_div(torch.log_softmax(x, 1), torch.tensor(p), reduction="sum") / 3
                    for x in (lg, lg.t()))
    assert got.item() == pytest.approx(ref.item(), rel=1e-10)


def test_loss_is_low_when_aligned_and_gradients_flow():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(4, 8), dim=1)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    good = multi_positive_kl_loss(text[labels] * 3, text[labels], labels, 1 / 0.07)
    feats = torch.randn(6, 8, requires_grad=True)
    bad = multi_positive_kl_loss(feats, text[labels], labels, 1 / 0.07)
    assert good < bad
    bad.backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()



def test_mixup_loss_mixes_the_same_class_targets_of_both_directions():
    torch.manual_seed(0)
    f, text = torch.randn(5, 8), torch.randn(3, 8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    s, lam, perm = 1 / 0.07, 0.3, torch.tensor([2, 0, 4, 1, 3])
    plain = multi_positive_kl_loss(f, text[labels], labels, s)
    # lam = 1, or a pairing of every sample with itself, is the unmixed loss
    assert multi_positive_kl_loss(f, text[labels], labels, s, mix=(1.0, perm)) == plain
    assert torch.allclose(multi_positive_kl_loss(f, text[labels], labels, s, mix=(lam, torch.arange(5))), plain)
    # by hand: G[i, j] = lam [y_i = y_j] + (1 - lam) [y_perm(i) = y_j]; rows use G, columns G^T
    y, yp = labels.numpy(), labels[perm].numpy()
    g = lam * (y[:, None] == y[None]) + (1 - lam) * (yp[:, None] == y[None])
    lg = (s * F.normalize(f, dim=1) @ F.normalize(text[labels], dim=1).t()).double().numpy()

    def kl(logits, gm):
        lp = _np_log_softmax(10 * gm)
        return np.mean(np.sum(np.exp(lp) * (lp - _np_log_softmax(logits)), axis=1))

    want = 0.5 * (kl(lg, g) + kl(lg.T, g.T))
    got = multi_positive_kl_loss(f, text[labels], labels, s, mix=(lam, perm))
    assert got.item() == pytest.approx(want, rel=1e-5)
    assert abs(got.item() - plain.item()) > 1e-3


def test_mixed_cross_entropy_weights_both_targets():
    from zeroskel.methods.pgfa.losses import mixed_cross_entropy

    torch.manual_seed(0)
    logits, target, perm = torch.randn(4, 6), torch.tensor([0, 3, 5, 1]), torch.tensor([1, 0, 3, 2])
    ce = F.cross_entropy(logits, target)
    assert mixed_cross_entropy(logits, target) == ce
    assert torch.allclose(mixed_cross_entropy(logits, target, (0.25, perm)),
                          0.25 * ce + 0.75 * F.cross_entropy(logits, target[perm]))


class _Enc(torch.nn.Module):
    feature_dim = 4

    def forward(self, x):
        return x.mean(dim=(2, 3, 4)).repeat(1, 2)[:, :4]


def test_class_ce_loss_contrasts_with_every_training_class():
    from zeroskel.methods.pgfa import class_ce_loss

    torch.manual_seed(0)
    f, t = torch.randn(4, 6), torch.randn(5, 6)
    target = torch.tensor([0, 3, 3, 4])
    logits = 2.0 * F.normalize(f, dim=1) @ F.normalize(t, dim=1).t()
    by_hand = -(logits.log_softmax(1)[torch.arange(4), target]).mean()
    assert torch.allclose(class_ce_loss(f, t, target, 2.0), by_hand)
    # classes absent from the batch (1, 2) still act as negatives: moving their anchors changes the loss
    t2 = t.clone()
    t2[1] = f[0]
    assert not torch.allclose(class_ce_loss(f, t2, target, 2.0), by_hand)


def test_model_projection_init_and_temperature_options():
    m = PGFAModel(_Enc(), text_dim=6)
    assert torch.all(m.proj.bias == 0)
    assert m.logit_scale.item() == pytest.approx(1 / 0.07)
    assert "log_scale" in m.state_dict() and not any(n == "log_scale" for n, _ in m.named_parameters())
    learn = PGFAModel(_Enc(), text_dim=6, temperature=0.1, learn_temperature=True)
    assert "log_scale" in dict(learn.named_parameters()) and learn.logit_scale.item() == pytest.approx(10)
    x = torch.randn(2, 3, 50, 20, 1)
    assert PGFAModel(_Enc(), 6, input_frames=64)(x).shape == (2, 6)
    with pytest.raises(ConfigError, match="temperature"):
        PGFAModel(_Enc(), 6, temperature=0)


def test_learned_temperature_is_not_decayed_and_is_capped_like_clip():
    from zeroskel.engine.trainer import OptimConfig, Trainer

    # the loss does not depend on the scale: with weight decay it would shrink towards 0 (temperature 1)
    m = PGFAModel(_Enc(), text_dim=6, temperature=0.05, learn_temperature=True)
    assert m.no_weight_decay() == {"log_scale"}
    assert PGFAModel(_Enc(), 6).no_weight_decay() == set()
    x = torch.randn(4, 3, 8, 20, 1)

    def step(model, batch):
        return model(batch).pow(2).mean() + 0.0 * model.logit_scale, len(batch)

    cfg = OptimConfig(optimizer="sgd", lr=0.1, weight_decay=0.5, schedule="constant", warmup_epochs=0, epochs=3)
    tr = Trainer(m, step, lambda e, rng: [x], cfg)
    groups = tr.optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0] and groups[1]["params"] == [m.log_scale]
    tr.fit(resume=False)
    assert m.logit_scale.item() == pytest.approx(20.0)  # unchanged; the projection did decay
    # a scale pushed above 100 is capped after the update, and can come back down
    m2 = PGFAModel(_Enc(), text_dim=6, temperature=0.011, learn_temperature=True)
    tr2 = Trainer(m2, lambda model, b: (-model.logit_scale, 1), lambda e, rng: [x],
                  OptimConfig(optimizer="sgd", lr=1.0, weight_decay=0.0, schedule="constant", warmup_epochs=0, epochs=1))
    tr2.fit(resume=False)
    assert m2.logit_scale.item() == pytest.approx(100.0)
    with pytest.raises(ConfigError, match="learn_temperature"):
        PGFAModel(_Enc(), 6, temperature=0.005, learn_temperature=True)
    # a fixed temperature keeps one parameter group and is never capped
    fixed = PGFAModel(_Enc(), 6, temperature=0.005)
    assert fixed.logit_scale.item() == pytest.approx(200.0)
    assert len(Trainer(fixed, step, lambda e, rng: [x], cfg).optimizer.param_groups) == 1


def test_input_frames_resampling_against_the_reference_interpolation():
    # input_frames resamples with align_corners=True (end frames kept); the reference's
    # trilinear scale_factor 1.28 uses half-frame centres: the docstring states the gap
    class _Id(torch.nn.Module):
        feature_dim = 4

    m = PGFAModel(_Id(), text_dim=4, input_frames=64)
    x = torch.arange(50.0).view(1, 1, 50, 1, 1).expand(1, 3, 50, 2, 2).contiguous()
    got = m._input(x)[0, 0, :, 0, 0]
    ref = F.interpolate(x, scale_factor=(1.28, 1, 1), mode="trilinear")[0, 0, :, 0, 0]
    assert got.shape == ref.shape == (64,)
    assert got[0] == 0 and got[-1] == 49
    torch.testing.assert_close(got, torch.linspace(0, 49, 64))
    assert 0.1 < (got - ref).abs().max() < 0.11


def test_feature_norm_removes_the_shared_feature_mean():
    torch.manual_seed(0)
    m = PGFAModel(_Enc(), 6, feature_norm="batchnorm")
    assert not any("norm" in n for n, _ in m.named_parameters())  # non-affine: no new weights
    x = torch.randn(16, 3, 50, 20, 1) + 3.0  # a large common offset, like post-ReLU pooling
    m.train()
    pre = m.norm(m.encoder(x))
    torch.testing.assert_close(pre.mean(0), torch.zeros(pre.shape[1]), atol=1e-5, rtol=0)
    # the projection of the mean alone no longer dominates: the outputs point different ways
    out = F.normalize(m(x), dim=1)
    plain = F.normalize(PGFAModel(_Enc(), 6)(x), dim=1)
    assert (out @ out.T).mean() < (plain @ plain.T).mean()
    m.eval()  # running statistics at test time: a deterministic per-sample map
    torch.testing.assert_close(m(x[:3]), m(x)[:3])
    assert "norm.running_mean" in m.state_dict()
    with pytest.raises(ConfigError, match="model.feature_norm .layer.*batchnorm, none"):
        PGFAModel(_Enc(), 6, feature_norm="layer")


def test_segment_model_blocks_and_anchor_bank_give_mean_of_block_cosines():
    from zeroskel.methods.pgfa import anchor_bank
    from zeroskel.models.registry import build_encoder

    torch.manual_seed(0)
    enc = build_encoder("stgcn", layout="kinect_v1", num_persons=1, channels=[8, 8, 16], strides=[1, 2, 2])
    model = PGFAModel(enc, text_dim=5, segments=3).eval()
    assert model.feature_dim == 20 and len(model.seg_proj) == 3
    x = torch.randn(4, 3, 24, 20, 1)
    with torch.no_grad():
        out = model(x)
        h = enc.forward_temporal(x)                       # (4, 6, 16): segments of 2 frames each
        want = [model.proj(h.mean(1))] + [lin(h[:, 2 * k:2 * k + 2].mean(1)) for k, lin in enumerate(model.seg_proj)]
    blocks = model.blocks(out)
    assert [b.shape for b in blocks] == [(4, 5)] * 4
    for got, w in zip(blocks, want):
        torch.testing.assert_close(got, F.normalize(w, dim=1) / 2)  # unit blocks / sqrt(4)
    # anchors built the same way: the full cosine is the mean of the four block cosines
    banks = [np.random.default_rng(k).normal(size=(7, 5)) for k in range(4)]
    anchors = anchor_bank(banks)
    assert anchors.shape == (7, 20) and np.allclose(np.linalg.norm(anchors, axis=1), 1)
    f = out.numpy()
    full = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ anchors.T
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    per_block = np.mean([unit(b.numpy()) @ unit(t).T for b, t in zip(blocks, banks)], axis=0)
    np.testing.assert_allclose(full, per_block, atol=1e-6)
    assert np.array_equal(anchor_bank(banks[:1]), banks[0].astype(np.float32))
    with pytest.raises(DataError, match="3 temporal segments need >= 3 encoder frames, got 1"):
        model(torch.randn(1, 3, 4, 20, 1))
    with pytest.raises(ConfigError, match="segments must be an integer >= 0"):
        PGFAModel(enc, text_dim=5, segments=-1)


def test_part_model_pools_each_body_part_after_the_segments():
    from zeroskel.data.layouts import body_part_joints
    from zeroskel.models.registry import build_encoder

    torch.manual_seed(0)
    enc = build_encoder("stgcn", layout="kinect_v1", num_persons=2, channels=[8, 8, 16], strides=[1, 2, 2])
    model = PGFAModel(enc, text_dim=5, layout="kinect_v1", segments=2, parts=("hands", "legs")).eval()
    assert model.num_blocks == 5 and model.feature_dim == 25 and len(model.part_proj) == 2
    x = torch.randn(3, 3, 16, 20, 2)
    with torch.no_grad():
        out = model(x)
        loc = enc.forward_local(x)                        # (3, 4, 20, 16)
        h = loc.mean(2)
        want = ([model.proj(h.mean(1)), model.seg_proj[0](h[:, :2].mean(1)), model.seg_proj[1](h[:, 2:].mean(1))]
                + [lin(loc[:, :, list(body_part_joints("kinect_v1", p))].mean((1, 2)))
                   for p, lin in zip(("hands", "legs"), model.part_proj)])
    for got, w in zip(model.blocks(out), want):
        torch.testing.assert_close(got, F.normalize(w, dim=1) / math.sqrt(5))
    assert PGFAModel(enc, text_dim=5, layout="kinect_v1", parts=("legs",)).num_blocks == 2  # parts alone
    for bad, msg in (({"parts": ("hands",)}, "need the input's joint layout"),
                     ({"parts": ("hands", "hands"), "layout": "kinect_v1"}, "must be distinct"),
                     ({"parts": ("arms",), "layout": "kinect_v1"}, "unknown body part 'arms'")):
        with pytest.raises(ConfigError, match=msg):
            PGFAModel(enc, text_dim=5, **bad)


def test_select_epoch_uses_validation_only():
    hist = [{"val_top1": v, "test_top1": 100 - v} for v in (10, 50, 5, 30, 32)]
    assert select_epoch(hist, "top1") == 2  # the test numbers play no part
    assert select_epoch(hist, "top1", smooth=2) == 5  # trailing means 10, 30, 27.5, 17.5, 31
    assert select_epoch(hist, "top1", min_epoch=3) == 5
    hist[1]["val_top1"] = 32
    assert select_epoch(hist, "top1") == 2  # ties go to the earliest epoch
    from zeroskel.methods.pgfa import chosen_epoch
    v = {"metric": "top1", "smooth": 2, "min_epoch": 1}
    assert chosen_epoch(hist, {**v, "select": "best"}) == select_epoch(hist, "top1", smooth=2) == 5
    assert chosen_epoch(hist[:4], v) == 2 and chosen_epoch(hist[:4], {**v, "select": "last"}) == 4
    # validation.every: only evaluated epochs can be picked; the window averages evaluated ones
    gaps = [{"val_top1": v} if v is not None else {} for v in (None, 30, None, 50, None, 41)]
    assert select_epoch(gaps, "top1") == 4
    assert select_epoch(gaps, "top1", smooth=3) == 6  # window means 30, 40, 45.5 (not 50/3...)
    assert select_epoch(gaps, "top1", min_epoch=5) == 6
    with pytest.raises(ConfigError, match="no validated epoch at or after validation.min_epoch=7"):
        select_epoch(gaps, "top1", min_epoch=7)
    with pytest.raises(ConfigError, match="no validation metric 'val_top1'"):
        select_epoch([{}, {}], "top1")


# ---------------------------------------------------------------- alignment
FEATS = np.array([[1.0, 0.1], [1.0, -0.1], [0.9, 0.5], [0.1, 1.0], [-0.1, 1.0]])
ANCHORS = np.array([[1.0, 0.0], [0.0, 1.0]])


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_alignment_alpha_one_is_pseudo_label_mean():
    protos, pred = prototype_alignment(FEATS, ANCHORS, alpha=1.0)
    # pseudo-labels by cosine: 0, 0, 0, 1, 1; prototypes = means of the unit features
    np.testing.assert_allclose(protos[0], _unit(FEATS[:3]).mean(0), rtol=1e-6)
    np.testing.assert_allclose(protos[1], _unit(FEATS[3:]).mean(0), rtol=1e-6)
    assert pred.tolist() == [0, 0, 0, 1, 1]


def test_alignment_keeps_lowest_entropy_fraction():
    # alpha 0.5: floor(1.5) = 1 of class 0 and floor(1.0) = 1 of class 1 are kept; the most
    # confident are those with the largest cosine gap: sample 1 (0.995 vs -0.0995) and 4
    protos, _ = prototype_alignment(FEATS, ANCHORS, alpha=0.5)
    np.testing.assert_allclose(protos[0], _unit(FEATS[1]), rtol=1e-6)
    np.testing.assert_allclose(protos[1], _unit(FEATS[4]), rtol=1e-6)
    # alpha 0.4: floor(0.8) = 0 members for class 1 -> falls back to its text anchor
    protos, _ = prototype_alignment(FEATS, ANCHORS, alpha=0.4)
    np.testing.assert_allclose(protos[1], ANCHORS[1])
    np.testing.assert_allclose(protos[0], _unit(FEATS[1]), rtol=1e-6)


def test_alignment_changes_predictions_and_options():
    # text anchors are biased: both classes' features sit in the lower half-plane, so the
    # cosine to anchor 1 = (0, 1) misplaces sample 2; prototypes fix it
    feats = np.array([[1.0, -0.2], [1.0, -0.3], [0.8, -0.5], [0.1, -1.0], [0.2, -1.0]])
    anchors = np.array([[1.0, 0.2], [0.6, -1.0]])
    _, pred0 = prototype_alignment(feats, anchors, alpha=1.0, iterations=1, return_info=True)[:2]
    info = prototype_alignment(feats, anchors, alpha=1.0, return_info=True)[2]
    assert info["initial_predictions"].tolist() == [0, 0, 1, 1, 1]
    assert pred0.tolist() == [0, 0, 0, 1, 1]
    # beta 0 keeps the text anchors (normalised): predictions equal the initial ones
    protos, pred = prototype_alignment(feats, anchors, alpha=1.0, beta=0.0)
    np.testing.assert_allclose(protos, _unit(anchors), rtol=1e-6)
    assert pred.tolist() == info["initial_predictions"].tolist()
    # beta 0.5: the mean of the unit prototype and the unit anchor
    protos, _ = prototype_alignment(feats, anchors, alpha=1.0, beta=0.5)
    np.testing.assert_allclose(protos[0], 0.5 * _unit(_unit(feats[:2]).mean(0)) + 0.5 * _unit(anchors[0]),
                               rtol=1e-6)
    # a second iteration starts from the first one's prototypes
    p1, _ = prototype_alignment(feats, anchors, alpha=1.0)
    p2, _ = prototype_alignment(feats, anchors, alpha=1.0, iterations=2)
    p1b, _ = prototype_alignment(feats, p1, alpha=1.0)
    np.testing.assert_allclose(p2, p1b, rtol=1e-6)
    # the temperature sharpens the entropies but keeps their order: same result here
    np.testing.assert_allclose(prototype_alignment(FEATS, ANCHORS, alpha=0.5, temperature=0.05)[0],
                               prototype_alignment(FEATS, ANCHORS, alpha=0.5)[0], rtol=1e-6)


def test_classifier_score_honours_alignment_enabled_false():
    # a run's alignment section with enabled: false must score like no alignment (it was
    # ignored: any non-empty dict aligned, and a center_by in it even demanded groups)
    from zeroskel.methods.pgfa import PGFAClassifier

    feats = np.array([[1.0, -0.2, 0, 0], [1.0, -0.3, 0, 0], [0.8, -0.5, 0, 0], [0.1, -1.0, 0, 0],
                      [0.2, -1.0, 0, 0]], dtype=np.float32)
    text = np.array([[1.0, 0.2, 0, 0], [0.6, -1.0, 0, 0]], dtype=np.float32)
    clf = PGFAClassifier(PGFAModel(_Enc(), text_dim=4), text)
    classes = np.array([0, 1])
    plain = clf.score(feats, classes)
    off = {"enabled": False, "alpha": 1.0, "center": True, "center_by": "subject"}
    np.testing.assert_array_equal(clf.score(feats, classes, align=off), plain)
    assert clf.predict(feats, classes, align=off).tolist() == [0, 0, 1, 1, 1]
    on = {"enabled": True, "alpha": 1.0}
    assert clf.predict(feats, classes, align=on).tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ConfigError, match="alignment.enabled"):
        clf.score(feats, classes, align={"enabled": "no"})


def test_alignment_options_reject_booleans_for_numbers():
    # YAML reads on/off/yes/no as booleans: beta=false used to become 0.0 (prototypes off) and
    # alpha=true 1.0, silently, although the checks meant to reject booleans
    for key, v in (("beta", False), ("alpha", True), ("iterations", True), ("temperature", True),
                   ("min_samples", True)):
        with pytest.raises(ConfigError, match=f"alignment.{key} must be a"):
            align_kwargs({key: v})
    assert align_kwargs({"alpha": 1, "iterations": 2.0, "center": True})["iterations"] == 2


def test_alignment_options_reject_infinities_by_name():
    # epsilon=inf passed "> 0": the Sinkhorn plan became uniform and every sample got pseudo-label 0
    # (aligned accuracy = one class's share, silently); temperature=inf made every entropy equal
    from zeroskel.methods.alignment import prototype_alignment
    for key in ("epsilon", "temperature", "alpha", "beta"):
        with pytest.raises(ConfigError, match=f"alignment.{key} must be a finite number"):
            align_kwargs({key: float("inf")})
    with pytest.raises(ConfigError, match="alignment.epsilon must be a finite number"):
        prototype_alignment(np.eye(3), np.eye(3), pseudo_labels="balanced", epsilon=np.inf)


def test_balanced_assignment_equalises_class_mass():
    rng = np.random.default_rng(0)
    # every sample prefers class 0; the plan must still give each class ~N/K of the mass
    scores = np.column_stack([rng.uniform(0.5, 0.9, 12), rng.uniform(0.0, 0.4, 12), rng.uniform(0.0, 0.4, 12)])
    q = balanced_assignment(scores, epsilon=0.05, iterations=50)
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(q.sum(0), [4.0, 4.0, 4.0], rtol=1e-3)
    # the samples that like class 0 most keep it: rank by the class-0 margin
    margin = scores[:, 0] - scores[:, 1:].max(1)
    assert set(np.flatnonzero(q.argmax(1) == 0)) == set(np.argsort(-margin)[:4])
    # tiny epsilons stay finite (log-domain Sinkhorn)
    assert np.isfinite(balanced_assignment(scores, epsilon=1e-4)).all()


def test_balanced_pseudo_labels_undo_a_collapse():
    # two well-separated clusters, but anchor 0 is closer to both: argmax pseudo-labels put
    # every sample in class 0 and the reference alignment cannot recover class 1
    feats = np.array([[1.0, 0.1], [1.0, 0.0], [0.9, 0.1], [0.3, 1.0], [0.2, 1.0], [0.35, 0.9]])
    anchors = np.array([[1.0, 0.8], [-1.0, 0.3]])
    _, ref = prototype_alignment(feats, anchors, alpha=1.0)
    assert ref.tolist() == [0] * 6
    protos, bal, info = prototype_alignment(feats, anchors, alpha=1.0, pseudo_labels="balanced",
                                            epsilon=0.05, return_info=True)
    # three Sinkhorn iterations move the two samples nearest cluster 1 over (not all three:
    # the balance is approximate), which is enough for the prototypes to separate the clusters
    assert info["initial_predictions"].tolist() == [0, 0, 0, 1, 1, 0]
    np.testing.assert_allclose(protos[1], _unit(feats[3:5]).mean(0), rtol=1e-6)
    assert bal.tolist() == [0, 0, 0, 1, 1, 1]
    # the config helper passes the options through and rejects bad ones before any work
    kw = align_kwargs({"enabled": True, "pseudo_labels": "balanced", "epsilon": 0.05, "alpha": 1})
    assert kw["pseudo_labels"] == "balanced" and kw["alpha"] == 1.0 and kw["iterations"] == 1
    with pytest.raises(ConfigError, match="alignment.pseudo_labels.*argmax, balanced"):
        align_kwargs({"pseudo_labels": "sinkhorn"})
    with pytest.raises(ConfigError, match="alignment.epsilon"):
        align_kwargs({"epsilon": 0})
    with pytest.raises(ConfigError, match="alignment.iterations must be an integer"):
        align_kwargs({"iterations": 1.5})


def test_centring_removes_a_shared_component():
    # 3-d features = a large shared component (axis 2) + a class signal (axes 0 / 1).
    # Anchor 0 leans toward the shared axis, so without centring every sample goes to it.
    feats = np.array([[0.3, 0.0, 1.0], [0.25, 0.05, 1.0], [0.0, 0.3, 1.0], [0.05, 0.25, 1.0]])
    anchors = np.array([[0.4, 0.0, 1.0], [0.0, 1.0, 0.2]])
    _, plain = prototype_alignment(feats, anchors, alpha=1.0)
    assert plain.tolist() == [0, 0, 0, 0]
    c = center_features(feats)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-9)
    u = _unit(feats)
    np.testing.assert_allclose(c, _unit(u - u.mean(0)), rtol=1e-6)
    protos, centred = prototype_alignment(feats, anchors, alpha=1.0, center=True)
    assert centred.tolist() == [0, 0, 1, 1]
    # the prototypes are means of the centred features, and the scores use the same features
    np.testing.assert_allclose(protos[1], c[2:].mean(0), rtol=1e-6)
    s = aligned_scores(feats, anchors, alpha=1.0, center=True)
    np.testing.assert_allclose(s, c @ _unit(protos).T, rtol=1e-6)
    assert s.argmax(1).tolist() == centred.tolist()
    assert align_kwargs({"center": True})["center"] is True
    with pytest.raises(ConfigError, match="alignment.center must be true or false"):
        align_kwargs({"center": "yes"})
    with pytest.raises(DataError, match="alignment.center needs at least 2 samples to centre on, got 1"):
        prototype_alignment(feats[:1], anchors, center=True)


def test_centring_per_group_removes_each_groups_offset():
    # two subjects, each with its own offset; the class signal is on axes 0 / 1
    rng = np.random.default_rng(0)
    cls = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    subj = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    feats = np.eye(3)[cls] * 0.5 + np.array([[0, 0, 1.0], [0, 1.5, 1.0]])[subj] + 0.01 * rng.normal(size=(8, 3))
    c = center_features(feats, subj)
    for g in (0, 1):  # each group exactly as if centred alone
        np.testing.assert_allclose(c[subj == g], center_features(feats[subj == g]), rtol=1e-9)
    np.testing.assert_allclose(center_features(feats, np.zeros(8)), center_features(feats), rtol=1e-9)
    anchors = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    protos, pred = prototype_alignment(feats, anchors, alpha=1.0, center=True, groups=subj)
    assert pred.tolist() == cls.tolist()
    # the one-mean centring leaves subject 1's offset along axis 1: its class-0 samples go to class 1
    assert prototype_alignment(feats, anchors, alpha=1.0, center=True)[1].tolist() != cls.tolist()
    np.testing.assert_allclose(aligned_scores(feats, anchors, alpha=1.0, center=True, groups=subj),
                               c @ _unit(protos).T, rtol=1e-6)
    # groups only act with centring
    np.testing.assert_array_equal(prototype_alignment(feats, anchors, groups=subj)[1], prototype_alignment(feats, anchors)[1])
    with pytest.raises(DataError, match="alignment group 7 has 1 sample"):
        center_features(feats, np.array([0, 0, 0, 0, 1, 1, 1, 7]))
    with pytest.raises(DataError, match="one per sample .8., got shape .3,."):
        center_features(feats, np.zeros(3))


def test_alignment_bad_input():
    with pytest.raises(DataError, match="feature dim 2 != anchor dim 3"):
        prototype_alignment(FEATS, np.ones((2, 3)))
    with pytest.raises(DataError, match="NaN"):
        prototype_alignment(np.full((2, 2), np.nan), ANCHORS)
    with pytest.raises(ConfigError, match="alignment.alpha"):
        prototype_alignment(FEATS, ANCHORS, alpha=0)
    with pytest.raises(ConfigError, match="alignment.beta"):
        prototype_alignment(FEATS, ANCHORS, beta=2)
    # a string where a number belongs (e.g. a dict read from JSON by hand) is named, not a TypeError
    with pytest.raises(ConfigError, match="alignment.alpha must be a number, got '0.5'"):
        prototype_alignment(FEATS, ANCHORS, alpha="0.5")
    with pytest.raises(ConfigError, match="alignment.min_samples must be an integer"):
        prototype_alignment(FEATS, ANCHORS, min_samples="2")
    from zeroskel.methods.alignment import balanced_assignment
    with pytest.raises(DataError, match="non-empty \\(N, K\\) array, got shape \\(5,\\)"):
        balanced_assignment(np.ones(5))
    with pytest.raises(DataError, match="NaN"):
        balanced_assignment(np.full((3, 2), np.nan))  # returned NaN before


# ---------------------------------------------------------------- real data (UTD-MHAD)
TINY = ["train.epochs=2", "train.batch_size=16", "train.warmup_epochs=1", "data.limit_per_class=6",
        "model.encoder=stgcn", "model.args={channels: [8, 8, 16], strides: [1, 2, 2]}", "model.input_frames=null",
        "text.source=name", "text.model=all-MiniLM-L6-v2", "eval.batch_size=128", "device=cpu",
        "train.threads=1", "text.segment_sources=null"]  # segments: their own test


def _cfg(seed=1, extra=()):
    from zeroskel.engine.config import build_config
    return build_config("pgfa", dataset="utd_mhad", split="purls-22/5", seed=seed, overrides=TINY + list(extra))


@pytest.fixture(scope="module")
def utd(data_root):
    need(data_root, "utd_mhad")
    return data_root


def _metrics(run_dir):
    def no_nan(token):  # metrics.json is strict JSON (jq refuses a bare NaN)
        raise AssertionError(f"{run_dir}/metrics.json holds {token}")
    return json.loads((run_dir / "metrics.json").read_text(), parse_constant=no_nan)


def _core(m):
    return {k: m[k] for k in ("zsl_top1", "zsl_top1_aligned", "zsl_per_class", "zsl_confusion")} | \
        {"best": m["selection"]["best_epoch"], "curve": m["selection"]["val_curve"]}


def test_train_is_deterministic_and_evaluate_reproduces(utd, tmp_path, capsys):
    from zeroskel.engine.runs import evaluate_run, train

    a = train(_cfg(), tmp_path, data_root=utd)
    b = train(_cfg(), tmp_path, data_root=utd)
    assert a != b and b.name == a.name + "-1"  # never overwritten
    ma, mb = _metrics(a), _metrics(b)
    assert _core(ma) == _core(mb)
    assert ma["test_samples"] == 80 and len(ma["zsl_confusion"]) == 5
    assert sum(map(sum, ma["zsl_confusion"])) == 80
    assert {"S", "U", "H"} <= set(ma["gzsl_uncalibrated"])
    for f in ("config.yaml", "train.log", "final.pt", "selection.json"):
        assert (a / f).is_file()
    assert "selected epoch" in (a / "train.log").read_text()
    ev = evaluate_run(a, data_root=utd, device="cpu")
    assert ev["zsl_top1"] == ma["zsl_top1"] and ev["zsl_top1_aligned"] == ma["zsl_top1_aligned"]
    assert ev["zsl_confusion"] == ma["zsl_confusion"]
    # test-time alignment options can be changed without retraining; the plain model is the same
    bal = evaluate_run(a, data_root=utd, device="cpu", alignment={"pseudo_labels": "balanced", "iterations": 2})
    assert bal["zsl_top1"] == ma["zsl_top1"] and bal["alignment"]["pseudo_labels"] == "balanced"
    assert bal["alignment"]["iterations"] == 2 and bal["alignment"]["alpha"] == 0.9
    with pytest.raises(ConfigError, match="unknown config key 'alignment.pseudo_label'"):
        evaluate_run(a, data_root=utd, alignment={"pseudo_label": "balanced"})
    from zeroskel.cli import main
    capsys.readouterr()
    assert main(["evaluate", str(a), "--data-root", str(utd), "--align", "pseudo_labels=balanced",
                 "--align", "iterations=2"]) == 0
    flat = json.loads(capsys.readouterr().out)
    assert flat["zsl_top1_aligned"] == bal["zsl_top1_aligned"] and flat["alignment"] == bal["alignment"]
    # the --set spelling of a key (as the unknown-key error lists them) means the same key
    assert main(["evaluate", str(a), "--data-root", str(utd), "--align", "alignment.pseudo_labels=balanced",
                 "--align", "alignment.iterations=2"]) == 0
    assert json.loads(capsys.readouterr().out) == flat
    # centring per test subject: the four test subjects of UTD-MHAD, each centred on its own mean
    from zeroskel.data.cache import prepare
    from zeroskel.methods.pgfa import PGFAClassifier
    per = evaluate_run(a, data_root=utd, device="cpu", alignment={"center": True, "center_by": "subject"})
    assert per["zsl_top1"] == ma["zsl_top1"] and per["alignment"]["center_by"] == "subject"
    ds = prepare("utd_mhad", "pgfa50", data_root=utd)
    clf = PGFAClassifier.load(a / "final.pt")
    test = np.where(np.isin(ds.meta["subject"], [2, 4, 6, 8]) & np.isin(ds.labels, clf.unseen_classes))[0]
    assert len(test) == 80 and len(np.unique(ds.meta["subject"][test])) == 4
    _, pred = prototype_alignment(clf.features(np.asarray(ds.data[test])), clf.text[clf.unseen_classes],
                                  groups=ds.meta["subject"][test], **align_kwargs(per["alignment"]))
    assert per["zsl_top1_aligned"] == pytest.approx(100 * np.mean(clf.unseen_classes[pred] == ds.labels[test]))
    # the classifier API takes the same groups; without them it refuses rather than centring on one mean
    x = np.asarray(ds.data[test])
    np.testing.assert_array_equal(clf.predict(x, clf.unseen_classes, per["alignment"], groups=ds.meta["subject"][test]),
                                  clf.unseen_classes[pred])
    with pytest.raises(ConfigError, match="alignment.center_by 'subject' centres each group on its own mean: pass groups="):
        clf.score(x, clf.unseen_classes, per["alignment"])
    with pytest.raises(DataError, match="alignment.center_by 'room': dataset 'utd_mhad' has no such per-sample "
                                        "metadata .it has: .*subject"):
        evaluate_run(a, data_root=utd, alignment={"center": True, "center_by": "room"})
    assert main(["evaluate", str(a), "--data-root", str(utd), "--align", "center=true",
                 "--align", "center_by=subject"]) == 0
    # each test sample goes through the model once: GZSL's embedding of all test samples also
    # gives ZSL its unseen rows (the same numbers as evaluate_run's)
    from zeroskel.methods.pgfa.evaluation import evaluate_classifier
    rows = []
    hook = clf.model.register_forward_hook(lambda m, inp, out: rows.append(len(inp[0])))
    try:
        again = evaluate_classifier(clf, ds, "xsub", {**ev["alignment"]}, calibration=ma["selection"]["calibration"])
    finally:
        hook.remove()
    assert sum(rows) == int(np.isin(ds.meta["subject"], [2, 4, 6, 8]).sum()) > 80
    assert {k: again[k] for k in ("zsl_top1", "zsl_top1_aligned", "zsl_confusion", "gzsl_uncalibrated",
                                  "gzsl_calibrated")} == {k: ev[k] for k in ("zsl_top1", "zsl_top1_aligned",
                                  "zsl_confusion", "gzsl_uncalibrated", "gzsl_calibrated")}
    # a group of one sample cannot be centred on itself: a clear error, and before any training
    with pytest.raises(DataError, match="alignment.center_by 'file': file 'a.*' has 1 sample in the evaluated set"):
        evaluate_run(a, data_root=utd, alignment={"center": True, "center_by": "file"})
    with pytest.raises(DataError, match="alignment.center_by 'file'"):
        train(_cfg(extra=["alignment.center=true", "alignment.center_by=file"]), tmp_path / "g", data_root=utd)
    assert not list((tmp_path / "g").rglob("*.pt"))


def test_resume_after_interruption_matches_uninterrupted(utd, tmp_path):
    from zeroskel.engine.runs import evaluate_run, resume_run, train

    cfg = _cfg(seed=2, extra=["validation.mode=heldout_seen"])
    full = train(cfg, tmp_path / "full", data_root=utd)
    cut = train(cfg, tmp_path / "cut", data_root=utd, max_epochs=1)  # stops after epoch 1 of 2
    assert not (cut / "metrics.json").exists() and (cut / "stage1_last.pt").is_file()
    # a hand-edited config.yaml is refused: the weights would continue under other settings
    original = (cut / "config.yaml").read_text()
    assert "seed: 2" in original and "  lr: 0.001" in original
    (cut / "config.yaml").write_text(original.replace("seed: 2", "seed: 7").replace("  lr: 0.001", "  lr: 0.01"))
    with pytest.raises(ConfigError, match="differs from the config stage1_last.pt was trained with "
                                          "\\(keys: seed, train.lr\\)"):
        resume_run(cut, data_root=utd)
    (cut / "config.yaml").write_text(original)
    # a second resume while another process trains in the folder is refused before any work
    from zeroskel.engine.runs import run_lock
    with run_lock(cut):
        with pytest.raises(ConfigError, match="is in use: another process is training in it"):
            resume_run(cut, data_root=utd)
        with pytest.raises(CheckpointError, match="no final.pt; a process is still training in it"):
            evaluate_run(cut, data_root=utd)
    with pytest.raises(CheckpointError, match="no final.pt; the run did not finish \\(resume it"):
        evaluate_run(cut, data_root=utd)
    assert not (cut / "metrics.json").exists()
    resume_run(cut, data_root=utd)
    assert _core(_metrics(cut)) == _core(_metrics(full))
    # the wall time of a resumed run says it covers the last process only
    assert "last process" in _metrics(cut)["train_seconds"]["total_wall_covers"]
    assert "total_wall_covers" not in _metrics(full)["train_seconds"]
    # a finished run is left as it is (it was re-scored and rewritten, even under an edited split)
    (cut / "config.yaml").write_text(original.replace("split: purls-22/5", "split: purls-18/9"))
    before = {f.name: f.stat().st_mtime_ns for f in cut.iterdir()}
    resume_run(cut, data_root=utd)
    assert {f.name: f.stat().st_mtime_ns for f in cut.iterdir()} == before
    with pytest.raises(ConfigError, match="keys: split"):  # evaluate reads the same config
        evaluate_run(cut, data_root=utd)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_run_started_on_cuda_resumes_elsewhere_with_resume_device(utd, tmp_path):
    """A run started with --device cuda could not be continued on a machine without a GPU: the
    error said 'use --device cpu', which resume did not have, and an edited config.yaml is refused.
    'resume --device cpu' continues it there and leaves the config as it was."""
    import yaml

    from zeroskel.cli import main
    from zeroskel.engine.runs import resume_run, train
    from zeroskel.engine.trainer import load_checkpoint, save_checkpoint

    cut = train(_cfg(extra=["validation.mode=none"]), tmp_path / "cut", data_root=utd, max_epochs=1)
    for f in [cut / "config.yaml", *cut.glob("*.pt")]:  # as if it had been started on a GPU machine
        if f.suffix == ".pt":
            state = load_checkpoint(f)
            state["config"]["device"] = "cuda"
            save_checkpoint(state, f)
        else:
            f.write_text(f.read_text().replace("device: cpu", "device: cuda"))
    with pytest.raises(ConfigError, match="device 'cuda' requested but CUDA is not available"):
        resume_run(cut, data_root=utd)
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resume_run(cut, data_root=utd, device="gpu")
    assert main(["resume", str(cut), "--device", "cpu", "--data-root", str(utd)]) == 0
    assert _metrics(cut)["device"] == "cpu" and yaml.safe_load((cut / "config.yaml").read_text())["device"] == "cuda"


def test_ce_initialisation_trains_the_encoder_first_and_resumes(utd, tmp_path):
    from zeroskel.engine.runs import resume_run, train
    from zeroskel.engine.trainer import load_checkpoint, run_logger
    from zeroskel.methods.pgfa import build_model
    from zeroskel.methods.pgfa.training import _ce_initialise, _Stage

    cfg = _cfg(seed=2, extra=["train.ce_init_epochs=2"])
    full = train(cfg, tmp_path / "full", data_root=utd)
    for stage in (1, 2):
        ck = load_checkpoint(full / f"stage{stage}_ce.pt")
        assert ck["epoch"] == 2 and "head.weight" in ck["model"]
    assert "cross-entropy initialisation of the encoder, 2 epochs over 18 classes" in (full / "train.log").read_text()
    secs = _metrics(full)["train_seconds"]
    assert secs["ce_init"] > 0 and secs["total_wall"] > secs["ce_init"] + secs["stage1"] + secs["stage2"]
    plain = train(_cfg(seed=2), tmp_path / "plain", data_root=utd)
    assert _core(_metrics(full)) != _core(_metrics(plain))
    # interrupted inside the stage-1 initialisation, then resumed: the same run
    cut = train(cfg, tmp_path / "cut", data_root=utd, max_epochs=1)
    assert load_checkpoint(cut / "stage1_ce.pt")["epoch"] == 1 and not (cut / "stage1_last.pt").exists()
    resume_run(cut, data_root=utd)
    assert _core(_metrics(cut)) == _core(_metrics(full))

    # the initialisation moves the encoder only: the projection keeps its initial weights
    model = build_model(cfg, "kinect_v1", 1, 384)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = np.random.default_rng(0).normal(size=(24, 3, 50, 20, 1)).astype(np.float32)
    st = _Stage(cfg, data, np.full(24, 50), np.repeat([3, 5, 7], 8), torch.zeros(27, 384), torch.device("cpu"))
    assert _ce_initialise(cfg, st, model, tmp_path / "ce.pt", 0, torch.device("cpu"), run_logger(None), None, "unit")
    after = model.state_dict()
    assert torch.equal(after["proj.weight"], before["proj.weight"])
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("encoder."))

    from zeroskel.engine.config import build_config
    for bad in ("-1", "1.5", "true"):
        with pytest.raises(ConfigError, match="train.ce_init_epochs"):
            train(_cfg(extra=[f"train.ce_init_epochs={bad}"]), tmp_path / "bad", data_root=utd)
    with pytest.raises(ConfigError, match="ce_init_epochs.*refit_from selected"):
        train(build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=TINY + [
            "train.ce_init_epochs=1", "validation.refit_from=selected", "validation.finetune_epochs=1"]),
            tmp_path / "bad2", data_root=utd)



def test_mixup_training_mixes_sequences_and_resumes(utd, tmp_path):
    from zeroskel.engine.data import draw_mix, training_share
    from zeroskel.engine.distributed import World
    from zeroskel.engine.runs import resume_run, train

    # the stage's batch rows are lam * x_i + (1 - lam) * x_perm(i) of the augmented batch
    data = np.random.default_rng(0).normal(size=(6, 3, 10, 4, 1)).astype(np.float32)
    idx, lengths, aug = np.array([4, 0, 2, 5]), np.full(6, 10), {"rotate_deg": 20.0}
    mix = draw_mix(4, 0.4, np.random.default_rng(3))
    assert 0.0 <= mix[0] <= 1.0 and sorted(mix[1]) == [0, 1, 2, 3]
    assert draw_mix(4, 0.0, np.random.default_rng(3)) is None
    one = World()
    plain = training_share(data, idx, lengths, aug, np.random.default_rng(1), one)
    mixed = training_share(data, idx, lengths, aug, np.random.default_rng(1), one, mix)
    np.testing.assert_allclose(mixed, mix[0] * plain + (1 - mix[0]) * plain[mix[1]], rtol=1e-5, atol=1e-6)

    cfg = _cfg(seed=2, extra=["train.mixup_alpha=0.4", "validation.mode=heldout_seen"])
    full = train(cfg, tmp_path / "full", data_root=utd)
    off = train(_cfg(seed=2, extra=["validation.mode=heldout_seen"]), tmp_path / "off", data_root=utd)
    assert _core(_metrics(full)) != _core(_metrics(off))
    cut = train(cfg, tmp_path / "cut", data_root=utd, max_epochs=1)
    resume_run(cut, data_root=utd)
    assert _core(_metrics(cut)) == _core(_metrics(full))
    # with the cross-entropy initialisation and the class-level loss, whose targets mix too
    for extra in (["train.ce_init_epochs=1"], ["model.loss=class_ce"]):
        assert (train(_cfg(seed=2, extra=["train.mixup_alpha=0.4"] + extra), tmp_path / extra[0],
                      data_root=utd) / "metrics.json").is_file()
    for bad in ("-0.1", "true", "x"):
        with pytest.raises(ConfigError, match="train.mixup_alpha"):
            train(_cfg(extra=[f"train.mixup_alpha={bad}"]), tmp_path / "bad", data_root=utd)


def test_final_model_scores_any_classes(utd, tmp_path):
    from zeroskel.data.cache import prepare
    from zeroskel.engine.runs import train
    from zeroskel.methods.pgfa import PGFAClassifier

    run = train(_cfg(extra=["validation.mode=none", "train.epochs=1", "eval.reference_protocol=true"]),
                tmp_path, data_root=utd)
    ref = _metrics(run)["reference_protocol_best_epoch_on_test"]  # an extra, labelled as such
    # with no refit the final model is a stage-1 model, which has no test curve: refused before any work,
    # where it used to train and leave the extra out of metrics.json without a word
    with pytest.raises(ConfigError, match="eval.reference_protocol needs a final model trained on all seen "
                                          "classes .*validation.refit false"):
        train(_cfg(extra=["validation.refit=false", "eval.reference_protocol=true"]), tmp_path / "norefit",
              data_root=utd)
    assert not (tmp_path / "norefit").exists()
    assert "NOT a valid zero-shot estimate" in ref["note"] and ref["top1_epoch"] == 1
    assert ref["top1"] == _metrics(run)["zsl_top1"]  # one epoch: the same model
    clf = PGFAClassifier.load(run)
    ds = prepare("utd_mhad", "pgfa50", data_root=utd)
    x = np.asarray(ds.data[:7])
    classes = np.arange(27)
    s = clf.score(x, classes)
    assert s.shape == (7, 27) and np.all(np.abs(s) <= 1 + 1e-5)
    feats = clf.features(x)
    np.testing.assert_allclose(clf.score(feats, classes), s, atol=1e-6)
    assert set(clf.predict(x, [3, 5])) <= {3, 5}
    assert clf.card["text_model"] == "all-MiniLM-L6-v2" and len(clf.card["text_checksum"]) == 64
    assert clf.card["versions"]["torch"] == torch.__version__
    with pytest.raises(CheckpointError, match="384-d text embeddings.*shape \\(27, 768\\)"):
        PGFAClassifier.load(run, text=np.zeros((27, 768), np.float32))
    with pytest.raises(DataError, match="dimension 5"):
        clf.score(np.zeros((2, 5)), classes)
    (run / "final.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="final.pt is corrupt"):
        PGFAClassifier.load(run)


def test_bad_names_and_inputs_give_clear_errors(utd, tmp_path):
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import evaluate_run, train

    with pytest.raises(ConfigError, match="unknown method .*; valid: pgfa"):
        train({**_cfg(), "method": "nope"}, tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset .*valid: .*utd_mhad"):
        train(build_config("pgfa", dataset="utd", split="purls-22/5", overrides=TINY), tmp_path, data_root=utd)
    with pytest.raises(ConfigError, match="unknown utd_mhad split .purls-99/1.; valid: .*purls-22/5"):
        train(build_config("pgfa", dataset="utd_mhad", split="purls-99/1", overrides=TINY), tmp_path, data_root=utd)
    split_file = tmp_path / "s.yaml"
    split_file.write_text("unseen: [3, 30]\nnum_classes: 31\n")
    with pytest.raises(ConfigError, match="31 classes, dataset .utd_mhad. has 27; class ids \\[27, 28, 29, 30\\]"):
        train(build_config("pgfa", dataset="utd_mhad", split=str(split_file), overrides=TINY), tmp_path,
              data_root=utd)
    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(["a"] * 26) + "\n")
    with pytest.raises((DataError, ConfigError), match="t.txt"):
        train(build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                           overrides=TINY + [f"text.source={texts}"]), tmp_path, data_root=utd)
    with pytest.raises(ConfigError, match="validation.mode.*pseudo_unseen"):
        train(build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                           overrides=TINY + ["validation.mode=test"]), tmp_path, data_root=utd)
    # a mistyped number fails before any run folder, with its key named (not a ValueError from int())
    for bad, key in (("train.epochs=abc", "train.epochs"), ("train.epochs=2.5", "train.epochs"),
                     ("model.input_frames=abc", "model.input_frames"), ("validation.smooth=x", "validation.smooth"),
                     ("train.threads=0", "train.threads"), ("train.threads=1.5", "train.threads")):
        with pytest.raises(ConfigError, match=f"{key} must be an integer"):
            train(build_config("pgfa", dataset="utd_mhad", split="purls-22/5", overrides=TINY + [bad]),
                  tmp_path / "typo", data_root=utd)
    assert not (tmp_path / "typo").exists()
    with pytest.raises(ConfigError, match="no config.yaml"):
        evaluate_run(tmp_path)


def test_aligned_validation_metric_needs_aligned_pseudo_unseen_validation():
    # validation.metric top1_aligned with the alignment off or heldout_seen validation was never
    # recorded: stage 1 trained to the end, then failed (a TypeError in the log line with
    # select: last, "no validation metric" with select: best); now the config check says why
    from zeroskel.engine.config import build_config
    from zeroskel.methods.pgfa.training import check_config

    def cfg(*extra):
        return build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                            overrides=["validation.metric=top1_aligned", *extra])

    check_config(cfg())                                   # pseudo_unseen with the alignment: fine
    check_config(cfg("validation.mode=none", "alignment.enabled=false"))  # no validation: unused
    for extra, why in ((["alignment.enabled=false"], "alignment.enabled is false"),
                       (["validation.mode=heldout_seen"], "needs validation.mode pseudo_unseen"),
                       (["validation.mode=heldout_seen", "validation.select=best"], "pseudo_unseen")):
        with pytest.raises(ConfigError, match=f"validation.metric top1_aligned.*{why}"):
            check_config(cfg(*extra))


# ---------------------------------------------------------------- GZSL calibration
def test_gzsl_calibration_is_chosen_on_training_data_and_reproduced(utd, tmp_path, monkeypatch):
    import warnings

    from zeroskel.data import cache
    from zeroskel.engine.runs import evaluate_run, train
    from zeroskel.eval.gzsl import gzsl_eval
    from zeroskel.methods.pgfa import PGFAClassifier

    a = train(_cfg(extra=["train.epochs=1"]), tmp_path / "a", data_root=utd)
    m = _metrics(a)
    sel = json.loads((a / "selection.json").read_text())
    cal = sel["calibration"]
    assert cal["available"] and cal["rule"] == "stacking" and cal["epoch"] == sel["best_epoch"] == 1
    assert "no test data" in cal["source"] and sel["calibration_samples"] == 18  # 1 of 6 per pseudo-seen class
    assert sel["fit_samples"] == 18 * 5 and sel["val_samples"] == 4 * 6 and {"S", "U", "H"} <= set(cal["heldout"])
    g = m["gzsl_calibrated"]
    assert g["available"] and g["gamma"] == cal["gamma"] and {"S", "U", "H"} <= set(g)
    assert "not applicable" in m["gzsl_gate"]
    # the stored gamma applied to the final model's test scores gives these numbers
    clf = PGFAClassifier.load(a)
    ds = cache.prepare("utd_mhad", "pgfa50", data_root=utd)
    test = ds.partition(next(iter(ds.partitions)), "test")
    classes = np.concatenate([clf.seen_classes, clf.unseen_classes])
    sc = clf.score(np.asarray(ds.data[test]), classes)
    assert not ds.data.flags.writeable
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*not writable.*")  # a read-only memmap slice is copied
        np.testing.assert_allclose(clf.score(ds.data[test[0]:test[0] + 3], classes), sc[:3], atol=1e-6)
    want = gzsl_eval(sc, ds.labels[test], classes, clf.seen_classes, clf.unseen_classes, gamma=cal["gamma"])
    assert {k: g[k] for k in ("S", "U", "H")} == pytest.approx({k: want[k] for k in ("S", "U", "H")})
    ev = evaluate_run(a, data_root=utd, device="cpu")
    assert ev["gzsl_calibrated"] == g and ev["gzsl_uncalibrated"] == m["gzsl_uncalibrated"]

    # the stage-1 sets of the finished run can be rebuilt from its config alone: the stage-1
    # model's scores on the rebuilt calibration + validation samples give back the stored gamma
    from zeroskel.data.splits import get_split
    from zeroskel.engine.trainer import load_checkpoint
    from zeroskel.eval.protocol import calibrate
    from zeroskel.methods.pgfa import build_model, load_texts
    from zeroskel.methods.pgfa.scoring import cosine, embed
    from zeroskel.methods.pgfa.training import training_partition, validation_partition

    cfg, part = clf.card["config"], clf.card["partition"]
    vp = validation_partition(cfg, ds, get_split("utd_mhad", "purls-22/5"), training_partition(cfg, ds, part))
    assert (len(vp["fit"]), len(vp["val"]), len(vp["calibration"])) == (90, 24, 18)
    assert vp["val_classes"].tolist() == sel["pseudo_unseen"] and vp["pseudo_split"].seen_array.tolist() == sel["pseudo_seen"]
    text = load_texts(cfg, ds, utd)["sentence"]
    stage1 = build_model(cfg, ds.layout, int(ds.data.shape[-1]), text.shape[1])
    stage1.load_state_dict(load_checkpoint(a / "stage1_last.pt")["model"])
    idx = np.concatenate([vp["calibration"], vp["val"]])
    cal_classes = np.concatenate([vp["pseudo_split"].seen_array, vp["val_classes"]])
    sc = cosine(embed(stage1, np.asarray(ds.data[idx]), torch.device("cpu")), text[cal_classes])
    redo = calibrate(sc, ds.labels[idx], cal_classes, vp["pseudo_split"].seen_array, vp["val_classes"])["stacking"]
    assert redo["gamma"] == pytest.approx(cal["gamma"], abs=1e-6)

    # by construction gamma never sees the test partition: scramble every test sample
    # (same training samples) and the whole selection record, gamma included, is unchanged
    real, calls = cache.prepare, []

    def scrambled(*args, **kw):
        d = real(*args, **kw)
        calls.append(args)
        test = d.partition(next(iter(d.partitions)), "test")
        data = np.array(d.data)
        data[test] = np.random.default_rng(0).normal(size=data[test].shape).astype(np.float32)
        d.data = data
        return d

    monkeypatch.setattr(cache, "prepare", scrambled)
    b = train(_cfg(extra=["train.epochs=1"]), tmp_path / "b", data_root=utd)
    sb = json.loads((b / "selection.json").read_text())
    assert sb["calibration"] == cal and sb["val_curve"] == sel["val_curve"]
    mb = _metrics(b)
    assert mb["gzsl_calibrated"]["gamma"] == cal["gamma"]
    assert calls  # the run read the scrambled data


def test_sparse_validation_changes_no_number(utd, tmp_path):
    from zeroskel.engine.runs import train

    last = ["train.epochs=3", "validation.select=last"]
    a = train(_cfg(extra=last + ["validation.every=1"]), tmp_path / "a", data_root=utd)
    b = train(_cfg(extra=last + ["validation.every=2"]), tmp_path / "b", data_root=utd)
    ma, mb = _metrics(a), _metrics(b)
    assert [("val_top1" in h) for h in mb["selection"]["val_curve"]] == [False, True, True]
    # the curve counts epochs as best_epoch and train.log do (1-based): the last entry is epoch 3
    assert [h["epoch"] for h in mb["selection"]["val_curve"]] == [1, 2, 3] == [h["epoch"] for h in
                                                                              ma["selection"]["val_curve"]]
    assert mb["selection"]["best_epoch"] == 3 and mb["selection"]["calibration"]["epoch"] == 3
    assert "epoch 3/3" in (b / "train.log").read_text()
    assert mb["selection"]["val_curve"][1:] == ma["selection"]["val_curve"][1:]
    assert mb["selection"]["calibration"] == ma["selection"]["calibration"]
    for k in ("zsl_top1", "zsl_top1_aligned", "zsl_confusion", "gzsl_uncalibrated", "gzsl_calibrated"):
        assert mb[k] == ma[k]
    with pytest.raises(ConfigError, match="validation.every must be a positive integer, got 0"):
        train(_cfg(extra=["validation.every=0"]), tmp_path / "c", data_root=utd)
    with pytest.raises(ConfigError, match="validation.min_epoch=4 is after the last epoch"):
        train(_cfg(extra=["validation.select=best", "validation.min_epoch=4"]), tmp_path / "c", data_root=utd)
    # no refit: the best epoch's weights are kept once min_epoch is reached (nothing before it)
    c = train(_cfg(extra=["train.epochs=3", "validation.select=best", "validation.refit=false",
                          "validation.min_epoch=3", "validation.every=2"]), tmp_path / "c", data_root=utd)
    assert _metrics(c)["selection"]["best_epoch"] == 3 and (c / "stage1_best.pt").is_file()


def test_warm_refit_fine_tunes_the_selected_stage1_model(utd, tmp_path):
    """validation.refit_from selected: stage 2 starts from the stage-1 model of the selected
    epoch, trains finetune_epochs on all seen classes, and resumes exactly."""
    from zeroskel.engine.runs import resume_run, train
    from zeroskel.engine.trainer import load_checkpoint

    warm = ["validation.select=last", "validation.refit_from=selected", "validation.finetune_epochs=3"]
    full = train(_cfg(extra=warm), tmp_path / "full", data_root=utd)
    m = _metrics(full)
    assert m["final_epochs"] == 3 and m["selection"]["best_epoch"] == 2
    assert m["final_model"] == "the stage-1 model of epoch 2, fine-tuned on all seen classes for 3 epochs"
    assert load_checkpoint(full / "stage2_last.pt")["epoch"] == 3
    cut = train(_cfg(extra=warm), tmp_path / "cut", data_root=utd, max_epochs=2)  # stage 2 stops after 2 of 3
    assert not (cut / "metrics.json").exists() and load_checkpoint(cut / "stage2_last.pt")["epoch"] == 2
    resume_run(cut, data_root=utd)
    assert _core(_metrics(cut)) == _core(m)

    # it starts from the stage-1 weights, not from scratch: from the same initial weights, data
    # order and lr the first epoch's loss would be identical; the trained start's is lower
    scratch = train(_cfg(extra=["validation.select=last", "validation.refit_from=scratch"]), tmp_path / "scratch",
                    data_root=utd)
    first = load_checkpoint(full / "stage2_last.pt")["history"][0]["loss"]
    assert first < load_checkpoint(scratch / "stage2_last.pt")["history"][0]["loss"]
    assert "fine-tuning the stage-1 model of epoch 2" in (full / "train.log").read_text()

    with pytest.raises(ConfigError, match="needs validation.finetune_epochs, a positive integer, got None"):
        train(_cfg(extra=["validation.refit_from=selected"]), tmp_path / "bad", data_root=utd)
    with pytest.raises(ConfigError, match="unknown validation.refit_from 'stage3'"):
        train(_cfg(extra=["validation.refit_from=stage3"]), tmp_path / "bad", data_root=utd)


def test_fine_tune_settings_are_inert_without_a_refit():
    """refit_from / finetune_epochs shape a refit; a config file that sets them must still
    accept validation.mode=none, refit=false or refit_from=scratch (no refit to shape)."""
    from zeroskel.engine.config import build_config
    from zeroskel.methods.pgfa.training import check_config, unused_settings

    warm = ["validation.refit_from=selected", "validation.finetune_epochs=12"]
    for ds, sp in [("utd_mhad", "purls-22/5"), ("nw_ucla", "purls-5/5")]:
        cfg = build_config("pgfa", dataset=ds, split=sp, overrides=warm)
        check_config(cfg)
        assert unused_settings(cfg["validation"]) == []
        for extra, why in ((["validation.mode=none"], "validation.mode is none"),
                           (["validation.refit=false"], "validation.refit is false"),
                           (["validation.refit_from=scratch"], "validation.refit_from is scratch")):
            cfg = build_config("pgfa", dataset=ds, split=sp, overrides=warm + extra)
            check_config(cfg)
            # accepted, but the run's log says the fine-tune setting did nothing
            (note,) = unused_settings(cfg["validation"])
            assert note.startswith(f"validation.finetune_epochs=12 is not used: {why}")
        check_config(build_config("pgfa", dataset=ds, split=sp,
                                  overrides=["validation.refit_from=selected", "validation.mode=none"]))
    assert unused_settings(build_config("pgfa", dataset="utd_mhad", split="x")["validation"]) == []
    with pytest.raises(ConfigError, match="needs validation.finetune_epochs, a positive integer, got 0"):
        check_config(build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                                  overrides=["validation.refit_from=selected", "validation.finetune_epochs=0"]))


def test_center_by_without_centring_is_noted_in_the_log(utd, tmp_path):
    # the small preset centres UTD-MHAD per subject; --set alignment.center=false left center_by
    # subject in the config, applied nowhere, and nothing said so
    from zeroskel.engine.runs import train
    from zeroskel.methods.pgfa.training import unused_alignment_settings

    cfg = _cfg(extra=["alignment.center=false", "validation.mode=none", "train.epochs=1"])
    assert cfg["alignment"]["center_by"] == "subject"
    (note,) = unused_alignment_settings(cfg["alignment"])
    assert note.startswith("alignment.center_by=subject is not used: alignment.center is false")
    assert "alignment.enabled is false" in unused_alignment_settings({**cfg["alignment"], "enabled": False,
                                                                      "center": True})[0]
    assert unused_alignment_settings(_cfg()["alignment"]) == []
    run = train(cfg, tmp_path, data_root=utd)
    assert "alignment.center_by=subject is not used" in (run / "train.log").read_text()


def test_bf16_training_on_real_data(utd, tmp_path):
    from zeroskel.engine.runs import train

    run = train(_cfg(extra=["train.precision=bf16", "validation.mode=none"]), tmp_path, data_root=utd)
    m = _metrics(run)
    assert m["precision"] == "bf16" and "bf16 autocast" in (run / "train.log").read_text()
    assert np.isfinite(m["zsl_top1"]) and sum(map(sum, m["zsl_confusion"])) == 80
    with pytest.raises(ConfigError, match="unknown train.precision 'fp16'; valid: bf16, fp32"):
        train(_cfg(extra=["train.precision=fp16"]), tmp_path / "bad", data_root=utd)


def test_gzsl_calibration_unavailable_is_recorded(utd, tmp_path):
    from zeroskel.engine.runs import train

    for extra, why in ((["validation.mode=none"], "validation.mode is none"),
                       (["validation.calibration_fraction=0"], "calibration_fraction is 0")):
        m = _metrics(train(_cfg(extra=["train.epochs=1"] + extra), tmp_path, data_root=utd))
        g = m["gzsl_calibrated"]
        assert g["available"] is False and why in g["reason"] and "S" not in g
        assert {"S", "U", "H"} <= set(m["gzsl_uncalibrated"])
    with pytest.raises(ConfigError, match="validation.calibration_fraction"):
        train(_cfg(extra=["validation.calibration_fraction=1.5"]), tmp_path, data_root=utd)


def test_heldout_subject_validation_and_prompt_ensemble(utd, tmp_path):
    from zeroskel.data.cache import prepare
    from zeroskel.engine.runs import train
    from zeroskel.data.splits import holdout_group
    from zeroskel.methods.pgfa import load_texts

    ds = prepare("utd_mhad", "pgfa50", data_root=utd)
    tr = ds.partition("xsub", "train")
    rest, held, values = holdout_group(ds, tr, "subject", seed=3, count=2)
    subj = np.asarray(ds.meta["subject"])
    assert len(values) == 2 and set(subj[held]) == set(values) and not set(subj[rest]) & set(values)
    assert len(rest) + len(held) == len(tr) and set(subj[tr]) == {1, 3, 5, 7}  # train subjects only
    with pytest.raises(ConfigError, match="heldout_count=4.*4 subject value"):
        holdout_group(ds, tr, "subject", seed=3, count=4)
    with pytest.raises(ConfigError, match="heldout_count=0"):
        holdout_group(ds, tr, "subject", seed=3, count=0)
    with pytest.raises(ConfigError, match="validation.heldout_group.*subject"):
        holdout_group(ds, tr, "camera", seed=3)

    # data.limit_per_class=6 keeps the first 6 samples of each class: subjects 1 and 3
    run = train(_cfg(extra=["validation.heldout_group=subject", "text.source=[name, name+purls-global]"]),
                tmp_path, data_root=utd)
    sel = json.loads((run / "selection.json").read_text())
    held_subjects = sel["heldout_group"]["value"]
    assert sel["heldout_group"]["key"] == "subject" and len(held_subjects) == 1
    assert set(held_subjects) <= {1, 3}
    # stage 1 fits on the other subject only: its 2 or 4 of each class's 6 samples
    assert sel["fit_samples"] + sel.get("calibration_samples", 0) <= 4 * len(sel["pseudo_seen"])
    assert 0 < sel["val_samples"] <= 4 * len(sel["pseudo_unseen"])
    # heldout_seen by subject: every seen sample of the held-out subject validates
    run = train(_cfg(extra=["validation.heldout_group=subject", "validation.mode=heldout_seen"]), tmp_path,
                data_root=utd)
    sel = json.loads((run / "selection.json").read_text())
    assert sel["heldout_group"]["value"][0] in (1, 3)
    assert sel["fit_samples"] + sel["val_samples"] == 22 * 6 and 22 <= sel["val_samples"] <= 22 * 5
    # the ensemble's class vectors are the renormalised mean of the two prompts' unit vectors
    cfg = _cfg(extra=["text.source=[name, name+purls-global]"])
    both = load_texts(cfg, ds, utd)["sentence"]
    a = load_texts(_cfg(extra=["text.source=name"]), ds, utd)["sentence"]
    b = load_texts(_cfg(extra=["text.source=name+purls-global"]), ds, utd)["sentence"]
    np.testing.assert_allclose(both, _unit(_unit(a) + _unit(b)), atol=1e-5)
    with pytest.raises(ConfigError, match="validation.heldout_group needs validation.mode pseudo_unseen or"):
        train(_cfg(extra=["validation.heldout_group=subject", "validation.mode=none"]), tmp_path, data_root=utd)


def test_text_augmentation_draws_training_targets_from_the_bank(utd, tmp_path):
    import torch

    from zeroskel.data.cache import prepare
    from zeroskel.engine.runs import train
    from zeroskel.methods.pgfa import load_texts
    from zeroskel.methods.pgfa.training import _Stage

    ds = prepare("utd_mhad", "pgfa50", data_root=utd)
    srcs = ["name", "name+purls-global", "name+purls-hands"]
    cfg = _cfg(extra=[f"text.train_sources=[{', '.join(srcs)}]"])
    tx = load_texts(cfg, ds, utd)
    assert tx["train_bank"].shape == (3, 27, tx["sentence"].shape[1])
    # each bank row is that source's own class embedding; evaluation anchors stay text.source
    for i, src in enumerate(srcs):
        one = load_texts(_cfg(extra=[f"text.source={src}"]), ds, utd)["sentence"]
        np.testing.assert_allclose(tx["train_bank"][i], one, atol=1e-6)
    np.testing.assert_allclose(tx["sentence"], tx["train_bank"][0], atol=1e-6)
    # the stage draws a source per sample; the loss target is that source's class row
    idx = np.arange(40)
    st = _Stage(cfg, np.asarray(ds.data[idx], np.float32), ds.lengths[idx], ds.labels[idx],
                torch.from_numpy(tx["train_bank"]), "cpu")
    batches = list(st.batches(0, np.random.default_rng(0)))
    assert all(b.draws is not None and b.mix is None for b in batches)
    drawn = torch.cat([b.draws for b in batches])
    assert set(drawn.tolist()) == {0, 1, 2}  # 40 draws over 3 sources
    again = torch.cat([b.draws for b in st.batches(0, np.random.default_rng(0))])
    assert torch.equal(drawn, again)
    # end to end: trains, records the sources in the checkpoint card, is reproducible
    a, b = train(cfg, tmp_path, data_root=utd), train(cfg, tmp_path, data_root=utd)
    assert _core(_metrics(a)) == _core(_metrics(b))
    from zeroskel.engine.trainer import load_checkpoint
    assert load_checkpoint(a / "final.pt")["text_train_sources"] == srcs
    with pytest.raises(ConfigError, match="text.train_sources must be"):
        train(_cfg(extra=["text.train_sources=[name, 3]"]), tmp_path, data_root=utd)


def test_class_ce_training_runs_and_rejects_bad_options(utd, tmp_path):
    from zeroskel.engine.runs import train

    a = train(_cfg(extra=["model.loss=class_ce"]), tmp_path, data_root=utd)
    b = train(_cfg(), tmp_path, data_root=utd)
    ma, mb = _metrics(a), _metrics(b)
    assert ma["test_samples"] == 80 and ma["selection"]["val_curve"] != mb["selection"]["val_curve"]
    with pytest.raises(ConfigError, match="model.loss.*batch_kl, class_ce"):
        train(_cfg(extra=["model.loss=ce"]), tmp_path, data_root=utd)
    with pytest.raises(ConfigError, match="class_ce.*text.train_sources"):
        train(_cfg(extra=["model.loss=class_ce", "text.train_sources=[name, name+purls-global]"]), tmp_path,
              data_root=utd)
    # rejected configs leave no run folder behind: only the two runs above exist
    assert sorted(d.name for d in tmp_path.iterdir()) == sorted([a.name, b.name])


def test_ensemble_of_runs_averages_member_cosines(utd, tmp_path):
    from zeroskel.data.cache import prepare
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import evaluate_run, train
    from zeroskel.methods.pgfa import PGFAClassifier, PGFAEnsemble

    one_epoch = ["validation.mode=none", "train.epochs=1"]
    a = train(_cfg(seed=1, extra=one_epoch), tmp_path, data_root=utd)
    # a bone-stream member: same prepared input, the model computes its bones (two-stream)
    b = train(_cfg(seed=2, extra=one_epoch + ["model.modality=bone"]), tmp_path, data_root=utd)
    ca, cb = PGFAClassifier.load(a), PGFAClassifier.load(b)
    assert (ca.model.modality.modality, cb.model.modality.modality) == ("joint", "bone")
    ens = PGFAEnsemble([ca, cb])
    x = np.asarray(prepare("utd_mhad", "pgfa50", data_root=utd).data[:6])
    classes = np.arange(27)
    np.testing.assert_allclose(ens.score(x, classes), (ca.score(x, classes) + cb.score(x, classes)) / 2, atol=1e-5)
    assert ens.features(x).shape == (6, 2 * ca.feature_dim)
    np.testing.assert_allclose(ens.join([ca.features(x), cb.features(x)]), ens.features(x), atol=1e-6)
    np.testing.assert_allclose(PGFAEnsemble([ca]).score(x, classes), ca.score(x, classes), atol=1e-5)
    ev = evaluate_run([a, b], data_root=utd, device="cpu")
    assert ev["ensemble"] == [str(a), str(b)] and ev["test_samples"] == 80
    assert ev["gzsl_calibrated"]["available"] is False and "ensemble" in ev["gzsl_calibrated"]["reason"]
    from zeroskel.cli import main
    assert main(["evaluate", str(a), str(b), "--data-root", str(utd)]) == 0
    # members of different splits cannot be mixed
    other = train(build_config("pgfa", dataset="utd_mhad", split="purls-18/9", seed=1, overrides=TINY + one_epoch),
                  tmp_path, data_root=utd)
    with pytest.raises(CheckpointError, match="differ in 'seen'"):
        evaluate_run([a, other], data_root=utd)
    with pytest.raises(ConfigError, match="is listed more than once"):
        evaluate_run([a, b, a.parent / ".." / a.parent.name / a.name], data_root=utd)
    assert main(["evaluate", str(a), "--align", "noequals", "--data-root", str(utd)]) == 2
    assert main(["evaluate", str(a), "--align", "enabled=maybe", "--data-root", str(utd)]) == 2
    with pytest.raises(CheckpointError, match="not saved as one checkpoint"):
        ens.state()
    # the bone model survives export: the bundle rebuilds its modality and scores the same
    from zeroskel.recognizer import Recognizer, export_bundle
    bundle = export_bundle(b, tmp_path / "bone_bundle")
    assert json.loads((bundle / "bundle.json").read_text())["model"]["modality"] == "bone"
    labels = ["wave", "clap", "jog"]
    rec = Recognizer.load(bundle)
    np.testing.assert_allclose(rec.score(x, labels), Recognizer.from_run(b).score(x, labels), atol=1e-6)
    with pytest.raises(ConfigError, match="model.modality 'bones'"):
        train(_cfg(extra=one_epoch + ["model.modality=bones"]), tmp_path / "bad", data_root=utd)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_alignment_overrides_that_change_nothing_are_refused(utd, tmp_path):
    # --align alpha=0.5 on a run trained with alignment.enabled false was recorded and ignored:
    # the output had no aligned accuracy and said nothing
    from zeroskel.cli import main
    from zeroskel.engine.runs import evaluate_run, train

    run = train(_cfg(extra=["validation.mode=none", "train.epochs=1", "alignment.enabled=false"]), tmp_path,
                data_root=utd)
    with pytest.raises(ConfigError, match=r"alignment override alpha: the alignment is off .*enabled=true"):
        evaluate_run(run, data_root=utd, device="cpu", alignment={"alpha": 0.5})
    assert main(["evaluate", str(run), "--align", "alpha=0.5", "--data-root", str(utd)]) == 2
    on = evaluate_run(run, data_root=utd, device="cpu", alignment={"enabled": True, "alpha": 0.5})
    assert "zsl_top1_aligned" in on and on["alignment"]["alpha"] == 0.5
    assert "zsl_top1_aligned" not in evaluate_run(run, data_root=utd, device="cpu", alignment={"enabled": False})
    with pytest.raises(ConfigError, match="the override sets alignment.enabled false"):
        evaluate_run(run, data_root=utd, device="cpu", alignment={"enabled": False, "iterations": 2})
    # likewise an override of a key that the run's other alignment settings leave unread
    for override, match in (({"enabled": True, "center_by": "subject", "center": False},
                             "center_by: not used with alignment.center false"),
                            ({"enabled": True, "pseudo_labels": "argmax", "epsilon": 0.5},
                             "epsilon: not used with alignment.pseudo_labels argmax"),
                            ({"enabled": True, "pseudo_labels": "balanced", "temperature": 2.0},
                             "temperature: not used with alignment.pseudo_labels balanced")):
        with pytest.raises(ConfigError, match=match):
            evaluate_run(run, data_root=utd, device="cpu", alignment=override)


def test_joint_motion_stream_trains_reloads_and_exports(utd, tmp_path):
    # joint_motion doubles the encoder's input channels; a reload and a bundle must rebuild
    # that from the config alone (the stored args still say nothing about channels)
    from zeroskel.data.cache import prepare
    from zeroskel.engine.runs import train
    from zeroskel.methods.pgfa import PGFAClassifier
    from zeroskel.recognizer import Recognizer, export_bundle

    run = train(_cfg(extra=["validation.mode=none", "train.epochs=1", "model.modality=joint_motion"]),
                tmp_path, data_root=utd)
    clf = PGFAClassifier.load(run)
    enc = clf.model.encoder
    assert clf.model.modality.modality == "joint_motion" and enc.in_channels == 6
    assert enc.data_bn.num_features == enc.num_persons * 20 * 6
    x = np.asarray(prepare("utd_mhad", "pgfa50", data_root=utd).data[:5])
    labels = ["wave", "clap", "jog"]
    bundle = export_bundle(run, tmp_path / "jm_bundle")
    np.testing.assert_allclose(Recognizer.load(bundle).score(x, labels), Recognizer.from_run(run).score(x, labels),
                               atol=1e-6)


def test_temporal_segment_training_on_real_data(utd, tmp_path):
    from zeroskel.data.cache import prepare
    from zeroskel.engine.runs import evaluate_run, train
    from zeroskel.methods.pgfa import PGFAClassifier, load_texts
    from zeroskel.recognizer import Recognizer, export_bundle

    seg = "text.segment_sources=[name+purls-start, name+purls-middle, name+purls-end]"
    run = train(_cfg(extra=["validation.mode=none", "train.epochs=1", seg]), tmp_path, data_root=utd)
    clf = PGFAClassifier.load(run)
    d = clf.model.text_dim
    assert clf.model.segments == 3 and clf.text.shape == (27, 4 * d) and clf.feature_dim == 4 * d
    assert clf.card["text_segment_sources"] == ["name+purls-start", "name+purls-middle", "name+purls-end"]
    # the stored bank: global anchor, then the start / middle / end texts' embeddings
    cfg = clf.card["config"]
    ds = prepare("utd_mhad", "pgfa50", data_root=utd)
    tx = load_texts(cfg, ds, utd)
    assert len(tx["segment_texts"]) == 3 and "sit" in tx["segment_texts"][2][24].lower()
    np.testing.assert_allclose(clf.text, tx["sentence"], atol=1e-6)
    plain = load_texts({**cfg, "text": {**cfg["text"], "segment_sources": None}}, ds, utd)["sentence"]
    np.testing.assert_allclose(clf.text[:, :d] * 2, plain / np.linalg.norm(plain, axis=1, keepdims=True), atol=1e-6)
    ev = evaluate_run(run, data_root=utd, device="cpu")
    assert json.loads((run / "metrics.json").read_text())["zsl_top1"] == ev["zsl_top1"]
    # a bundle rebuilds the segment heads; free-text labels score the global block
    bundle = export_bundle(run, tmp_path / "seg_bundle")
    assert json.loads((bundle / "bundle.json").read_text())["model"]["segments"] == 3
    rec = Recognizer.load(bundle)
    x = np.asarray(ds.data[:5])
    labels = ["wave", "clap", "sit to stand"]
    glob = clf.features(x)[:, :d]
    emb = rec.encode_labels(labels)
    want = (glob / np.linalg.norm(glob, axis=1, keepdims=True)) @ emb.T
    np.testing.assert_allclose(rec.score(x, labels), want, atol=1e-5)
    np.testing.assert_allclose(rec.score(x, labels), Recognizer.from_run(run).score(x, labels), atol=1e-6)
    for bad, msg in (("text.segment_sources=name+purls-start", "must be null or a list of sources"),
                     ("text.segment_sources=[name+purls-begin]", "purls-begin")):
        with pytest.raises(ConfigError, match=msg):
            train(_cfg(extra=["validation.mode=none", "train.epochs=1", bad]), tmp_path / "bad", data_root=utd)
    with pytest.raises(ConfigError, match="cannot be combined"):
        train(_cfg(extra=["validation.mode=none", seg, "text.train_sources=[name, name+purls-global]"]),
              tmp_path / "bad", data_root=utd)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_body_part_training_on_real_data(utd, tmp_path):
    from zeroskel.data.cache import prepare
    from zeroskel.engine.runs import evaluate_run, train
    from zeroskel.methods.pgfa import PGFAClassifier, load_texts
    from zeroskel.recognizer import Recognizer, export_bundle

    parts = "text.part_sources={hands: name+purls-hands, legs: name+purls-legs}"
    seg = "text.segment_sources=[name+purls-start, name+purls-end]"
    run = train(_cfg(extra=["validation.mode=none", "train.epochs=1", seg, parts]), tmp_path, data_root=utd)
    clf = PGFAClassifier.load(run)
    d = clf.model.text_dim
    assert clf.model.parts == ("hands", "legs") and clf.model.segments == 2 and clf.text.shape == (27, 5 * d)
    assert clf.card["text_part_sources"] == {"hands": "name+purls-hands", "legs": "name+purls-legs"}
    # the stored bank: global, start, end, then the hands and legs texts' unit embeddings / sqrt(5)
    cfg = clf.card["config"]
    ds = prepare("utd_mhad", "pgfa50", data_root=utd)
    tx = load_texts(cfg, ds, utd)
    assert list(tx["part_texts"]) == ["hands", "legs"] and "knees" in tx["part_texts"]["legs"][24].lower()
    np.testing.assert_allclose(clf.text, tx["sentence"], atol=1e-6)
    legs_only = load_texts({**cfg, "text": {**cfg["text"], "segment_sources": None,
                                            "part_sources": {"legs": "name+purls-legs"}}}, ds, utd)["sentence"]
    np.testing.assert_allclose(clf.text[:, 4 * d:] * math.sqrt(5), legs_only[:, d:] * math.sqrt(2), atol=1e-5)
    ev = evaluate_run(run, data_root=utd, device="cpu")
    assert json.loads((run / "metrics.json").read_text())["zsl_top1"] == ev["zsl_top1"]
    # a bundle rebuilds the part heads; free-text labels score the global block
    bundle = export_bundle(run, tmp_path / "part_bundle")
    card = json.loads((bundle / "bundle.json").read_text())
    assert card["model"]["parts"] == ["hands", "legs"] and card["text"]["part_sources"]["legs"] == "name+purls-legs"
    rec = Recognizer.load(bundle)
    x = np.asarray(ds.data[:4])
    labels = ["wave", "jog"]
    glob = clf.features(x)[:, :d]
    want = (glob / np.linalg.norm(glob, axis=1, keepdims=True)) @ rec.encode_labels(labels).T
    np.testing.assert_allclose(rec.score(x, labels), want, atol=1e-5)
    for bad, msg in (("text.part_sources=[name+purls-hands]", "must be null or a mapping"),
                     ("text.part_sources={arms: name+purls-hands}", r"body part \(a key of text.part_sources\) 'arms'; valid: hands, head"),
                     ("text.part_sources={hands: name+purls-fingers}", "purls-fingers")):
        with pytest.raises(ConfigError, match=msg):
            train(_cfg(extra=["validation.mode=none", "train.epochs=1", bad]), tmp_path / "bad", data_root=utd)
    with pytest.raises(ConfigError, match="part_sources and text.train_sources cannot be combined"):
        train(_cfg(extra=["validation.mode=none", parts, "text.train_sources=[name, name+purls-global]"]),
              tmp_path / "bad", data_root=utd)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_ntu60_paper_preset_end_to_end_on_ntu_format_files(data_root, tmp_path):
    """The ``ntu60`` preset (paper setting: ST-GCN slim, SGD 0.05, PGFA's class descriptions)
    from raw NTU ``.skeleton`` files through the reader, training and evaluation. The real
    NTU RGB+D is not shipped, so the files are fixtures in the exact published format: one
    sample per class and subject, subjects 1 and 2 in the xsub training half, 3 in the test half."""
    from ntu_fixtures import sample_name, single_person_frames, two_person_frames, write_skeleton
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train

    need(data_root, "text/pgfa/ntu60_des.txt")
    root = tmp_path / "data"
    skel = root / "ntu60" / "nturgb+d_skeletons"
    for action in range(1, 61):
        for subject in (1, 2, 3):
            frames = (two_person_frames(24, seed=action) if action >= 50
                      else single_person_frames(24, seed=3 * action + subject))
            write_skeleton(skel / f"{sample_name(1, 1, subject, 1, action)}.skeleton", frames, seed=action + subject)
    (root / "text").symlink_to(data_root / "text")
    cfg = build_config("pgfa", config="ntu60", dataset="ntu60", split="synse-55/5", seed=1,
                       overrides=["train.epochs=1", "train.warmup_epochs=0", "text.model=all-MiniLM-L6-v2",
                                  f"data.cache_dir={tmp_path / 'cache'}", "device=cpu", "train.threads=1"])
    assert cfg["preset"] == "ntu60" and cfg["train"]["optimizer"] == "sgd" and cfg["train"]["lr"] == 0.05
    run = train(cfg, tmp_path / "runs", data_root=root)
    m = _metrics(run)
    assert m["test_samples"] == 5 and len(m["zsl_confusion"]) == 5      # one test sample per unseen class
    assert sorted(m["unseen_classes"]) == [10, 11, 19, 26, 56]
    from zeroskel.methods.pgfa import PGFAClassifier
    card = PGFAClassifier.load(run).card
    assert card["layout"] == "ntu25" and card["num_persons"] == 2 and card["frames"] == 50
    assert card["text_source"] == "pgfa-des" and card["dataset"] == "ntu60"
    assert card["config"]["model"] == {**card["config"]["model"], "encoder": "stgcn", "preset": "slim"}


def test_training_on_a_custom_format_dataset_with_its_own_texts(tmp_path):
    """A user's own data (custom format, no data root): class texts from its class names
    through a template, or from a text file; a file with the wrong count names the file."""
    import yaml
    from zeroskel.data.readers.custom import write_custom
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import evaluate_run, train

    rng = np.random.default_rng(0)
    labels = [i % 6 for i in range(48)]
    # class-dependent motion, so the texts have something to align with
    seqs = [(np.sin(np.linspace(0, 3, 20))[:, None, None] * (1 + c) + 0.1 * rng.standard_normal((20, 25, 3)))
            .astype(np.float32) for c in labels]
    names = ["wave hand", "clap", "jump up", "sit down", "stand up", "kick"]
    write_custom(tmp_path / "mine.npz", seqs, labels, names, "ntu25", name="mine",
                 partitions={"custom": ["train" if i < 36 else "test" for i in range(48)]})
    split = tmp_path / "split.yaml"
    # the unseen classes by name, one by id; the class count comes from the dataset
    split.write_text(yaml.safe_dump({"name": "mine-4/2", "unseen": ["stand up", 5]}))
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"a person does {n} slowly" for n in names) + "\n")
    tiny = [o for o in TINY if not o.startswith(("text.source", "data.limit"))] + \
        ["data.pipeline=none", "train.batch_size=8", "eval.gzsl=false"]

    def cfg(*extra):
        return build_config("pgfa", dataset=str(tmp_path / "mine.npz"), split=str(split), seed=1,
                            overrides=tiny + list(extra))

    run = train(cfg("text.source=a person doing {name}", f"text.segment_sources=[name, {texts}]",
                    "model.input_frames=16"), tmp_path / "runs")
    m = _metrics(run)
    assert m["unseen_classes"] == [4, 5] and m["test_samples"] == 4
    assert evaluate_run(run)["zsl_top1"] == m["zsl_top1"]
    texts.write_text("only one line\n")
    with pytest.raises(DataError, match=r"texts.txt: 1 lines for 6 classes"):
        train(cfg(f"text.source={texts}"), tmp_path / "runs")
    # a preset's PURLS segment texts do not exist for a custom dataset: the error names the key
    with pytest.raises(ConfigError, match=r"^text.segment_sources: class text source 'name\+purls-start' .*"
                                          r"'purls-start' is not a source"):
        train(cfg("text.source=name", "text.segment_sources=[name+purls-start, name]"), tmp_path / "runs")


def test_metrics_recomputed_by_hand_and_gamma_blind_to_test_labels(tmp_path):
    """metrics.json against plain numpy over the final model's test features: ZSL top-1 is
    sample-level over the unseen test samples with the argmax over the unseen classes only;
    GZSL S / U are over the seen / unseen test samples with the argmax over all classes (less
    gamma on the seen ones) and H is their harmonic mean. The calibration gamma (and the whole
    selection record) is the same when the test labels are shuffled: it never reads them."""
    import yaml
    from zeroskel.data.readers.custom import write_custom
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import evaluate_run, train
    from zeroskel.methods.pgfa import PGFAClassifier

    rng = np.random.default_rng(3)
    n_cls, n_train, n_test = 8, 8, 4
    labels = np.array([c for c in range(n_cls) for _ in range(n_train + n_test)])
    part = np.array(["train"] * n_train + ["test"] * n_test)[np.arange(len(labels)) % (n_train + n_test)]
    seqs = [(np.sin(np.linspace(0, 3, 16))[:, None, None] * (1 + c) + 0.2 * rng.standard_normal((16, 25, 3)))
            .astype(np.float32) for c in labels]
    names = ["wave hand", "clap", "jump up", "sit down", "stand up", "kick", "throw", "bow"]
    split = tmp_path / "split.yaml"
    split.write_text(yaml.safe_dump({"name": "mine-6/2", "unseen": [2, 5]}))
    tiny = [o for o in TINY if not o.startswith(("text.source", "data.limit"))] + \
        ["data.pipeline=none", "train.batch_size=8", "text.source=a person doing {name}", "eval.gzsl=true", "train.epochs=4", "validation.select=last"]
    shuffled = labels.copy()
    test = np.flatnonzero(part == "test")
    shuffled[test] = rng.permutation(labels[test])  # every class keeps its test count, samples move
    assert (shuffled[test] != labels[test]).any()
    runs = {}
    for tag, lab in (("real", labels), ("shuffled", shuffled)):
        write_custom(tmp_path / f"{tag}.npz", seqs, lab, names, "ntu25", name="mine", partitions={"custom": part})
        cfg = build_config("pgfa", dataset=str(tmp_path / f"{tag}.npz"), split=str(split), seed=1, overrides=tiny)
        runs[tag] = train(cfg, tmp_path / tag)
    sel = {t: {k: v for k, v in json.loads((r / "selection.json").read_text()).items() if k != "seconds"}
           for t, r in runs.items()}
    assert sel["real"]["calibration"]["available"] and sel["real"] == sel["shuffled"]

    run = runs["real"]
    m = _metrics(run)
    ev = evaluate_run(run)  # re-scores exactly what training wrote
    assert {k: v for k, v in ev.items() if k != "alignment"} == {k: m[k] for k in ev if k != "alignment"}
    clf = PGFAClassifier.load(run)
    seen, unseen = np.array(clf.card["seen"]), np.array(clf.card["unseen"])
    feats = clf.features(np.stack([seqs[i].transpose(2, 0, 1)[..., None] for i in test]).astype(np.float32))
    y = labels[test]

    def cos(a, b):
        return (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T

    u = np.isin(y, unseen)
    pred_u = unseen[cos(feats[u], clf.text[unseen]).argmax(1)]
    assert m["test_samples"] == u.sum() == 8
    assert m["zsl_top1"] == pytest.approx(100 * np.mean(pred_u == y[u]))
    for c in unseen:
        assert m["zsl_per_class"][str(c)] == pytest.approx(100 * np.mean(pred_u[y[u] == c] == c))
    np.testing.assert_array_equal(m["zsl_confusion"], [[np.sum((y[u] == a) & (pred_u == b)) for b in unseen]
                                                       for a in unseen])
    # metrics.json says which axis is which, and names the classes of the rows / columns
    assert m["zsl_confusion_axes"] == {"rows": "true class", "columns": "predicted class", "order": [2, 5],
                                       "names": ["jump up", "kick"]}
    classes = np.concatenate([seen, unseen])
    sc = cos(feats, clf.text[classes])
    # gamma moves test samples here, so a wrong gamma (or rule) would show
    assert m["gzsl_calibrated"]["S"] != m["gzsl_uncalibrated"]["S"]
    for key, gamma in (("gzsl_uncalibrated", 0.0), ("gzsl_calibrated", sel["real"]["calibration"]["gamma"])):
        pred = classes[(sc - gamma * np.isin(classes, seen)).argmax(1)]
        s_acc, u_acc = 100 * np.mean(pred[~u] == y[~u]), 100 * np.mean(pred[u] == y[u])
        h = 0.0 if s_acc + u_acc == 0 else 2 * s_acc * u_acc / (s_acc + u_acc)
        assert (m[key]["S"], m[key]["U"], m[key]["H"]) == pytest.approx((s_acc, u_acc, h)), key


def test_resume_refuses_a_dataset_prepared_again_with_other_content(tmp_path):
    """A PGFA run interrupted, its custom dataset rewritten with other samples (or its class-text
    file edited), then resumed: it continued on the new data and reported one result for the mix.
    Refused now, naming the run, the changed part and the way out; the original content
    (rewritten: new file times, a new cache folder) resumes it."""
    from conftest import TINY_PGFA, write_tiny_custom
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import resume_run, train

    ds, split = write_tiny_custom(tmp_path)
    texts = "wave a hand\nclap hands\njump up\nkick a leg\n"
    (tmp_path / "texts.txt").write_text(texts)
    cfg = build_config("pgfa", dataset=str(ds), split=str(split), seed=1,
                       overrides=TINY_PGFA + ["train.epochs=2", f"text.source={tmp_path / 'texts.txt'}",
                                              "eval.gzsl=false", "validation.mode=none"])
    full = train(cfg, tmp_path / "full")
    cut = train(cfg, tmp_path / "cut", max_epochs=1)
    write_tiny_custom(tmp_path, shift=0.5)
    with pytest.raises(ConfigError, match=f"{cut}: the data of dataset .*mine.npz are not those this run "
                                          "was trained on \\(stage2_last.pt\\).*changed since: the skeleton "
                                          "sequences .*\\(zeroskel train --method pgfa"):
        resume_run(cut)
    assert not (cut / "final.pt").exists()
    write_tiny_custom(tmp_path)
    (tmp_path / "texts.txt").write_text(texts.replace("jump up", "jump high"))
    with pytest.raises(ConfigError, match="changed since: the class texts \\(text.source"):
        resume_run(cut)
    (tmp_path / "texts.txt").write_text(texts)
    resume_run(cut)
    from zeroskel.engine.trainer import load_checkpoint
    a, b = load_checkpoint(cut / "final.pt")["model"], load_checkpoint(full / "final.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _metrics(cut)["zsl_per_class"] == _metrics(full)["zsl_per_class"]


def test_gzsl_without_seen_test_samples_fails_before_training(tmp_path):
    """A custom dataset whose test part holds only unseen-class recordings: the run trained to
    the end and then failed in the final evaluation with 'GZSL needs test samples of both seen
    and unseen classes' (no metrics.json, and resume failed the same way, its eval.gzsl fixed
    in config.yaml). It now fails before training, naming eval.gzsl and the way out."""
    from conftest import TINY_PGFA, write_tiny_custom
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train

    ds, split = write_tiny_custom(tmp_path, [i % 4 for i in range(16)] + [3] * 4)  # test part: kick (unseen) only
    cfg = build_config("pgfa", dataset=str(ds), split=str(split), seed=1,
                       overrides=TINY_PGFA + ["train.epochs=1", "text.source=a person doing {name}",
                                              "validation.mode=none", "train.threads=1"])
    with pytest.raises(DataError, match=r"^eval.gzsl: the test part of partition 'custom' of dataset 'mine' has no "
                                        r"sample of the seen classes \[0, 1, 2\].*set eval.gzsl=false"):
        train(cfg, tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing trained
    # ZSL only, as the error says: one unseen class makes ZSL top-1 100 % by construction, which
    # metrics.json and train.log now say (it was a bare 100.0)
    run = train({**cfg, "eval": {**cfg["eval"], "gzsl": False}}, tmp_path / "runs")
    m = _metrics(run)
    assert m["zsl_top1"] == 100.0 and m["unseen_classes"] == [3]
    assert m["zsl_note"].startswith("one unseen class (3): ZSL top-1 is 100 % by construction")
    assert "one unseen class (3)" in (run / "train.log").read_text()
