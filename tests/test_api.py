"""The public Python API as a library user calls it: registries, argument checks, error types."""
from __future__ import annotations

import numpy as np
import pytest

from zeroskel.errors import ConfigError, DataError, ZeroskelError


def _tiny_problem():
    from zeroskel.methods import ClassTexts

    rng = np.random.default_rng(0)
    texts = ClassTexts(sentence=rng.normal(size=(6, 8)))
    y = np.repeat([0, 1, 2, 3], 4)
    x = rng.normal(size=(len(y), 5)) + y[:, None]
    return x, y, texts


@pytest.mark.parametrize("name", ["flora", "smie", "devise", "cada_vae"])
def test_build_method_names_an_unknown_argument(name):
    from zeroskel.methods import build_method

    # was a bare TypeError from the constructor ("__init__() got an unexpected keyword argument")
    with pytest.raises(ConfigError, match=rf"method '{name}' has no argument\(s\) 'epoch'; valid arguments: .*seed"):
        build_method(name, epoch=3)


def test_score_with_a_single_class_id_is_a_data_error():
    from zeroskel.methods import build_method

    x, y, texts = _tiny_problem()
    m = build_method("devise", epochs=1).fit(x, y, texts, [0, 1, 2, 3])
    assert m.score(x[:2], [4]).shape == (2, 1)
    assert m.score(x[:2], {4, 5}).shape == (2, 2)          # any iterable of ids
    for call in (lambda: m.score(x[:2], 4), lambda: m.predict(x[:2], 4)):
        with pytest.raises(DataError, match=r"must be a 1-D list of class ids, got shape \(\)"):
            call()                                         # was TypeError: 'int' object is not iterable
    with pytest.raises(DataError, match="seen_classes: must be a 1-D list"):
        build_method("devise", epochs=1).fit(x, y, texts, 0)


SCORES = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.6]])


def test_gzsl_helpers_refuse_ids_they_would_truncate():
    from zeroskel.eval.gzsl import choose_threshold, gzsl_eval, zsl_accuracy

    classes, labels = [10, 11, 12], [10, 11, 12, 12]
    assert zsl_accuracy(SCORES, labels, classes) == 100.0
    assert zsl_accuracy(SCORES, np.array(labels, float), np.array(classes, float)) == 100.0  # 10.0 is an id
    # column ids 10.5 and labels 10.5 were truncated to class 10 and scored 100 % for classes nobody named
    with pytest.raises(DataError, match="zsl_accuracy: classes must hold integer class ids"):
        zsl_accuracy(SCORES, labels, [10.5, 11, 12])
    with pytest.raises(DataError, match="choose_threshold: labels must hold integer class ids"):
        choose_threshold(SCORES, [10.5, 11, 12, 12], classes, [10, 11], [12])
    with pytest.raises(DataError, match="calibrated_stacking: seen must hold integer class ids"):
        gzsl_eval(SCORES, labels, classes, [10.5, 11], [12])
    # a label count that differs from the score rows: was numpy's broadcast ValueError / 'pred differ'
    with pytest.raises(DataError, match="choose_threshold: 2 labels for 4 score rows"):
        choose_threshold(SCORES, [10, 12], classes, [10, 11], [12])
    with pytest.raises(DataError, match="gzsl_eval: 2 labels for 4 score rows"):
        gzsl_eval(SCORES, [10, 12], classes, [10, 11], [12])
    with pytest.raises(DataError, match="zsl_accuracy: 2 labels for 4 score rows"):
        zsl_accuracy(SCORES, [10, 12], classes)
    # one id instead of a list: was TypeError 'int' object is not iterable / len() of unsized object
    with pytest.raises(DataError, match=r"seen must be a 1-D array of class ids, got shape \(\)"):
        gzsl_eval(SCORES, labels, classes, 10, [11, 12])
    with pytest.raises(DataError, match="scores must be a numeric"):
        zsl_accuracy([["a", "b", "c"]], [10], classes)


def test_metric_errors_are_zeroskel_errors():
    from zeroskel.eval.gzsl import gzsl_eval
    from zeroskel.eval.metrics import confusion_matrix, gzsl_scores, top1

    # were bare ValueErrors, which the CLI does not turn into a one-line message
    with pytest.raises(ZeroskelError, match="GZSL needs test samples of both seen and unseen classes"):
        gzsl_eval(SCORES, [10, 10, 11, 11], [10, 11, 12], [10, 11], [12])
    with pytest.raises(DataError, match="targets \\[13\\] are neither seen nor unseen"):
        gzsl_scores([10, 13], [10, 13], [10], [12])
    with pytest.raises(DataError, match="differ in shape"):
        top1([1], [1, 2])
    with pytest.raises(DataError, match=r"classes must be a 1-D array of class ids, got shape \(\)"):
        confusion_matrix([1], [1], 1)
    assert confusion_matrix([1, 2], [1, 2], {1, 2}).trace() == 2   # a set of ids works


def test_list_splits_refuses_an_unknown_kind():
    from zeroskel.data.splits import KINDS, list_splits

    assert {s.kind for s in list_splits("utd_mhad", kind="benchmark")} == {"benchmark"}
    assert list_splits("pku_mmd2") == []                   # registered, no published split
    # 'benchmarks' returned [] as if no split of that kind existed
    with pytest.raises(ConfigError, match="unknown split kind 'benchmarks'; valid: benchmark, user, validation"):
        list_splits(kind="benchmarks")
    assert set(KINDS) == {"benchmark", "validation", "user"}


def test_encoder_arguments_are_checked_by_name():
    from zeroskel.models import build_encoder

    # channels=[a, b] from '--set model.args.channels=[a,b]' was a ValueError traceback (and left
    # the run folder behind); in_channels=0 built a model that failed at its first batch
    cases = [("stgcn", dict(channels=["a", "b"], strides=[1, 1]), "channels must be an integer >= 1, got 'a'"),
             ("stgcn", dict(channels=[1.5] * 10), "channels must be an integer >= 1, got 1.5"),
             ("shiftgcn", dict(channels=64), "channels must be a list of integers, got 64"),
             ("shiftgcn", dict(channels=[8, 8], strides="12"), "strides must be a list of integers"),
             ("stgcn", dict(in_channels=0), "in_channels must be an integer >= 1, got 0"),
             ("shiftgcn", dict(num_persons=0), "num_persons must be an integer >= 1, got 0"),
             ("stgcn", dict(dropout="0.5"), r"dropout must be a number in \[0, 1\), got '0.5'")]
    for name, kw, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            build_encoder(name, **kw)
    assert build_encoder("stgcn", dropout=np.float32(0.25), channels=[4.0, 8], strides=[1, 2]).channels == (4, 8)


def test_featureset_refuses_fractional_labels():
    from zeroskel.data.features import FeatureSet

    rng = np.random.default_rng(0)
    x = lambda n: rng.normal(size=(n, 3))  # noqa: E731
    ok = FeatureSet(x(4), np.array([0.0, 0, 1, 1]), x(2), [2, 2], x(2), [0, 2], [0, 1], [2], 3)
    assert ok.train_y.dtype == np.int64 and ok.train_y.tolist() == [0, 0, 1, 1]
    # labels 0.5 and 1.9 were truncated to classes 0 and 1 without a word
    with pytest.raises(DataError, match="feature set: train_y must hold whole-number class ids"):
        FeatureSet(x(4), [0, 0.5, 1, 1.9], x(2), [2, 2], x(2), [0, 2], [0, 1], [2], 3)
    with pytest.raises(DataError, match="seen_classes must hold whole-number class ids"):
        FeatureSet(x(4), [0, 0, 1, 1], x(2), [2, 2], x(2), [0, 2], [0, 1.5], [2], 3)


def test_train_leaves_the_callers_torch_threads_alone(tmp_path):
    """``train.threads`` is a setting of one run: ``zeroskel.engine.runs.train`` used to leave
    torch at that count, so the next run in the process with ``train.threads: null`` (torch's
    own choice) silently trained with it."""
    import torch

    from conftest import TINY_PGFA, write_tiny_custom
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train

    ds, split = write_tiny_custom(tmp_path)
    cfg = build_config("pgfa", dataset=str(ds), split=str(split), seed=1,
                       overrides=TINY_PGFA + ["train.epochs=1", "text.source=name", "eval.gzsl=false",
                                              "train.threads=2"])
    before = torch.get_num_threads()
    assert before != 2  # conftest sets one thread
    run = train(cfg, tmp_path / "runs")
    assert torch.get_num_threads() == before
    import json
    assert json.loads((run / "metrics.json").read_text())["torch_threads"] == 2  # the run itself used 2


def test_negative_seeds_are_config_errors(tmp_path):
    """numpy's generators refuse negative seeds: '--seed -1' was a ValueError traceback
    ('expected non-negative integer'), for train and pretrain after the run folder was made."""
    from zeroskel.data.features import FeatureSet, low_shot
    from zeroskel.engine.benchmark import plan
    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train
    from zeroskel.eval.protocol import evaluate_named

    x, y, texts = _tiny_problem()
    fs = FeatureSet(x, y, x[:4], [4, 4, 5, 5], x[:6], [0, 1, 4, 5, 4, 5], [0, 1, 2, 3], [4, 5], 6)
    with pytest.raises(ConfigError, match=r"seed \(--seed\) must be an integer >= 0, got -1"):
        evaluate_named("devise", fs, texts, seed=-1, overrides=["epochs=1"])
    with pytest.raises(ConfigError, match=r"low_shot: seed \(--seed\) must be an integer >= 0, got -1"):
        low_shot(fs, 0.5, seed=-1)
    with pytest.raises(ConfigError, match=r"seeds \(--seeds\) must be integers >= 0, got \[1, -2\]"):
        plan("purls-small", [1, -2])
    for method, kw, msg in (("pgfa", dict(seed=-1), "seed must be an integer >= 0, got -1"),
                            ("pretrain", dict(overrides=["validation.seed=-2"]),
                             "validation.seed must be an integer >= 0 or null, got -2")):
        cfg = build_config(method, dataset="utd_mhad", split="purls-22/5", **kw)
        with pytest.raises(ConfigError, match=msg):
            train(cfg, tmp_path / "runs")
        assert not (tmp_path / "runs").exists()   # refused before the run folder is made


def test_class_texts_check_what_they_are_given():
    from zeroskel.methods import ClassTexts

    ok = ClassTexts(sentence=[[1, 0], [0, 1]], names=["wave", "kick"])
    assert ok.sentence.dtype == np.float32 and ok.num_classes == 2
    # two names for three classes were accepted: reports would put names on the wrong classes
    with pytest.raises(DataError, match="class texts: 2 names for 3 classes"):
        ClassTexts(sentence=np.eye(3), names=["wave", "kick"])
    # ragged rows were numpy's bare ValueError
    with pytest.raises(DataError, match="class texts: 'sentence' is not a numeric"):
        ClassTexts(sentence=[[1.0, 2.0], [3.0]])


def test_every_registered_encoder_gives_the_documented_shapes():
    import torch

    from zeroskel.models import build_encoder, list_encoders

    x = torch.randn(2, 3, 12, 20, 1)
    for name in list_encoders():
        m = build_encoder(name, layout="kinect_v1", num_persons=1, channels=[8, 16], strides=[1, 2]).eval()
        with torch.no_grad():
            t = m.output_frames(12)
            assert m(x).shape == (2, m.feature_dim) == (2, 16)          # (N, feature_dim)
            assert m.forward_temporal(x).shape == (2, t, 16)              # (N, T', feature_dim)
            assert m.forward_local(x).shape == (2, t, 20, 16)             # (N, T', V, feature_dim)


def test_every_registered_method_fits_scores_and_rebuilds_from_its_params():
    from zeroskel.methods import METHODS, build_method

    x, y, texts = _tiny_problem()
    small = {"flora": dict(latent_dim=8, heads=2, align_iters=2, flow_iters=2, batch_size=8),
             "smie": dict(epochs=1), "devise": dict(epochs=1), "cada_vae": dict(epochs=1, cls_epochs=1)}
    assert sorted(METHODS) == sorted(small)
    for name, kw in small.items():
        m = build_method(name, **kw)
        params = m.get_params() if hasattr(m, "get_params") else m.hparams
        assert {k: params[k] for k in kw} == kw
        m.fit(x, y, texts, [0, 1, 2, 3])
        s = m.score(x[:3], [5, 4])
        assert s.shape == (3, 2) and s.dtype in (np.float32, np.float64) and np.isfinite(s).all()
        np.testing.assert_allclose(s, m.score(x[:3], [4, 5])[:, ::-1], rtol=1e-5, atol=1e-6)  # column k = classes[k]
        pred = m.predict(x[:3], [5, 4])
        assert pred.dtype == np.int64 and set(pred.tolist()) <= {4, 5}
        again = build_method(name, **params)                          # scikit-learn style clone
        assert (again.get_params() if hasattr(again, "get_params") else again.hparams) == params
