"""Encoder pretraining on seen classes and feature extraction in the Flora layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from conftest import need
from zeroskel.data.features import load_features
from zeroskel.data.readers.custom import write_custom
from zeroskel.engine.config import build_config
from zeroskel.engine.extract import extract_features, sidecar_path
from zeroskel.engine.pretrain import PretrainRecord, load_encoder, pretrain_encoder, select_epoch, train_pretrain
from zeroskel.engine.runs import resume_run
from zeroskel.engine.trainer import load_checkpoint
from zeroskel.errors import CheckpointError, ConfigError
from zeroskel.models.registry import EncoderCard

NUM_CLASSES, PER_CLASS, FRAMES, JOINTS = 6, 8, 20, 25
UNSEEN = [4, 5]
TINY = ["model.args={channels: [8, 16], strides: [1, 2]}", "train.batch_size=8", "train.epochs=2",
        "train.warmup_epochs=0", "train.lr=0.05", "device=cpu",
        "data.pipeline=[{name: resize, frames: 16}]",
        # the synthetic dataset has no subjects: the stratified seen hold-out
        "validation.heldout_group=null", "validation.refit=false"]


def _sequences(rng, test_noise: float = 0.0):
    """Class c: joints oscillate at frequency c+1; half the samples per class are 'train'."""
    seqs, labels, part = [], [], []
    t = np.linspace(0, 1, FRAMES)[:, None, None]
    for c in range(NUM_CLASSES):
        for i in range(PER_CLASS):
            x = np.sin(2 * np.pi * (c + 1) * t + rng.uniform(0, 1, (1, JOINTS, 3)))
            x = x + 0.1 * rng.standard_normal((FRAMES, JOINTS, 3))
            is_train = i % 2 == 0
            if not is_train and test_noise:  # own generator: the train samples stay identical
                x = test_noise * np.random.default_rng(len(seqs)).standard_normal((FRAMES, JOINTS, 3))
            seqs.append(x.astype(np.float32))
            labels.append(c)
            part.append("train" if is_train else "test")
    return seqs, labels, part


def _write(path, test_noise: float = 0.0, unseen_train_noise: float = 0.0):
    rng = np.random.default_rng(0)
    seqs, labels, part = _sequences(rng, test_noise)
    if unseen_train_noise:  # unseen-class training samples must never be used either
        for i, (y, p) in enumerate(zip(labels, part)):
            if y in UNSEEN and p == "train":
                noise = np.random.default_rng(1000 + i).standard_normal(seqs[i].shape)
                seqs[i] = (unseen_train_noise * noise).astype(np.float32)
    write_custom(path, seqs, labels, [f"action{c}" for c in range(NUM_CLASSES)], "ntu25",
                 name="synth", partitions={"custom": part})
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    ds = _write(folder / "synth.npz")
    sp = folder / "split.yaml"
    sp.write_text(yaml.safe_dump({"name": "synth-4/2", "num_classes": NUM_CLASSES, "unseen": UNSEEN}))
    return ds, sp


def _cfg(ds, sp, seed=1, extra=()):
    return build_config("pretrain", dataset=str(ds), split=str(sp), seed=seed, preset="small",
                        overrides=[*TINY, *extra])


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    """One finished run shared by the tests that only read it (2 epochs, then a refit)."""
    ds, sp = synth
    return pretrain_encoder(_cfg(ds, sp, extra=["validation.refit=true"]), tmp_path_factory.mktemp("runs"))


def _weights(run_dir):
    return load_checkpoint(run_dir / "encoder.pt")["encoder"]


def _same(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_run_dir_checkpoint_card_and_selection(synth, trained):
    rd = trained
    assert rd.name == "pretrain-synth-split-seed1"
    for f in ("config.yaml", "train.log", "stage1_last.pt", "stage1_best.pt", "stage2_last.pt",
              "selection.json", "encoder.pt", "metrics.json"):
        assert (rd / f).is_file(), f
    sel = json.loads((rd / "selection.json").read_text())
    # 4 seen classes x 4 train samples; 20 % stratified hold-out = 1 per class
    assert (sel["n_fit"], sel["n_val"], sel["test_samples_used"]) == (12, 4, 0)
    assert len(sel["curve"]) == sel["epochs_run"] == 2 and [c["epoch"] for c in sel["curve"]] == [1, 2]
    assert sel["selected_epoch"] == select_epoch(sel["curve"])
    model, card, rec, cfg = load_encoder(rd)
    assert isinstance(card, EncoderCard) and isinstance(rec, PretrainRecord) and rec.refit
    assert (card.name, card.layout, card.feature_dim, card.frames, card.num_persons) == \
        ("shiftgcn", "ntu25", 16, 16, 1)
    assert card.kwargs["channels"] == [8, 16] and card.split == "synth-4/2" and card.dataset == "synth"
    assert rec.seen == [0, 1, 2, 3] and rec.unseen == UNSEEN and rec.partition == "custom"
    assert rec.pipeline == [{"name": "resize", "frames": 16}] and cfg["seed"] == 1
    assert model.head.out_features == 4 and not model.training
    m = json.loads((rd / "metrics.json").read_text())
    assert m["n_test_seen"] == 16 and 0 <= m["test_seen_acc_diag"] <= 100
    assert m["val_seen_acc"] == sel["curve"][sel["selected_epoch"] - 1]["val_top1"]


def test_determinism_and_test_data_never_enter_training(synth, trained, tmp_path):
    """Same seed, and every test-partition sample and every unseen-class training sample
    replaced by noise: the same selection curve and bit-identical weights, so those samples
    are never read for training or selection; the run folder is never reused."""
    ds, sp = synth
    other = _write(tmp_path / "other" / "synth.npz", test_noise=3.0, unseen_train_noise=3.0)
    rd = pretrain_encoder(_cfg(other, sp, extra=["validation.refit=true"]), trained.parent)
    assert rd.name == "pretrain-synth-split-seed1-1"
    sel_a = json.loads((trained / "selection.json").read_text())
    sel_b = json.loads((rd / "selection.json").read_text())
    assert sel_a["curve"] == sel_b["curve"] and sel_a["selected_epoch"] == sel_b["selected_epoch"]
    assert _same(trained, rd)
    fa = load_features(extract_features(trained, out_path=tmp_path / "a.npz"))
    fb = load_features(extract_features(rd, out_path=tmp_path / "b.npz"))
    np.testing.assert_array_equal(fa.train_x[fa.train_y < 4], fb.train_x[fb.train_y < 4])
    assert not np.allclose(fa.gzsl_x, fb.gzsl_x)  # the data did differ where it may


def test_extract_flora_layout_sidecar_and_values(synth, trained, tmp_path):
    ds, sp = synth
    rd = trained
    out = extract_features(rd, out_path=tmp_path / "f" / "synth_feats.npz", device="cpu")
    with np.load(out) as z:
        assert sorted(z.files) == sorted(["train_data", "train_label", "zsl_data", "zsl_label",
                                          "gzsl_data", "gzsl_label"])
    fs = load_features(out, num_classes=NUM_CLASSES)
    assert fs.seen_classes.tolist() == [0, 1, 2, 3] and fs.unseen_classes.tolist() == UNSEEN
    # every seen train sample (fit + hold-out), unseen test samples, all test samples
    assert fs.train_x.shape == (16, 16) and fs.zsl_x.shape == (8, 16) and fs.gzsl_x.shape == (24, 16)
    assert np.bincount(fs.gzsl_y).tolist() == [4] * NUM_CLASSES
    assert (fs.train_x >= 0).all()  # Shift-GCN ends in a ReLU; mean pooling keeps it >= 0
    side = json.loads(sidecar_path(out).read_text())
    assert sidecar_path(out).name == "synth_feats_encoder.json"
    assert side["unseen"] == UNSEEN and side["n_train"] == 16 and side["n_fit"] == 12 and side["n_val"] == 4
    assert side["n_zsl"] == 8 and side["n_gzsl"] == 24 and side["test_time_augmentation"] is False
    assert side["best_epoch"] == json.loads((rd / "selection.json").read_text())["selected_epoch"]
    assert side["test_seen_acc_diag"] == json.loads((rd / "metrics.json").read_text())["test_seen_acc_diag"]
    # the features are the encoder's output on the prepared samples (no augmentation)
    model, _, rec, _ = load_encoder(rd)
    from zeroskel.data import cache
    prep = cache.prepare(str(ds), rec.pipeline, progress=False)
    test = prep.partition("custom", "test")
    zsl_idx = test[np.isin(prep.labels[test], UNSEEN)]
    with torch.no_grad():
        ref = model.features(torch.from_numpy(np.asarray(prep.data[zsl_idx], dtype=np.float32))).numpy()
    np.testing.assert_allclose(fs.zsl_x, ref, rtol=1e-5, atol=1e-6)
    # the checkpoint path works like the run directory; outputs are never overwritten silently
    with pytest.raises(ConfigError, match="exists"):
        extract_features(rd / "encoder.pt", out_path=out)
    again = extract_features(rd / "encoder.pt", out_path=out, overwrite=True)
    np.testing.assert_array_equal(load_features(again).gzsl_x, fs.gzsl_x)
    assert fs.train_masked_x is None and side["train_masked"] is None


def test_extract_on_other_data_than_the_encoder_was_trained_on_warns(synth, trained, tmp_path, caplog):
    """extract --dataset took any dataset with the encoder's class names: a copy whose train/test
    partitions (or labels, or recordings) differ from those the encoder was trained on was extracted
    without a word, though its test partition then holds recordings the encoder trained on (here
    every one: the partitions are swapped), inflating GZSL seen accuracy. The encoder now stores the
    content record of its training data; other data are extracted with a warning naming what
    differs, and the sidecar says data_as_trained false. A copy of the same data elsewhere is
    silent and true."""
    import logging

    rec = load_encoder(trained).record
    assert set(rec.data_content) >= {"skeletons", "labels", "partitions"}
    same = _write(tmp_path / "copy.npz")  # the same content in another file
    with caplog.at_level(logging.WARNING, logger="zeroskel.engine.extract"):
        out = extract_features(trained, dataset=str(same), out_path=tmp_path / "same.npz", device="cpu")
    assert not caplog.records
    assert json.loads(sidecar_path(out).read_text())["data_as_trained"] is True

    seqs, labels, part = _sequences(np.random.default_rng(0))
    swapped = tmp_path / "swapped.npz"
    write_custom(swapped, seqs, labels, [f"action{c}" for c in range(NUM_CLASSES)], "ntu25", name="synth",
                 partitions={"custom": ["test" if p == "train" else "train" for p in part]})
    with caplog.at_level(logging.WARNING, logger="zeroskel.engine.extract"):
        out = extract_features(trained, dataset=str(swapped), out_path=tmp_path / "swapped_f.npz", device="cpu")
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "its data are not those the encoder" in msg and "differ: the train/test partitions" in msg
    assert "skeleton" not in msg and "labels" not in msg.split("differ:")[1].split(")")[0]
    side = json.loads(sidecar_path(out).read_text())
    assert side["data_as_trained"] is False and side["data_differs"] == ["the train/test partitions"]


def test_extract_refuses_a_dataset_unlike_the_encoders(synth, trained, tmp_path):
    """extract --dataset checks class names, joint layout and partition against the encoder, and none of
    the refusals had a test; the class-name one said 'its 6 class names differ from the 6 classes',
    naming neither a class nor what to do. It now names the first differing class and the dataset
    the encoder was trained on."""
    from zeroskel.errors import DataError

    seqs, labels, part = _sequences(np.random.default_rng(0))
    names = [f"action{c}" for c in range(NUM_CLASSES)]
    renamed = write_custom(tmp_path / "renamed.npz", seqs, labels, names[:2] + ["jump", "kick"] + names[4:], "ntu25",
                           name="synth", partitions={"custom": part})
    with pytest.raises(DataError, match=r"renamed\.npz': its 6 class names differ from the 6 classes the encoder "
                                        r".*: class 2 is 'jump' here, 'action2' for the encoder \(1 more differ\); "
                                        r"extract on the dataset it was trained on \(.*synth\.npz\)"):
        extract_features(trained, dataset=str(renamed), out_path=tmp_path / "a.npz")
    kinect = write_custom(tmp_path / "kinect.npz", [s[:, :20] for s in seqs], labels, names, "kinect_v1",
                          name="synth", partitions={"custom": part})
    with pytest.raises(DataError, match=r"layout 'kinect_v1' / C=3 do not match the encoder's 'ntu25' / C=3"):
        extract_features(trained, dataset=str(kinect), out_path=tmp_path / "b.npz")
    other = write_custom(tmp_path / "other.npz", seqs, labels, names, "ntu25", name="synth",
                         partitions={"xview": part})
    with pytest.raises(DataError, match=r"has no partition 'custom' \(the encoder's\); it has xview"):
        extract_features(trained, dataset=str(other), out_path=tmp_path / "c.npz")
    with pytest.raises(ConfigError, match=r"batch_size \(--batch-size, or the run's extract.batch_size\) must be >= 1"):
        extract_features(trained, out_path=tmp_path / "d.npz", batch_size=0)
    assert not list(tmp_path.glob("?.npz")) and not list(tmp_path.glob("*_encoder.json"))


def test_sidecar_is_strict_json_without_seen_test_samples(synth, tmp_path):
    """A dataset whose test partition holds unseen classes only (possible for a custom dataset) gives
    no seen-class diagnostic: metrics.json wrote null, but the extract sidecar wrote a bare NaN, which
    jq and other strict JSON readers reject. The sidecar is now strict JSON too (null)."""
    seqs, labels, part = _sequences(np.random.default_rng(0))
    part = ["train" if y not in UNSEEN else p for y, p in zip(labels, part)]
    ds = write_custom(tmp_path / "seen_train_only.npz", seqs, labels, [f"action{c}" for c in range(NUM_CLASSES)],
                      "ntu25", name="synth", partitions={"custom": part})
    run = pretrain_encoder(_cfg(ds, synth[1]), tmp_path / "runs")
    out = extract_features(run, out_path=tmp_path / "f.npz", device="cpu")

    def refuse(c):
        raise ValueError(f"not strict JSON: {c}")

    side = json.loads(sidecar_path(out).read_text(), parse_constant=refuse)
    assert side["test_seen_acc_diag"] is None and side["n_zsl"] == 8


def test_extract_masked_sequences_for_smie(synth, trained, tmp_path):
    from zeroskel.data.features import holdout_seen, low_shot
    from zeroskel.data.transforms import MotionMask
    from zeroskel.eval.protocol import evaluate_method
    from zeroskel.methods import build_method
    from zeroskel.methods.base import ClassTexts

    ds, _ = synth
    opts = {"drop": 4, "keep": 8, "seed": 3}
    out = extract_features(trained, out_path=tmp_path / "m.npz", device="cpu", masked=opts)
    fs = load_features(out, num_classes=NUM_CLASSES)
    assert fs.train_masked_x.shape == fs.train_x.shape and not np.allclose(fs.train_masked_x, fs.train_x)
    assert json.loads(sidecar_path(out).read_text())["train_masked"] == opts
    # row i is the encoder on MotionMask(sequence i), with the seeded frame subsets
    model, _, rec, _ = load_encoder(trained)
    from zeroskel.data import cache
    prep = cache.prepare(str(ds), rec.pipeline, progress=False)
    tr = prep.partition("custom", "train")
    tr = tr[np.isin(prep.labels[tr], [0, 1, 2, 3])]
    x, _ = MotionMask(4, 8).apply_batch(np.asarray(prep.data[tr], np.float32), prep.lengths[tr],
                                        np.random.default_rng(3))
    with torch.no_grad():
        ref = model.features(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fs.train_masked_x, ref, rtol=1e-5, atol=1e-6)
    # derived sets keep rows aligned; the protocol hands them to SMIE's temporal term
    val = holdout_seen(fs, seed=1)
    rows = [int(np.flatnonzero((fs.train_x == r).all(1))[0]) for r in val.train_x]
    np.testing.assert_array_equal(val.train_masked_x, fs.train_masked_x[rows])
    assert low_shot(fs, per_class=1, seed=0).train_masked_x.shape == (4, fs.feature_dim)
    rng = np.random.default_rng(0)
    texts = ClassTexts(sentence=rng.standard_normal((NUM_CLASSES, 8)).astype(np.float32))
    res = evaluate_method(lambda **kw: build_method("smie", epochs=2, batch_size=8, **kw), fs, texts, seed=1)
    assert "masked_feats" in res["fit_inputs"] and res["data"]["train_masked"] is True
    with pytest.raises(ConfigError, match="masked: unknown option 'kept'"):
        extract_features(trained, out_path=tmp_path / "m2.npz", masked={"kept": 3})
    with pytest.raises(ConfigError, match="masked: 'seed' must be an integer"):
        extract_features(trained, out_path=tmp_path / "m2.npz", masked={"seed": "x"})
    # a negative --masked-seed was numpy's 'expected non-negative integer' traceback after every feature
    # was encoded, and --masked 15 0 named the transform ('motion_mask') but not the flag
    with pytest.raises(ConfigError, match=r"masked: 'seed' \(--masked-seed\) must be an integer >= 0, got -1"):
        extract_features(trained, out_path=tmp_path / "m2.npz", masked={"seed": -1})
    with pytest.raises(ConfigError, match=r"masked \(--masked DROP KEEP\): motion_mask: 'keep' must be an integer >= 1"):
        extract_features(trained, out_path=tmp_path / "m2.npz", masked={"drop": 15, "keep": 0})
    assert not (tmp_path / "m2.npz").exists()


def test_interrupted_run_resumes_to_the_same_encoder(synth, trained, tmp_path):
    ds, sp = synth
    part = pretrain_encoder(_cfg(ds, sp, extra=["validation.refit=true"]), tmp_path, max_epochs=1)
    assert not (part / "encoder.pt").exists() and (part / "stage1_last.pt").is_file()
    # loading it as a model says that it did not finish, not "export it first" (export refuses it)
    from zeroskel.recognizer import Recognizer
    with pytest.raises(CheckpointError, match="no final.pt; the run did not finish \\(resume it"):
        Recognizer.load(part)
    resume_run(part)  # through the engine's method table
    assert _same(trained, part)
    again = train_pretrain(_cfg(ds, sp, extra=["validation.refit=true"]), part)  # finished: a no-op
    assert again["selected_epoch"] == json.loads((trained / "metrics.json").read_text())["selected_epoch"]


def test_bf16_pretraining_runs_and_extracts(synth, tmp_path):
    ds, sp = synth
    rd = pretrain_encoder(_cfg(ds, sp, extra=["train.precision=bf16"]), tmp_path)
    sel = json.loads((rd / "selection.json").read_text())
    assert all(np.isfinite(c["loss"]) for c in sel["curve"])
    assert all(w.dtype == torch.float32 for w in _weights(rd).values() if w.is_floating_point())
    fs = load_features(extract_features(rd, out_path=tmp_path / "f.npz"))
    assert fs.train_x.dtype == np.float32 and np.isfinite(fs.train_x).all()


def test_early_stopping(synth, tmp_path):
    ds, sp = synth
    rd = pretrain_encoder(_cfg(ds, sp, seed=2, extra=["train.epochs=5", "train.patience=1",
                                                      "validation.min_epoch=2"]), tmp_path)
    sel = json.loads((rd / "selection.json").read_text())
    curve = sel["curve"]
    assert sel["selected_epoch"] >= 2
    # training stops at the first epoch that is not a new best (after min_epoch), else runs out
    stops = [e for e in range(3, 6) if select_epoch(curve[:e], 2) != e]
    assert sel["epochs_run"] == (stops[0] if stops else 5)
    assert sel["early_stopped"] == (sel["epochs_run"] < 5)
    hist = [{"val_top1": 50.0, "val_loss": 1.0}, {"val_top1": 50.0, "val_loss": 0.5},
            {"val_top1": 40.0, "val_loss": 0.1}]
    assert select_epoch(hist) == 2 and select_epoch(hist, min_epoch=3) == 3
    assert select_epoch(hist, min_epoch=4) is None


def test_leaky_split_and_bad_config_are_refused(synth, trained, tmp_path):
    ds, sp = synth
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(yaml.safe_dump({"num_classes": NUM_CLASSES, "unseen": [3, 4]}))
    with pytest.raises(ConfigError, match=r"unseen classes \[3\] were training classes"):
        extract_features(trained, split=str(leaky), out_path=tmp_path / "x.npz")
    narrower = tmp_path / "narrow.yaml"  # unseen 5 only: 4 becomes 'seen' for the feature method
    narrower.write_text(yaml.safe_dump({"num_classes": NUM_CLASSES, "unseen": [5]}))
    fs = load_features(extract_features(trained, split=str(narrower), out_path=tmp_path / "n.npz"))
    assert fs.unseen_classes.tolist() == [5] and 4 in fs.seen_classes
    with pytest.raises(ConfigError, match="model.args"):
        pretrain_encoder(_cfg(ds, sp, extra=["model.args={widths: [8]}"]), tmp_path / "bad")
    with pytest.raises(ConfigError, match="validation.fraction"):
        pretrain_encoder(_cfg(ds, sp, extra=["validation.fraction=1.5"]), tmp_path / "bad")
    with pytest.raises(ConfigError, match="unknown train.precision 'half'; valid: bf16, fp32"):
        pretrain_encoder(_cfg(ds, sp, extra=["train.precision=half"]), tmp_path / "bad")
    with pytest.raises(ConfigError, match="train.epoch"):
        build_config("pretrain", dataset=str(ds), split=str(sp), overrides=["train.epoch=3"])
    with pytest.raises(CheckpointError, match="no encoder.pt"):
        extract_features(tmp_path, out_path=tmp_path / "y.npz")
    with pytest.raises(CheckpointError, match="not an encoder checkpoint"):
        extract_features(trained / "stage1_best.pt", out_path=tmp_path / "z.npz")


@pytest.mark.parametrize("item, match", [
    # 'x' was a ValueError traceback, 0 was ignored, 1.5 ran with one thread, 'maybe' counted as true
    ("train.threads=x", r"train\.threads must be an integer >= 1 or null, got 'x'"),
    ("train.threads=0", r"train\.threads must be an integer >= 1 or null, got 0"),
    ("train.threads=1.5", r"train\.threads must be an integer >= 1 or null, got 1\.5"),
    ("validation.refit=maybe", r"validation\.refit must be true or false, got 'maybe'"),
    ("train.deterministic=1", r"train\.deterministic must be true or false, got 1"),
    ("train.nesterov=no way", r"train\.nesterov must be true or false, got 'no way'"),
    # a ValueError traceback; a min_epoch past the budget failed after a whole stage 1, and for good
    ("model.dropout=abc", r"model\.dropout must be a number in \[0, 1\), got 'abc'"),
    ("validation.min_epoch=99", r"validation\.min_epoch=99 is after the last epoch \(train\.epochs=\d+\)"),
    ("validation.heldout_count=x", r"validation\.heldout_count must be an integer >= 1"),
    ("seed=1.5", r"seed must be an integer >= 0, got 1\.5"),
])
def test_bad_values_are_refused_before_a_run_folder_is_made(synth, tmp_path, item, match):
    ds, sp = synth
    with pytest.raises(ConfigError, match=match):
        pretrain_encoder(_cfg(ds, sp, extra=[item]), tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_presets_resolve():
    small = build_config("pretrain", dataset="utd_mhad", split="purls-22/5")
    assert small["preset"] == "small" and small["data"]["pipeline"] == "flora50"
    assert small["model"]["args"]["channels"] == [32, 64, 128, 256]
    ntu = build_config("pretrain", dataset="ntu60", split="synse-55/5")
    assert ntu["preset"] == "ntu" and ntu["train"]["lr"] == 0.1 and ntu["model"]["args"] == {}


@pytest.mark.slow
def test_utd_mhad_sample_sets_match_the_shipped_feature_file(data_root, tmp_path):
    """A 1-epoch tiny encoder on real UTD-MHAD: the extracted file holds exactly the samples
    (per class) of the shipped purls-22/5 (ru5) feature file, and the same hold-out sizes."""
    need(data_root, "utd_mhad")
    shipped = need(data_root, "features/utd_mhad_ru5.npz")
    cfg = build_config("pretrain", dataset="utd_mhad", split="purls-22/5", seed=1,
                       data_root=str(data_root),
                       overrides=["model.args={channels: [8, 16], strides: [1, 2]}", "train.epochs=1",
                                  "data.limit_per_class=3", "device=cpu", "validation.heldout_group=null",
                                  "validation.refit=false"])
    rd = pretrain_encoder(cfg, tmp_path / "runs")
    fs = load_features(extract_features(rd, out_path=tmp_path / "utd.npz"), num_classes=27)
    ref = load_features(shipped, num_classes=27)
    for a, b in (("train_y", "train_y"), ("zsl_y", "zsl_y"), ("gzsl_y", "gzsl_y")):
        assert np.bincount(getattr(fs, a), minlength=27).tolist() == \
            np.bincount(getattr(ref, b), minlength=27).tolist()
    full = json.loads((need(data_root, "features/utd_mhad_ru5_encoder.json")).read_text())
    # the 20 % stratified hold-out of all seen training samples has the shipped sizes
    from zeroskel.data.splits import get_split
    from zeroskel.engine.data import load_prepared
    ds, part = load_prepared(cfg, data_root)
    tr = ds.partition(part, "train")
    fit, val = get_split("utd_mhad", "purls-22/5").holdout_seen(ds.labels, 0.2, 1, index=tr)
    assert (len(fit), len(val)) == (full["n_fit"], full["n_val"])
    assert not np.isin(np.concatenate([fit, val]), ds.partition(part, "test")).any()


def test_subject_holdout_on_real_utd_mhad(data_root, tmp_path):
    """validation.heldout_group=subject: the hold-out is every seen training sample of one
    training subject, and no sample of that subject is fitted."""
    need(data_root, "utd_mhad")
    cfg = build_config("pretrain", dataset="utd_mhad", split="purls-22/5", seed=2,
                       data_root=str(data_root),
                       overrides=["model.args={channels: [8, 16], strides: [1, 2]}", "train.epochs=1",
                                  "data.limit_per_class=8", "device=cpu", "validation.heldout_group=subject"])
    rd = pretrain_encoder(cfg, tmp_path / "runs")
    sel = json.loads((rd / "selection.json").read_text())
    held = sel["heldout_group"]
    assert held["key"] == "subject" and len(held["value"]) == 1 and sel["fraction"] is None
    from zeroskel.data.splits import get_split
    from zeroskel.engine.data import load_prepared
    ds, part = load_prepared(cfg, data_root)
    tr = ds.partition(part, "train")
    seen = get_split("utd_mhad", "purls-22/5").seen_array
    idx = tr[np.isin(ds.labels[tr], seen)]
    idx = np.concatenate([idx[ds.labels[idx] == c][:8] for c in seen])  # data.limit_per_class
    subj = np.asarray(ds.meta["subject"])[idx]
    assert held["value"][0] in set(subj.tolist()) <= {1, 3, 5, 7}
    assert sel["n_val"] == int((subj == held["value"][0]).sum()) > 0
    assert sel["n_fit"] == len(idx) - sel["n_val"]
    with pytest.raises(ConfigError, match="heldout_count=9.*subject value"):
        pretrain_encoder(build_config("pretrain", dataset="utd_mhad", split="purls-22/5", seed=2,
                                      data_root=str(data_root),
                                      overrides=["data.limit_per_class=8", "validation.heldout_group=subject",
                                                 "validation.heldout_count=9"]), tmp_path / "runs")



def test_feature_methods_on_a_custom_dataset_use_its_class_names(synth, trained, tmp_path, capsys):
    """pretrain -> extract -> eval-features on a user's custom dataset: the class texts come
    from its class names (a template over {name}); no registered texts are needed."""
    from zeroskel.cli import main

    ds, _ = synth
    feats = extract_features(trained, out_path=tmp_path / "f.npz", device="cpu")
    out = tmp_path / "res.json"
    assert main(["eval-features", "--method", "devise", "--features", str(feats), "--dataset", str(ds),
                 "--text-source", "a person doing {name}", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert 0.0 <= res["zsl"] <= 100.0 and res["method"] == "devise"


def test_resume_refuses_re_prepared_data_and_accepts_a_copy(synth, trained, tmp_path, monkeypatch):
    """'resume' continued an interrupted run on whatever the dataset held by then: re-prepared with
    other files or labels, the run silently reported one number for a mix of two datasets. Every
    checkpoint now records the prepared data's content record; a resume on other data is refused
    (naming the run, what changed and what to do), while a copy of the same data with new file
    times, prepared again in another cache (another folder or machine), resumes to the same
    encoder. Checkpoints from before the record resume as before."""
    import os

    from zeroskel.engine.trainer import save_checkpoint

    path = _write(tmp_path / "synth.npz")  # the content of the shared fixture, in a file of this test's
    cfg = _cfg(path, synth[1], extra=["validation.refit=true"])
    cut = pretrain_encoder(cfg, tmp_path / "runs", max_epochs=1)
    assert load_checkpoint(cut / "stage1_last.pt")["data"]["samples"] == NUM_CLASSES * PER_CLASS
    # the same content with other file times, prepared again in a new cache
    _write(path)
    os.utime(path, ns=(10**18, 10**18))
    monkeypatch.setenv("ZEROSKEL_CACHE", str(tmp_path / "cache2"))
    resume_run(cut)
    assert _same(trained, cut)

    cut2 = pretrain_encoder(cfg, tmp_path / "runs", max_epochs=1)
    _write(path, test_noise=0.5)  # other test samples: the dataset was re-prepared
    with pytest.raises(ConfigError, match=f"{cut2}: the data of dataset .* are not those this run was "
                                          "trained on \\(stage1_last.pt\\), so it cannot be resumed; changed since: "
                                          "the skeleton sequences .*Start a new run on the data as they are now "
                                          "\\(zeroskel pretrain"):
        resume_run(cut2)
    assert not (cut2 / "encoder.pt").exists()
    # other labels are named as such
    seqs, labels, part = _sequences(np.random.default_rng(0))
    write_custom(path, seqs, labels[::-1], [f"action{c}" for c in range(NUM_CLASSES)], "ntu25", name="synth",
                 partitions={"custom": part})
    with pytest.raises(ConfigError, match="changed since: the class names and the samples' labels\\. "):
        resume_run(cut2)

    # a checkpoint written before content records existed holds none: it resumes unchecked
    _write(path)
    for ck in cut2.glob("stage*.pt"):
        state = load_checkpoint(ck)
        state.pop("data", None)
        save_checkpoint(state, ck)
    resume_run(cut2)
    assert _same(trained, cut2)


def test_a_diverged_run_says_how_to_start_again_and_is_not_resumed(synth, tmp_path, capsys):
    """Training that diverged left its checkpoints behind, and the error said 'lower train.lr', which
    resume refuses (an edited config.yaml) while every 'zeroskel resume' replayed the same
    deterministic epochs and diverged again. The error now gives the command of a new run with the
    changed setting, the failure is recorded in the run folder, and resume / evaluate say so up front."""
    import shlex

    from zeroskel.cli import main
    from zeroskel.engine.runs import evaluate_run

    ds, sp = synth
    # epoch 1 at lr 1e-30 (no change), then a step to lr 1e30, which overflows the weights
    cfg = _cfg(ds, sp, extra=["train.lr=1e-30", "train.schedule=step", "train.milestones=[1]", "train.gamma=1e60",
                              "train.batch_size=4"])
    with pytest.raises(ConfigError, match="training diverged: loss is .* in epoch 2 .*; lower train.lr or set "
                                          "train.grad_clip\\. Resuming .* would repeat the same steps and diverge "
                                          "again .*: start a new run with the changed setting, e.g. "
                                          "`zeroskel pretrain --dataset .*") as err:
        pretrain_encoder(cfg, tmp_path / "runs")
    (rd,) = (tmp_path / "runs").iterdir()
    assert (rd / "stage1_last.pt").is_file() and json.loads((rd / "diverged.json").read_text())["epoch"] == 2
    log = (rd / "train.log").read_text()
    with pytest.raises(ConfigError, match=f"{rd} stopped because training diverged: loss is .* in epoch 2 .*"
                                          "resuming repeats the same steps and diverges again: start a new run"):
        resume_run(rd)
    assert (rd / "train.log").read_text() == log  # refused before any training
    with pytest.raises(CheckpointError, match="no encoder.pt; the run stopped because training diverged.*cannot be "
                                              "resumed: start a new run"):
        evaluate_run(rd)
    # the command given is the way out: the run's own settings, with the changed one
    cmd = shlex.split(str(err.value).split("`")[1])
    assert cmd[:2] == ["zeroskel", "pretrain"] and cmd[-2:] == ["--set", "train.lr=1e-31"]
    assert main(cmd[1:-1] + ["train.lr=0.05", "--set", "train.gamma=0.1", "--runs-dir", str(tmp_path / "new")]) == 0
    (new,) = (tmp_path / "new").iterdir()
    assert (new / "encoder.pt").is_file() and yaml.safe_load((new / "config.yaml").read_text())["train"]["lr"] == 0.05


def test_predict_on_a_pretraining_run_says_what_it_is(synth, trained, tmp_path, capsys):
    """`zeroskel predict PRETRAIN_RUN`: a pretraining run has no text alignment, and the error
    says so; it used to suggest `zeroskel export`, which refuses a pretraining run."""
    from zeroskel.cli import main
    from zeroskel.recognizer import Recognizer

    with pytest.raises(CheckpointError, match="is a pretraining run: .*no text alignment to rank labels"):
        Recognizer.load(trained)
    clip = tmp_path / "clip.npy"
    np.save(clip, _sequences(np.random.default_rng(0))[0][0])
    assert main(["predict", str(trained), str(clip), "--labels", "wave", "kick"]) == 2
    err = capsys.readouterr().err
    assert "is a pretraining run" in err and "export it first" not in err and len(err.strip().splitlines()) == 1
