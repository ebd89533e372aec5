"""Feature-file reader/writer, derived splits (pseudo-unseen hold-out, low-shot), text banks."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import need
from zeroskel.data.features import (FeatureSet, holdout_seen, load_features, load_token_bank, low_shot,
                                    save_features)
from zeroskel.errors import ConfigError, DataError

FILES = {"utd_mhad_ru5": ("utd-mhad", "ru5", 27), "utd_mhad_ru9": ("utd-mhad", "ru9", 27),
         "utd_mhad_ru13": ("utd-mhad", "ru13", 27), "nw_ucla_ru2": ("nw-ucla", "ru2", 10),
         "nw_ucla_ru5": ("nw-ucla", "ru5", 10)}


@pytest.mark.parametrize("stem", sorted(FILES))
def test_real_feature_files_match_splits(data_root, stem):
    ds, split, n_cls = FILES[stem]
    path = need(data_root, f"features/{stem}.npz")
    fs = load_features(path, num_classes=n_cls)
    info = json.loads(need(data_root, f"features/{stem}_encoder.json").read_text())
    assert (len(fs.train_y), len(fs.zsl_y), len(fs.gzsl_y)) == (info["n_train"], info["n_zsl"], info["n_gzsl"])
    assert fs.feature_dim == 256 and fs.train_x.dtype == np.float32
    unseen = np.sort(np.load(need(data_root, f"splits/purls/{ds}/{split}.npy")))
    assert fs.unseen_classes.tolist() == unseen.tolist() == sorted(info["unseen"])
    assert fs.seen_classes.tolist() == sorted(set(range(n_cls)) - set(unseen.tolist()))
    # GZSL test = every class; ZSL test = exactly the unseen samples of it
    assert np.unique(fs.gzsl_y).tolist() == list(range(n_cls))
    assert np.isin(fs.gzsl_y, unseen).sum() == len(fs.zsl_y)


def test_real_token_bank(data_root):
    texts = load_token_bank(need(data_root, "features/utd_mhad_text_mpnet_L5.npy"),
                            need(data_root, "features/utd_mhad_texts.json"))
    assert texts.tokens.shape == (27, 6, 1536) and texts.sentence.shape == (27, 1536)
    assert texts.names[0] == "right arm swipe to the left"


def _toy(seed=0, d=4) -> dict:
    rng = np.random.default_rng(seed)
    tr_y = np.repeat([0, 1, 2, 3], 5); z_y = np.repeat([4, 5], 3); g_y = np.concatenate([[0, 1, 2, 3], z_y])
    return dict(train_data=rng.random((20, d), dtype=np.float32), train_label=tr_y,
                zsl_data=rng.random((6, d), dtype=np.float32), zsl_label=z_y,
                gzsl_data=rng.random((10, d), dtype=np.float32), gzsl_label=g_y)


def test_roundtrip_and_synse_folder(tmp_path):
    arr = _toy()
    np.savez(tmp_path / "a.npz", **arr)
    fs = load_features(tmp_path / "a.npz")
    assert fs.num_classes == 6 and fs.unseen_classes.tolist() == [4, 5] and fs.seen_classes.tolist() == [0, 1, 2, 3]
    out = save_features(tmp_path / "b.npz", fs)
    fs2 = load_features(out, num_classes=8)
    assert fs2.num_classes == 8
    np.testing.assert_array_equal(fs2.gzsl_x, fs.gzsl_x)
    # SynSE's released layout: a folder of .npy files with its own names
    d = tmp_path / "synse"; d.mkdir()
    for ours, theirs in [("train_data", "train"), ("train_label", "train_label"), ("zsl_data", "ztest"),
                         ("zsl_label", "z_label"), ("gzsl_data", "gtest"), ("gzsl_label", "g_label")]:
        np.save(d / f"{theirs}.npy", arr[ours])
    fs3 = load_features(d)
    np.testing.assert_array_equal(fs3.train_x, fs.train_x)
    np.testing.assert_array_equal(fs3.zsl_y, fs.zsl_y)
    assert fs3.meta["format"] == "synse-dir"


@pytest.mark.parametrize("case, match", [
    ("missing", r"bad\.npz: missing key 'zsl_label'.*keys present: gzsl_data, gzsl_label, train_data"),
    ("dim", r"zsl_data has feature dimension 5, train_data has 4"),
    ("count", r"gzsl_label has 9 labels but gzsl_data has 10 rows"),
    ("range", r"class id 6 is outside the 6 classes"),
    ("overlap", r"classes \[3\] are both seen .* and unseen"),
    ("empty", r"zsl_data is empty \(no unseen test samples\)"),
    ("nan", r"train_data contains NaN or inf \(first at row 2\)"),
    ("stray", r"gzsl labels \[6\] are neither seen"),
    ("float_labels", r"train_label holds non-integer values"),
    ("not_one_hot", r"zsl_label is 2-D \(6, 2\) but not one-hot"),
])
def test_bad_files_are_named(tmp_path, case, match):
    arr = _toy()
    num_classes = 6 if case == "range" else None
    if case == "missing":
        del arr["zsl_label"]
    elif case == "dim":
        arr["zsl_data"] = np.zeros((6, 5), np.float32)
    elif case == "count":
        arr["gzsl_label"] = arr["gzsl_label"][:9]
    elif case == "range":
        arr["gzsl_label"] = arr["gzsl_label"].copy(); arr["gzsl_label"][0] = 6
    elif case == "overlap":
        arr["zsl_label"] = np.array([4, 4, 4, 5, 5, 3])
    elif case == "empty":
        arr["zsl_data"] = np.zeros((0, 4), np.float32); arr["zsl_label"] = np.zeros(0, np.int64)
    elif case == "nan":
        arr["train_data"][2, 1] = np.nan
    elif case == "stray":
        arr["gzsl_label"] = arr["gzsl_label"].copy(); arr["gzsl_label"][0] = 6
        arr["zsl_label"] = arr["zsl_label"]  # 6 is neither seen nor unseen (num_classes inferred = 7)
    elif case == "float_labels":
        arr["train_label"] = arr["train_label"] + 0.5
    elif case == "not_one_hot":  # argmax made every zero row class 0
        arr["zsl_label"] = np.zeros((6, 2), np.int64)
    np.savez(tmp_path / "bad.npz", **arr)
    with pytest.raises(DataError, match=match):
        load_features(tmp_path / "bad.npz", num_classes=num_classes)


def test_missing_file_and_not_an_archive(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_features(tmp_path / "nope.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DataError, match="expected an .npz archive"):
        load_features(tmp_path / "single.npy")


@pytest.mark.parametrize("content, match", [
    (b"", "the file is empty"),
    (b"train_data,train_label\n1,2\n", "not a NumPy file"),  # a CSV saved as .npz
    (b"PK\x03\x04truncated", "cannot read as .npz"),           # a cut-off zip: numpy's own reason
])
def test_unreadable_file_says_why(tmp_path, content, match):
    # numpy's fallback for a non-NumPy file blames pickled data; the reason must fit the file
    (tmp_path / "f.npz").write_bytes(content)
    with pytest.raises(DataError, match=match) as err:
        load_features(tmp_path / "f.npz")
    assert "f.npz" in str(err.value) and "pickled" not in str(err.value)


def _fs(n_seen=10, per=6, d=3) -> FeatureSet:
    rng = np.random.default_rng(0)
    tr_y = np.repeat(np.arange(n_seen), per)
    return FeatureSet(rng.random((len(tr_y), d)), tr_y, rng.random((4, d)), [n_seen] * 2 + [n_seen + 1] * 2,
                      rng.random((5, d)), [0, 1, n_seen, n_seen + 1, 2], np.arange(n_seen),
                      [n_seen, n_seen + 1], n_seen + 2)


def test_holdout_seen_uses_only_seen_training_data():
    fs = _fs()
    val = holdout_seen(fs, 0.3, seed=3)
    assert len(val.unseen_classes) == 3 and np.isin(val.unseen_classes, fs.seen_classes).all()
    assert not np.isin(val.all_classes, fs.unseen_classes).any()
    # every sample comes from the seen train set; train / held-out seen / pseudo-unseen are disjoint
    rows = lambda x: {tuple(r) for r in x.round(6)}
    train_rows = rows(fs.train_x)
    assert rows(val.train_x) | rows(val.gzsl_x) <= train_rows
    assert rows(val.train_x).isdisjoint(rows(val.gzsl_x))
    assert rows(val.zsl_x) <= rows(val.gzsl_x)
    assert len(val.train_y) + len(val.gzsl_y) == len(fs.train_y)
    # about 20 % of each remaining seen class held out (6 per class -> 1)
    held_seen = val.gzsl_y[np.isin(val.gzsl_y, val.seen_classes)]
    assert np.bincount(held_seen, minlength=10)[val.seen_classes].tolist() == [1] * 7
    again = holdout_seen(fs, 0.3, seed=3)
    assert again.unseen_classes.tolist() == val.unseen_classes.tolist()
    # default fraction = the real split's unseen share (2 of 12 -> round(10/6) = 2 classes)
    assert len(holdout_seen(fs, seed=0).unseen_classes) == 2
    with pytest.raises(ConfigError, match="at least 3 seen classes"):
        holdout_seen(_fs(n_seen=2))


def test_low_shot_rules():
    fs = _fs(per=11)
    lf = low_shot(fs, fraction=0.1, seed=0)          # max(1, int(0.1 * 11)) = 1 per class
    assert np.bincount(lf.train_y).tolist() == [1] * 10
    lp = low_shot(fs, per_class=3, seed=0)
    assert np.bincount(lp.train_y).tolist() == [3] * 10
    np.testing.assert_array_equal(lp.gzsl_x, fs.gzsl_x)
    with pytest.raises(ConfigError, match="exactly one"):
        low_shot(fs, fraction=0.1, per_class=2)
    with pytest.raises(ConfigError, match="per_class must be an integer >= 1, got 2.5"):
        low_shot(fs, per_class=2.5)
    assert np.bincount(low_shot(fs, per_class=3.0, seed=0).train_y).tolist() == [3] * 10   # 3.0 is 3
    with pytest.raises(ConfigError, match="fraction must be a number"):
        low_shot(fs, fraction="0.1")
    with pytest.raises(ConfigError, match="fraction must be a number"):
        low_shot(fs, fraction=np.bool_(True))
    # numpy scalars (a sweep over np.linspace / an array of fractions) were refused as not numbers
    for f in (np.float32(0.3), np.float64(0.3), np.int64(1)):
        lf = low_shot(fs, fraction=f, seed=0)
        np.testing.assert_array_equal(lf.train_x, low_shot(fs, fraction=float(f), seed=0).train_x)
        assert type(lf.meta["fraction"]) is float


@pytest.mark.parametrize("case, match", [
    ("gzsl_no_unseen", r"bad\.npz: gzsl_label has no sample of the unseen classes \(zsl labels \[4, 5\]\)"),
    ("gzsl_no_seen", r"bad\.npz: gzsl_label has no sample of the seen classes \(train labels \[0, 1, 2, 3\]\)"),
])
def test_gzsl_part_without_seen_or_unseen_samples(tmp_path, capsys, case, match):
    # this used to pass `features check` and crash `eval-features` with a ValueError traceback after
    # the whole fit; the file still loads (ZSL alone is possible), the check and the protocol refuse it
    from zeroskel.cli import main
    from zeroskel.eval.protocol import evaluate_method
    from zeroskel.methods.base import ClassTexts

    arr = _toy()
    sl = slice(None, 4) if case == "gzsl_no_unseen" else slice(4, None)
    arr["gzsl_data"] = arr["gzsl_data"][sl]; arr["gzsl_label"] = arr["gzsl_label"][sl]
    np.savez(tmp_path / "bad.npz", **arr)
    fs = load_features(tmp_path / "bad.npz")
    assert main(["features", "check", str(tmp_path / "bad.npz")]) == 2
    assert re.search(match, capsys.readouterr().err)

    def factory(**kw):
        raise AssertionError("no method may be built")
    with pytest.raises(DataError, match=match):
        evaluate_method(factory, fs, ClassTexts(sentence=np.eye(6, dtype=np.float32)))


def test_evaluate_method_refuses_gzsl_without_unseen_before_fitting():
    # an in-memory set whose GZSL part has only seen samples: refused before any (long) fit
    from zeroskel.eval.protocol import evaluate_method
    from zeroskel.methods.base import ClassTexts

    fs = _fs()
    fs = FeatureSet(fs.train_x, fs.train_y, fs.zsl_x, fs.zsl_y, fs.train_x[:5], fs.train_y[:5],
                    fs.seen_classes, fs.unseen_classes, fs.num_classes)
    fits = []

    def factory(**kw):
        fits.append(kw)
        raise AssertionError("no method may be built")
    texts = ClassTexts(sentence=np.eye(fs.num_classes, dtype=np.float32))
    with pytest.raises(DataError, match=r"feature set: gzsl_y has no sample of the unseen classes"):
        evaluate_method(factory, fs, texts)
    assert fits == []


def test_text_bank_files_of_every_kind(tmp_path):
    rng = np.random.default_rng(0)
    tok = rng.random((6, 3, 4)).astype(np.float32)
    np.save(tmp_path / "tok.npy", tok)
    t = load_token_bank(tmp_path / "tok.npy")
    np.testing.assert_array_equal(t.sentence, tok[:, -1]); np.testing.assert_array_equal(t.tokens, tok)
    # what `zeroskel text embed --out` writes (sentence + tokens, or sentence only) used to be refused
    # by `eval-features --text-bank` ("expected a .npy array ... got an archive")
    sent = rng.random((6, 5)).astype(np.float32)
    np.savez(tmp_path / "emb.npz", sentence=sent, tokens=tok)
    t = load_token_bank(tmp_path / "emb.npz")
    np.testing.assert_array_equal(t.sentence, sent); np.testing.assert_array_equal(t.tokens, tok)
    np.savez(tmp_path / "sent.npz", sentence=sent)
    t = load_token_bank(tmp_path / "sent.npz")
    assert t.tokens is None and t.num_classes == 6
    np.save(tmp_path / "sent.npy", sent)                  # (C, D) class embeddings
    t = load_token_bank(tmp_path / "sent.npy")
    assert t.tokens is None and t.sentence.shape == (6, 5)
    # bad banks name the file and the array
    np.savez(tmp_path / "other.npz", emb=sent)
    with pytest.raises(DataError, match=r"other\.npz: an \.npz bank needs a 'sentence' \(C, D\) array .*keys "
                                        r"present: emb"):
        load_token_bank(tmp_path / "other.npz")
    np.savez(tmp_path / "short.npz", sentence=sent, tokens=tok[:4])
    with pytest.raises(DataError, match=r"short\.npz: 'tokens' must be \(C=6, L, D\), got shape \(4, 3, 4\)"):
        load_token_bank(tmp_path / "short.npz")
    bad = sent.copy(); bad[1, 2] = np.nan
    np.savez(tmp_path / "nan.npz", sentence=bad)
    with pytest.raises(DataError, match=r"nan\.npz: sentence contains NaN or inf"):
        load_token_bank(tmp_path / "nan.npz")
    np.save(tmp_path / "flat.npy", np.zeros(6, np.float32))
    with pytest.raises(DataError, match=r"flat\.npy: expected \(C, L, D\) token or \(C, D\) sentence"):
        load_token_bank(tmp_path / "flat.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.npy: cannot read"):
        load_token_bank(tmp_path / "empty.npy")


def test_one_unseen_class_result_says_zsl_is_trivial(caplog):
    """A split with one unseen class: ZSL top-1 is the argmax over a single class, 100 % for any
    model, and was reported as 100.0 with no word. The result now carries zsl_note and the
    protocol warns; a split with two unseen classes has no note."""
    import logging

    from zeroskel.eval.protocol import evaluate_named
    from zeroskel.methods.base import ClassTexts

    fs = _fs()
    one = FeatureSet(fs.train_x, fs.train_y, fs.zsl_x[:2], fs.zsl_y[:2], fs.gzsl_x[:3], fs.gzsl_y[:3],
                     fs.seen_classes, [10], 11)          # gzsl labels 0, 1, 10
    texts = ClassTexts(sentence=np.eye(12, dtype=np.float32)[:11])
    with caplog.at_level(logging.WARNING, logger="zeroskel.eval.protocol"):
        r = evaluate_named("devise", one, texts, seed=1, overrides=["epochs=1"])
    assert r["zsl"] == 100.0
    assert r["zsl_note"].startswith("one unseen class (10): ZSL top-1 is 100 % by construction")
    assert "one unseen class (10)" in caplog.text
    r = evaluate_named("devise", fs, ClassTexts(sentence=np.eye(12, dtype=np.float32)), seed=1,
                       overrides=["epochs=1"])
    assert "zsl_note" not in r


def test_an_interrupted_save_leaves_no_truncated_file(tmp_path, monkeypatch):
    """save_features (features convert, extract) wrote straight into the destination: an interruption
    (Ctrl-C while a large file was written) left a truncated .npz under the final name, which later
    reads refused as 'cannot read as .npz' and convert / extract refused to replace as existing. It now
    writes a temporary sibling and renames it: the destination is complete or untouched."""
    np.savez(tmp_path / "a.npz", **_toy())
    fs = load_features(tmp_path / "a.npz")
    real_savez = np.savez

    def interrupted(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_features(tmp_path / "new.npz", fs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]  # no destination, no temporary file
    before = (tmp_path / "a.npz").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        save_features(tmp_path / "a.npz", fs)  # replacing an existing file: it stays as it was
    assert (tmp_path / "a.npz").read_bytes() == before and len(list(tmp_path.iterdir())) == 1
    monkeypatch.setattr(np, "savez", real_savez)
    np.testing.assert_array_equal(load_features(save_features(tmp_path / "new.npz", fs)).gzsl_x, fs.gzsl_x)
