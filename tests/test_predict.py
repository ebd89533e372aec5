"""Inference front door: bundles, Recognizer, any-file reading, predict/render/export CLI.

A tiny PGFA model is trained once per module on four UTD-MHAD classes (real data, the real
training entry point), exported, reloaded and used on held-out subjects' recordings.
"""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from conftest import need
from zeroskel.cli import main
from zeroskel.data.layouts import map_layout
from zeroskel.data.readers.anyfile import load_recording, load_recordings
from zeroskel.errors import CheckpointError, ConfigError, DataError
from zeroskel.recognizer import BUNDLE_VERSION, Recognizer, export_bundle

CLASSES = {2: "wave", 12: "boxing", 21: "jog", 26: "squat"}  # UTD-MHAD ids: the seen classes
LABELS = list(CLASSES.values())


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: these tiny models gain nothing from two, and on a busy machine
    spinning OpenMP workers make training ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def text_encoder():
    """One sentence model for the module (loaded at most once, when a label is new)."""
    from zeroskel.text.encoders import SentenceEncoder
    return SentenceEncoder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory, text_encoder):
    """(run_dir, bundle_dir): a tiny ST-GCN PGFA model trained on 4 UTD-MHAD classes."""
    need(data_root, "utd_mhad")
    from zeroskel.engine.config import build_config, dump_config
    from zeroskel.engine.runs import create_run_dir
    from zeroskel.methods.pgfa import train_pgfa

    base = tmp_path_factory.mktemp("predict")
    split = base / "split.yaml"
    split.write_text("dataset: utd_mhad\nseen: [2, 12, 21, 26]\nunseen: [25]\n")
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before conftest's per-test cache
        mp.setenv("ZEROSKEL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        cfg = build_config("pgfa", dataset="utd_mhad", split=str(split), seed=1, device="cpu",
                           data_root=str(data_root),
                           overrides=["text.source=name", "validation.mode=none", "train.epochs=11",
                                      "train.batch_size=8", "train.warmup_epochs=1", "train.lr=0.05",
                                      "model.input_frames=16", "eval.gzsl=false", "alignment.enabled=false",
                                      "train.threads=1", "text.segment_sources=null"])
        # (segment models in predict: tests/test_pgfa.py::test_temporal_segment_training_on_real_data)
        # a 2-block ST-GCN (~20x cheaper than 'slim'); batch 8 so that BatchNorm's running
        # statistics converge within the few steps (eval mode depends on them)
        cfg["model"].update(encoder="stgcn", preset="slim",
                            args={"channels": [16, 32], "strides": [2, 2], "dropout": 0.0})
        run_dir = create_run_dir(base / "runs", "tiny")
        dump_config(cfg, run_dir / "config.yaml")
        train_pgfa(cfg, run_dir, data_root=data_root)
        bundle = export_bundle(run_dir, base / "bundle")
        # embed the test labels once into the session's disk cache with the shared model
        Recognizer.load(bundle, text_encoder=text_encoder).encode_labels(LABELS)
    return run_dir, bundle


@pytest.fixture(scope="module")
def test_files(data_root):
    """Held-out subjects (2, 4, 6, 8; trials 1-2) of the 4 training classes: 32 recordings."""
    root = need(data_root, "utd_mhad")
    files = [root / f"a{a + 1}_s{s}_t{t}_skeleton.mat" for a in CLASSES for s in (2, 4, 6, 8) for t in (1, 2)]
    return [f for f in files if f.is_file()]


@pytest.fixture(scope="module")
def synthetic_bundle(tmp_path_factory):
    """An untrained tiny kinect_v1 model saved as a bundle: for the error paths, no data needed."""
    from conftest import save_tiny_bundle

    return save_tiny_bundle(tmp_path_factory.mktemp("synthetic") / "bundle", ["a", "b"])


@pytest.fixture()
def bundle_copy(synthetic_bundle, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(synthetic_bundle, dst)
    return dst


def _walk(frames: int = 30, seed: int = 0) -> np.ndarray:
    """A (T, 20, 3) Kinect-v1 skeleton: a fixed pose drifting randomly."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=0.3, size=(1, 20, 3))
    return (pose + np.cumsum(rng.normal(scale=0.01, size=(frames, 20, 3)), axis=0)).astype(np.float32)


# ---------------------------------------------------------------- round trip and accuracy
def test_bundle_is_self_describing(trained):
    _, bundle = trained
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "bundle.json", "weights.pt"]
    card = json.loads((bundle / "bundle.json").read_text())
    assert card["format"] == "zeroskel.bundle" and card["format_version"] == BUNDLE_VERSION
    assert card["model"]["encoder"] == "stgcn" and card["model"]["args"]["channels"] == [16, 32]
    assert card["model"]["text_dim"] == 384 and card["model"]["feature_dim"] == 32
    assert card["layout"] == card["input_layout"] == "kinect_v1" and card["frames"] == 50
    assert [t["name"] for t in card["pipeline"]] == ["center", "resize", "rotate_y"]
    assert card["text"]["model"] == "all-MiniLM-L6-v2" and len(card["text"]["checksum"]) == 64
    assert card["training"]["seen_classes"] == LABELS
    assert {"zeroskel", "torch"} <= set(card["versions"])
    # tensors only: loads with weights_only
    state = torch.load(bundle / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_export_load_round_trip_same_scores(trained, test_files):
    run_dir, bundle = trained
    from zeroskel.data.cache import prepare
    from zeroskel.methods.pgfa import PGFAClassifier

    loaded = Recognizer.load(bundle)
    in_memory = Recognizer.from_run(run_dir)
    files = test_files[::4]
    s_loaded = loaded.score(files, LABELS)
    np.testing.assert_allclose(s_loaded, in_memory.score(files, LABELS), rtol=0, atol=1e-6)

    # and the same as the training code path: prepared dataset -> PGFAClassifier features
    clf = PGFAClassifier.load(run_dir)
    ds = prepare("utd_mhad", clf.card["config"]["data"]["pipeline"],
                 data_root=clf.card["config"]["data_root"], progress=False)
    index = {n: i for i, n in enumerate(ds.meta["file"])}
    f = clf.features(np.asarray(ds.data[[index[p.name] for p in files]]))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    np.testing.assert_allclose(s_loaded, f @ loaded.encode_labels(LABELS).T, rtol=0, atol=1e-5)


def test_predicts_training_classes_on_new_subjects(trained, test_files):
    rec = Recognizer.load(trained[1])
    preds = rec.predict(test_files, LABELS, top_k=2)
    assert len(preds) == len(test_files) == 32
    acc = np.mean([p.label == p.true_label for p in preds])
    assert acc >= 0.55, f"accuracy {acc:.2f} (chance 0.25)"
    p = preds[0]
    assert p.source == str(test_files[0]) and p.true_label == "wave"
    assert len(p.labels) == 2 and p.scores[0] >= p.scores[1] and p.label == p.labels[0]
    assert 0 < p.probs[1] <= p.probs[0] < 1 and all(-1 <= s <= 1 for s in p.scores)


def test_input_forms_agree(trained, test_files):
    rec = Recognizer.load(trained[1])
    files = test_files[:3]
    recs = [load_recording(f) for f in files]
    ref = rec.score(files, LABELS)
    # list of (3, T, V, M) arrays of different lengths
    np.testing.assert_allclose(rec.score([r.data for r in recs], LABELS), ref, atol=1e-6)
    # (T, V, 3) arrays
    np.testing.assert_allclose(rec.score([r.data[..., 0].transpose(1, 2, 0) for r in recs], LABELS), ref, atol=1e-6)
    # padded (N, 3, T, V, M) batch with lengths; and a torch tensor
    t_max = max(r.length for r in recs)
    batch = np.zeros((3, 3, t_max + 7, 20, 1), np.float32)
    for i, r in enumerate(recs):
        batch[i, :, :r.length] = r.data
    lengths = [r.length for r in recs]
    np.testing.assert_allclose(rec.score(batch, LABELS, lengths=lengths), ref, atol=1e-6)
    np.testing.assert_allclose(rec.score(torch.from_numpy(batch), LABELS), ref, atol=1e-6)  # trailing zeros
    # encode: (N, D) unit vectors; one sequence alone gives the same as in a batch
    f = rec.encode(files)
    assert f.shape == (3, 384) and np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(rec.encode(recs[1].data), f[1:2], atol=1e-6)
    # top_k larger than the labels is clipped; labels keep their order for ties
    assert len(rec.predict(files[0], LABELS, top_k=10)[0].labels) == len(LABELS)


def test_unresized_pipeline_scores_do_not_depend_on_the_batch(caplog):
    """With a pipeline that keeps the recording's length (data.pipeline=none), training
    padded every sequence with zeros to the training data's frames; a recording must get
    those features whether it is scored alone or next to a longer one (padding it to the
    batch's longest recording changed them: pooling and input_frames see the zeros)."""
    from zeroskel.methods.pgfa import PGFAClassifier, build_model

    for input_frames in (16, None):
        cfg = {"dataset": "utd_mhad", "data": {"pipeline": "none"},
               "model": {"encoder": "stgcn", "preset": "slim", "input_frames": input_frames,
                         "temperature": 0.07, "learn_temperature": False,
                         "args": {"channels": [8], "strides": [2]}}}
        torch.manual_seed(0)
        model = build_model(cfg, "kinect_v1", 1, 384)
        card = {"config": cfg, "layout": "kinect_v1", "num_persons": 1, "frames": 50,
                "text_model": "all-MiniLM-L6-v2", "class_names": ["a", "b"], "seen": [0], "unseen": [1]}
        rec = Recognizer.from_classifier(PGFAClassifier(model, np.zeros((2, 384), np.float32), card))
        short, long_ = _walk(30, seed=1), _walk(120, seed=2)
        padded = np.zeros((1, 3, 50, 20, 1), np.float32)  # as training fed it: zeros to 50 frames
        padded[0, :, :30, :, 0] = short.transpose(2, 0, 1)
        with torch.inference_mode():
            want = torch.nn.functional.normalize(model(torch.from_numpy(padded)), dim=1).numpy()
        together = rec.encode([short, long_], batch_size=1)
        np.testing.assert_allclose(rec.encode([short]), want, atol=1e-6)
        np.testing.assert_allclose(together[:1], want, atol=1e-6)
        np.testing.assert_allclose(together[1:], rec.encode([long_]), atol=1e-6)
        np.testing.assert_allclose(rec.encode([long_, short], batch_size=2), together[::-1], atol=1e-6)


def test_label_embeddings_cached_on_disk(trained, tmp_path, text_encoder):
    cache = tmp_path / "emb"
    a = Recognizer.load(trained[1], cache_dir=cache, text_encoder=text_encoder)
    e1 = a.encode_labels(["wave", "kick something"])
    assert len(list(cache.rglob("*.npy"))) == 2
    np.testing.assert_allclose(e1, text_encoder.encode(["wave", "kick something"]), atol=1e-6)
    b = Recognizer.load(trained[1], cache_dir=cache)
    e2 = b.encode_labels(["kick something", "wave"])
    assert b._encoder is None  # served from disk: the text model was never loaded
    np.testing.assert_array_equal(e2, e1[::-1])
    assert np.allclose(np.linalg.norm(e1, axis=1), 1, atol=1e-5)


def test_alignment_flag(trained, test_files):
    rec = Recognizer.load(trained[1])
    plain = rec.score(test_files, LABELS)
    aligned = rec.score(test_files, LABELS, align=True)
    assert aligned.shape == plain.shape and not np.allclose(aligned, plain)
    acc = np.mean([LABELS[j] == load_recording(f).label for j, f in zip(aligned.argmax(1), test_files)])
    assert acc >= 0.5
    with pytest.raises(ConfigError, match="unknown option 'alfa'"):
        rec.score(test_files, LABELS, align={"alfa": 0.5})
    # groups (e.g. the person of each recording) centre each group on its own mean
    from zeroskel.methods.alignment import aligned_scores
    subjects = [int(f.name.split("_s")[1].split("_")[0]) for f in test_files]   # a{A}_s{S}_t{T}_skeleton.mat
    assert sorted(set(subjects)) == [2, 4, 6, 8]
    feats = rec.encode(test_files)
    want = aligned_scores(feats, rec.encode_labels(LABELS), groups=np.asarray(subjects), **rec._alignment({"center": True}))
    np.testing.assert_allclose(rec.score(test_files, LABELS, align={"center": True}, groups=subjects), want, atol=1e-5)
    with pytest.raises(ConfigError, match="groups centre the alignment per group: they need align=True"):
        rec.score(test_files, LABELS, groups=subjects)


def test_layout_mapping_into_an_ntu25_model(trained, test_files, data_root, caplog):
    """A Kinect-v1 recording goes through kinect_v1 -> ntu25 for a model built on NTU-25, and
    an NTU-25 recording through ntu25 -> kinect_v1 for the Kinect-v1 model."""
    from zeroskel.data.transforms import build_pipeline
    from zeroskel.methods.pgfa import build_model

    rec = Recognizer.load(trained[1])
    card = json.loads(json.dumps(rec.card))
    card.update(layout="ntu25", input_layout="ntu25", num_persons=2)
    torch.manual_seed(0)
    model = build_model({"model": card["model"]}, "ntu25", 2, 384)
    ntu = Recognizer(model, card)
    r = load_recording(test_files[0])
    x, lengths = ntu.preprocess([r])
    assert x.shape == (1, 3, 50, 25, 2) and lengths.tolist() == [50]
    mapped = np.zeros((1, 3, r.length, 25, 2), np.float32)
    mapped[0, ..., :1] = map_layout(r.data, "kinect_v1", "ntu25", joint_axis=2)
    want, _ = build_pipeline(card["pipeline"], "ntu25").apply_batch(mapped, np.array([r.length]))
    np.testing.assert_allclose(x, want, atol=1e-6)
    assert np.isfinite(ntu.score([r], LABELS)).all()
    # the empty second person slot is not run through the encoder, with the same result
    both = np.concatenate([x, x[..., ::-1]])  # person in slot 0, then in slot 1
    with torch.inference_mode():
        direct = torch.nn.functional.normalize(model(torch.from_numpy(both.copy())), dim=1).numpy()
    np.testing.assert_allclose(ntu._encode_array(both), direct, atol=1e-5)
    assert ntu._persons_separable() and len(ntu._absent) == 1

    npy = need(data_root, "ntu_samples/NTU_preprocessed_skeleton_examples.npy")
    ntu_rec = load_recordings(npy)[0]
    x, _ = rec.preprocess([ntu_rec])
    first = map_layout(ntu_rec.data[..., :1], "ntu25", "kinect_v1", joint_axis=2)[None]
    want, _ = build_pipeline(rec.card["pipeline"], "kinect_v1").apply_batch(first, np.array([ntu_rec.length]))
    np.testing.assert_allclose(x, want, atol=1e-6)  # the model takes one person: the first
    assert len(rec.predict(npy, LABELS)) == 4
    # the NTU samples themselves run through the ntu25 model (2 persons, padding trimmed)
    preds = ntu.predict(npy, LABELS, top_k=1)
    assert len(preds) == 4 and preds[2].source.endswith("[2]")
    # a third person is dropped with a warning naming the input, never silently
    three = np.concatenate([np.load(npy)[0]] * 2, axis=-1)[..., :3]  # (3, T, 25, 3)
    with caplog.at_level("WARNING", logger="zeroskel.recognizer"):
        ntu.predict(three, LABELS)
    assert "array: 3 persons, the model takes 2" in caplog.text


def test_utd_file_order_arrays(trained, test_files, caplog):
    """An array in UTD-MHAD's own .mat joint order: read as kinect_v1 (the 20-joint default)
    it is upside down and the warning says so, naming the input; with layout utd_mhad it
    scores exactly as the .mat file that the reader re-orders."""
    from scipy.io import loadmat

    from zeroskel.data.dataset import head_below_hips

    rec = Recognizer.load(trained[1])
    f = test_files[0]
    raw = loadmat(f)["d_skel"].transpose(2, 0, 1)  # (T, 20, 3) in the file's joint order
    want = rec.score([f], LABELS)
    with caplog.at_level("WARNING", logger="zeroskel.recognizer"):
        got = rec.score([raw], LABELS, layout="utd_mhad")
    assert "head is below the hips" not in caplog.text
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert head_below_hips(load_recording(f).data, "kinect_v1") == 0.0
    with caplog.at_level("WARNING", logger="zeroskel.recognizer"):
        rec.score([raw], LABELS)
    assert "array: the head is below the hips in most frames" in caplog.text and "'utd_mhad'" in caplog.text
    # the same clip in millimetres scores differently; the warning names the unit
    assert "units from the hips" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="zeroskel.recognizer"):
        rec.score([raw * 1000], LABELS, layout="utd_mhad")
    assert re.search(r"array: the head is \d{3} units from the hips; this model was trained on utd_mhad in "
                     r"metres", caplog.text)


# ---------------------------------------------------------------- reading any file
def test_load_recording_formats(data_root, tmp_path):
    root = need(data_root, "utd_mhad")
    utd = load_recording(root / "a3_s1_t1_skeleton.mat")
    assert utd.layout == "kinect_v1" and utd.data.shape == (3, utd.length, 20, 1) and utd.label == "wave"
    ucla_file = sorted((need(data_root, "nw_ucla") / "all_sqe").glob("*.json"))[0]
    ucla = load_recording(ucla_file)
    assert ucla.layout == "kinect_v1" and ucla.label == "pick up with one hand" and ucla.data.dtype == np.float32

    # .npy in its three single-recording forms, with padding trimmed
    tv3 = utd.data[..., 0].transpose(1, 2, 0)  # (T, V, 3)
    forms = {"tv3": tv3, "mtv3": tv3[None], "ctvm": utd.data,
             "padded": np.concatenate([utd.data, np.zeros((3, 9, 20, 1), np.float32)], axis=1)}
    for name, arr in forms.items():
        np.save(tmp_path / f"{name}.npy", arr)
        r = load_recording(tmp_path / f"{name}.npy")
        assert r.layout == "kinect_v1" and r.length == utd.length, name
        np.testing.assert_array_equal(r.data, utd.data)
    assert load_recording(tmp_path / "padded.npy").info == {"trimmed_frames": 9}

    # custom-format .npz: one recording per sample, labels from the file
    from zeroskel.data.readers.custom import write_custom
    write_custom(tmp_path / "mine.npz", [tv3, tv3[:20]], [1, 0], ["kick", "wave"], "kinect_v1")
    recs = load_recordings(tmp_path / "mine.npz")
    assert [r.length for r in recs] == [utd.length, 20] and [r.label for r in recs] == ["wave", "kick"]
    assert load_recording(tmp_path / "mine.npz", index=1).length == 20
    with pytest.raises(ConfigError, match="holds 2 recordings"):
        load_recording(tmp_path / "mine.npz")
    # unlabelled .npz with just 'joints'
    np.savez(tmp_path / "bare.npz", joints=tv3[None])
    bare = load_recording(tmp_path / "bare.npz")
    assert bare.layout == "kinect_v1" and bare.label is None and bare.length == utd.length


def test_load_ntu_skeleton_file(tmp_path):
    from ntu_fixtures import sample_name, two_person_frames, write_skeleton
    from zeroskel.data.readers.ntu import load_ntu_sample

    path = write_skeleton(tmp_path / f"{sample_name(action=50)}.skeleton", two_person_frames(40))
    r = load_recording(path)
    assert r.layout == "ntu25" and r.data.shape == (3, 40, 25, 2) and r.label == "punching/slapping other person"
    seq, _ = load_ntu_sample(path)  # the dataset reader's actor selection and centring
    np.testing.assert_array_equal(r.data, seq.transpose(3, 0, 2, 1))
    with pytest.raises(ConfigError, match="always in layout 'ntu25'"):
        load_recording(path, layout="kinect_v1")


# ---------------------------------------------------------------- bad input
def test_dropped_person_warning_only_when_someone_is_dropped(synthetic_bundle, tmp_path, caplog):
    """NTU files are read with two person slots; a one-actor recording has an empty second
    slot, and predicting it with a one-person model must not warn that a person is dropped."""
    from ntu_fixtures import sample_name, single_person_frames, two_person_frames, write_skeleton

    rec = Recognizer.load(synthetic_bundle)
    one = write_skeleton(tmp_path / f"{sample_name(action=10)}.skeleton", single_person_frames(40))
    two = write_skeleton(tmp_path / f"{sample_name(action=50)}.skeleton", two_person_frames(40))
    assert load_recording(one).data.shape[3] == 2 and not load_recording(one).data[..., 1].any()
    with caplog.at_level("WARNING", logger="zeroskel.recognizer"):
        rec.preprocess([one])
    assert "persons" not in caplog.text
    with caplog.at_level("WARNING", logger="zeroskel.recognizer"):
        rec.preprocess([two])
    assert f"{two}: 2 persons, the model takes 1; using the first 1" in caplog.text


def test_bad_recordings_name_the_file(synthetic_bundle, tmp_path):
    rec = Recognizer.load(synthetic_bundle)
    assert rec.encode(_walk()).shape == (1, 384)
    np.save(tmp_path / "empty.npy", np.zeros((30, 20, 3), np.float32))
    with pytest.raises(DataError, match=r"empty\.npy: no frames"):
        rec.predict(tmp_path / "empty.npy", LABELS)
    np.save(tmp_path / "none.npy", np.zeros((0, 20, 3), np.float32))
    with pytest.raises(DataError, match=r"none\.npy: no frames"):
        load_recording(tmp_path / "none.npy")
    nan = np.random.default_rng(0).normal(size=(30, 20, 3)).astype(np.float32)
    nan[4, 7, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(DataError, match=r"nan\.npy: non-finite coordinate"):
        rec.predict(tmp_path / "nan.npy", LABELS)
    with pytest.raises(DataError, match="non-finite"):
        rec.predict(nan, LABELS)
    np.save(tmp_path / "v23.npy", np.ones((30, 23, 3), np.float32))
    with pytest.raises(DataError, match=r"v23\.npy: cannot tell the joint layout of 23 joints"):
        load_recording(tmp_path / "v23.npy")
    with pytest.raises(DataError, match="23 joints, but layout 'ntu25'"):
        load_recording(tmp_path / "v23.npy", layout="ntu25")
    with pytest.raises(ConfigError, match="unknown joint layout 'ntu26'"):
        load_recording(tmp_path / "v23.npy", layout="ntu26")
    (tmp_path / "clip.csv").write_text("1,2,3\n")
    with pytest.raises(ConfigError, match=r"clip\.csv: unsupported file type '\.csv'"):
        load_recording(tmp_path / "clip.csv")
    with pytest.raises(DataError, match=r"gone\.mat: file not found"):
        rec.predict(tmp_path / "gone.mat", LABELS)
    for name in ("text.npy", "text.npz"):  # e.g. a CSV saved under a NumPy name
        (tmp_path / name).write_text("1,2,3\n")
        with pytest.raises(DataError, match=name.replace(".", r"\.") + r": .*not a NumPy file"):
            load_recording(tmp_path / name)
    with pytest.raises(DataError, match="empty list"):
        rec.predict([], LABELS)


def test_bad_labels(synthetic_bundle):
    rec = Recognizer.load(synthetic_bundle)
    for labels, msg in [([], "label list is empty"), (None, "no candidate labels"),
                        ("wave", "got one string"), (["wave", " "], "non-empty strings"),
                        (["wave", "wave"], "duplicate labels")]:
        with pytest.raises(ConfigError, match=msg):
            rec.predict(_walk(), labels)
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match="top_k must be a positive integer"):
            rec.predict(_walk(), LABELS, top_k=bad)
    assert len(rec.predict(_walk(), LABELS, top_k=2.0)[0].labels) == 2   # the one integer rule: 2.0 is 2
    with pytest.raises(DataError, match="lengths has 1 entries for 2 sequences"):
        rec.encode([_walk(), _walk(9)], lengths=[5])
    feats = rec.encode([_walk(), _walk(9)])
    assert rec.score_features(feats, LABELS).shape == (2, len(LABELS))
    # features of another shape are refused (a (1, N, D) stack was normalised along the wrong axis)
    for bad in (feats[0], feats[None], feats[:, :10], feats.T):
        with pytest.raises(DataError, match=f"feats must be \\(N, {feats.shape[1]}\\)"):
            rec.score_features(bad, LABELS)
    with pytest.raises(DataError, match="NaN"):
        rec.score_features(feats * np.nan, LABELS)
    with pytest.raises(DataError, match="lengths\\[0\\] must be a whole number of frames, got 5.5"):
        rec.encode([_walk(), _walk(9)], lengths=[5.5, 4])  # was cut to 5
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1, got 1.5"):
        rec.encode([_walk()], batch_size=1.5)
    np.testing.assert_allclose(rec.encode([_walk()], batch_size=2.0), rec.encode([_walk()], batch_size=2))


def test_text_model_folder_not_found_at_predict_time(bundle_copy, tmp_path, monkeypatch):
    """A model trained with a local text-model folder records it as given (often a relative
    path): predicting from another directory or machine found no such folder, and failed
    with an error naming neither the bundle nor a remedy. The recorded weights checksum
    identifies a known installed model; any other is an error naming the card key."""
    from zeroskel.text.encoders import KNOWN_WEIGHTS_SHA256, MINILM

    monkeypatch.chdir(tmp_path)  # 'minilm' relative to where training ran: not here
    card_path = bundle_copy / "bundle.json"
    card = json.loads(card_path.read_text())
    card["text"].update(model="minilm", checksum=KNOWN_WEIGHTS_SHA256[MINILM])
    card_path.write_text(json.dumps(card))
    rec = Recognizer.load(bundle_copy, cache_dir=tmp_path / "emb")
    assert rec.score(_walk(), ["wave", "kick"]).shape == (1, 2)
    assert rec.text_encoder.name == MINILM
    card["text"].update(checksum="0" * 64)
    card_path.write_text(json.dumps(card))
    rec = Recognizer.load(bundle_copy, cache_dir=tmp_path / "emb")
    with pytest.raises(ConfigError, match=r"text model 'minilm' \(bundle\.json key 'text\.model'.*"
                                          r"text_encoder=SentenceEncoder"):
        rec.encode_labels(["wave"])


def test_label_cache_is_keyed_by_the_text_model_setup(bundle_copy, tmp_path, text_encoder):
    """Label embeddings on disk were keyed by the weights alone: a text model folder with the
    same weights but another pooling (CLS instead of mean) got the first model's cached
    vectors, as training's cache no longer does (its key has the folder's setup checksum)."""
    from zeroskel.text.encoders import SentenceEncoder

    card = json.loads((bundle_copy / "bundle.json").read_text())
    card["text"]["checksum"] = text_encoder.checksum  # as a trained bundle records it
    (bundle_copy / "bundle.json").write_text(json.dumps(card))
    cache = tmp_path / "emb"
    mean = Recognizer.load(bundle_copy, cache_dir=cache, text_encoder=text_encoder).encode_labels(["wave"])
    copy = tmp_path / "minilm_cls"
    shutil.copytree(text_encoder.path, copy)
    pool = copy / "1_Pooling" / "config.json"
    pool.write_text(json.dumps({**json.loads(pool.read_text()), "pooling_mode_cls_token": True,
                                "pooling_mode_mean_tokens": False}))
    cls_enc = SentenceEncoder(str(copy))
    cls = Recognizer.load(bundle_copy, cache_dir=cache, text_encoder=cls_enc).encode_labels(["wave"])
    assert cls_enc.is_loaded and not np.allclose(cls, mean)
    np.testing.assert_allclose(cls, cls_enc.encode(["wave"]), atol=1e-6)
    # the recorded model is still served from disk without loading it
    again = Recognizer.load(bundle_copy, cache_dir=cache)
    np.testing.assert_array_equal(again.encode_labels(["wave"]), mean)
    assert again._encoder is None


def test_bad_bundles(bundle_copy, tmp_path):
    card_path = bundle_copy / "bundle.json"
    card = json.loads(card_path.read_text())
    # a newer format version
    card_path.write_text(json.dumps({**card, "format_version": BUNDLE_VERSION + 1}))
    with pytest.raises(CheckpointError, match=r"bundle\.json: bundle format version 2 .*newer.*upgrade zeroskel"):
        Recognizer.load(bundle_copy)
    card_path.write_text(json.dumps({k: v for k, v in card.items() if k != "pipeline"}))
    with pytest.raises(CheckpointError, match="missing key 'pipeline'"):
        Recognizer.load(bundle_copy)
    card_path.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"bundle\.json: unreadable card"):
        Recognizer.load(bundle_copy)
    card_path.write_text(json.dumps(card))
    # corrupt weights: detected by the checksum, and by torch when there is none
    weights = bundle_copy / "weights.pt"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r"weights\.pt: corrupt weights"):
        Recognizer.load(bundle_copy)
    card_path.write_text(json.dumps({**card, "weights": {"file": "weights.pt"}}))
    with pytest.raises(CheckpointError, match=r"weights\.pt is corrupt.*truncated or damaged"):
        Recognizer.load(bundle_copy)
    # weights of another architecture
    torch.save({"proj.weight": torch.zeros(3, 3)}, weights)
    with pytest.raises(CheckpointError, match="do not match the model"):
        Recognizer.load(bundle_copy)
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing weights file weights.pt"):
        Recognizer.load(bundle_copy)
    card_path.unlink()
    with pytest.raises(CheckpointError, match="not a zeroskel model bundle, missing bundle.json"):
        Recognizer.load(bundle_copy)
    with pytest.raises(CheckpointError, match="not found"):
        Recognizer.load(tmp_path / "nothing")


def test_save_refuses_to_clobber(trained, tmp_path):
    rec = Recognizer.load(trained[1])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        rec.save(tmp_path / "busy")
    with pytest.raises(ConfigError, match="not a zeroskel bundle; refusing"):
        rec.save(tmp_path / "busy", overwrite=True)
    out = rec.save(tmp_path / "again")
    assert rec.save(out, overwrite=True) == out and (out / "weights.pt").is_file()
    np.testing.assert_array_equal(Recognizer.load(out).encode_labels(["wave"]), rec.encode_labels(["wave"]))


# ---------------------------------------------------------------- CLI
def test_cli_predict_table_and_json(trained, test_files, tmp_path, capsys):
    out = tmp_path / "preds.json"
    files = [str(f) for f in test_files[:2]]
    assert main(["predict", str(trained[1]), *files, "--labels", *LABELS, "--top-k", "3",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{files[0]}  [kinect_v1, " in text and "(label in file: wave)" in text
    assert text.count("rank  label") == 2 and "score" in text and "prob" in text
    data = json.loads(out.read_text())
    assert data["labels"] == LABELS and len(data["predictions"]) == 2
    first = data["predictions"][0]
    assert first["source"] == files[0] and len(first["ranking"]) == 3
    assert first["ranking"][0]["label"] in text.split("\n")[2]
    # a second run refuses to replace the JSON before loading the model; --force replaces it
    out.write_text("{}")
    assert main(["predict", str(trained[1]), *files, "--labels", *LABELS, "--json", str(out)]) == 2
    assert f"--json {out} exists" in capsys.readouterr().err and out.read_text() == "{}"
    assert main(["predict", str(trained[1]), *files, "--labels", *LABELS, "--json", str(out), "--force"]) == 0
    capsys.readouterr()
    assert len(json.loads(out.read_text())["predictions"]) == 2
    # labels from a file; a run directory works as MODEL too
    lf = tmp_path / "labels.txt"
    lf.write_text("# candidates\nwave\n\njog\n")
    assert main(["predict", str(trained[0]), files[0], "--labels-file", str(lf), "--json", "-"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["labels"] == ["wave", "jog"]  # only JSON on stdout: pipeable
    assert "rank  label" in printed.err


def test_labels_file_with_a_bom(tmp_path):
    """A --labels-file saved with a BOM (Windows Notepad) made the first label '\\ufeffwave':
    printed and written to --json so, and not a duplicate of a later 'wave'."""
    from zeroskel.cli_predict import read_labels_file

    lf = tmp_path / "labels.txt"
    lf.write_bytes("wave\r\njog\r\n".encode("utf-8-sig"))
    assert read_labels_file(lf) == ["wave", "jog"]
    lf.write_bytes("wave\njog\nwave\n".encode("utf-8-sig"))
    with pytest.raises(ConfigError, match=r"duplicate labels \['wave'\]"):
        read_labels_file(lf)


def test_cli_errors_are_one_line(trained, test_files, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    assert main(["predict", str(trained[1]), str(test_files[0]), "--labels-file", str(empty)]) == 2
    assert "--labels-file" in capsys.readouterr().err
    assert main(["predict", str(trained[1]), str(test_files[0])]) == 2
    assert "no candidate labels" in capsys.readouterr().err
    assert main(["predict", str(trained[1]), str(test_files[0]), "--labels", "jog", "--align"]) == 2
    assert "--align" in capsys.readouterr().err  # (the alignment's message named alignment.center)
    dup = tmp_path / "dup.txt"
    dup.write_text("wave\njog\nwave\n")
    assert main(["predict", str(trained[1]), str(test_files[0]), "--labels-file", str(dup)]) == 2
    assert f"--labels-file {dup}: duplicate labels ['wave']" in capsys.readouterr().err
    assert main(["predict", str(trained[1]), str(test_files[0]), "--labels", "jog", " jog"]) == 2
    assert "--labels: duplicate labels ['jog']" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.ones((10, 18, 3), np.float32))  # an OpenPose-18 skeleton
    assert main(["predict", str(trained[1]), str(tmp_path / "x.npy"), "--labels", "wave"]) == 2
    err = capsys.readouterr().err
    assert "x.npy" in err and "18 joints" in err and "--layout" in err and "Traceback" not in err
    assert main(["predict", str(tmp_path), str(test_files[0]), "--labels", "wave"]) == 2
    assert "missing bundle.json" in capsys.readouterr().err


def test_cli_render_gif(trained, test_files, tmp_path, capsys):
    from PIL import Image

    short = tmp_path / "short.npy"  # 12 frames keep the drawing quick
    np.save(short, load_recording(test_files[0]).data[:, :12])
    gif = tmp_path / "clip.gif"
    assert main(["render", str(short), "--out", str(gif), "--model", str(trained[1]),
                 "--labels", *LABELS, "--fps", "30"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "rank  label" in out
    assert gif.read_bytes()[:6] == b"GIF89a"
    with Image.open(gif) as im:
        assert im.n_frames == 12
    assert main(["render", str(short), "--out", str(tmp_path / "clip.png")]) == 2
    assert "GIF" in capsys.readouterr().err
    assert main(["render", str(short), "--out", str(gif), "--labels", "wave"]) == 2
    assert "need --model" in capsys.readouterr().err
    # an existing output is never replaced without --force
    before = gif.read_bytes()
    assert main(["render", str(short), "--out", str(gif)]) == 2
    err = capsys.readouterr().err
    assert f"--out {gif} exists" in err and "--force" in err and gif.read_bytes() == before
    assert main(["render", str(short), "--out", str(gif), "--force", "--fps", "10"]) == 0
    assert gif.read_bytes() != before


def test_cli_export(trained, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(trained[0]), str(out)]) == 0
    assert (out / "bundle.json").is_file() and "exported" in capsys.readouterr().out
    assert main(["export", str(trained[0]), str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["export", str(trained[0]), str(out), "--force"]) == 0
    assert main(["export", str(tmp_path / "norun"), str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_recognizer_import_leaves_scipy_special_out():
    """``zeroskel predict`` imports the recognizer, which imports the alignment module; that
    module needs scipy.special (~0.2 s to import) only for --align's balanced pseudo-labels."""
    import subprocess
    import sys

    code = ("import sys, zeroskel.recognizer, zeroskel.methods.alignment as a, numpy as np\n"
            "assert 'scipy.special' not in sys.modules, 'imported at start-up'\n"
            "a.balanced_assignment(np.eye(3))\n"
            "assert 'scipy.special' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
