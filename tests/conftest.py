"""Shared fixtures. Tests that need the real datasets skip cleanly without a data root."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ZEROSKEL_QUIET", "1")

try:
    import torch

    # Test models are tiny: one thread avoids sync overhead (and oversubscription when
    # several suites share the 2 CI cores).
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def data_root() -> Path:
    raw = os.environ.get("ZEROSKEL_DATA")
    if not raw or not Path(raw).is_dir():
        pytest.skip("real data not available: set ZEROSKEL_DATA to the data root")
    return Path(raw)


def need(root: Path, rel: str) -> Path:
    """Path under the data root, skipping the test if that dataset is absent."""
    p = root / rel
    if not p.exists():
        pytest.skip(f"{rel} not under the data root {root}")
    return p


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes caches to a temp folder, never to ~/.cache."""
    monkeypatch.setenv("ZEROSKEL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


#: build_config overrides of a tiny PGFA run on the dataset of :func:`write_tiny_custom` (seconds on a CPU)
TINY_PGFA = ["train.warmup_epochs=0", "train.batch_size=8", "model.encoder=stgcn",
             "model.args={channels: [4, 8], strides: [1, 2]}", "model.input_frames=null",
             "text.segment_sources=null", "text.model=all-MiniLM-L6-v2", "data.pipeline=none", "device=cpu"]


def write_tiny_custom(folder: Path, labels: "list[int] | None" = None, test_from: int = 16,
                      shift: float = 0.0) -> "tuple[Path, Path]":
    """A custom dataset ``folder/mine.npz`` of 12-frame NTU-25 sequences of four classes (wave,
    clap, jump, kick; sample i has class ``labels[i]``, default ``i % 4`` for 24 samples; samples
    from ``test_from`` on are the test part; ``shift`` moves every coordinate) and a split
    ``folder/split.yaml`` with kick unseen. Returns the two paths."""
    import numpy as np

    from zeroskel.data.readers.custom import write_custom

    rng = np.random.default_rng(0)
    labels = [i % 4 for i in range(24)] if labels is None else labels
    seqs = [(np.sin(np.linspace(0, 3, 12))[:, None, None] * (1 + c) + shift
             + 0.1 * rng.standard_normal((12, 25, 3))).astype(np.float32) for c in labels]
    write_custom(folder / "mine.npz", seqs, labels, ["wave", "clap", "jump", "kick"], "ntu25", name="mine",
                 partitions={"custom": ["train" if i < test_from else "test" for i in range(len(labels))]})
    (folder / "split.yaml").write_text("unseen: [kick]\n")
    return folder / "mine.npz", folder / "split.yaml"


def save_tiny_bundle(path, class_names: "list[str]"):
    """An untrained tiny kinect_v1 PGFA model (class 0 seen, the others unseen) saved as a
    Recognizer bundle at ``path``; returns the bundle folder. For error paths and encodings: no
    data or training needed (also imported by test_portability's subprocesses)."""
    import numpy as np
    import torch

    from zeroskel.methods.pgfa import PGFAClassifier, build_model
    from zeroskel.recognizer import Recognizer

    cfg = {"dataset": "utd_mhad", "data": {"pipeline": "pgfa50"},
           "model": {"encoder": "stgcn", "preset": "slim", "input_frames": None, "temperature": 0.07,
                     "learn_temperature": False, "args": {"channels": [8], "strides": [2]}}}
    torch.manual_seed(0)
    model = build_model(cfg, "kinect_v1", 1, 384)
    card = {"config": cfg, "layout": "kinect_v1", "num_persons": 1, "frames": 50, "text_model": "all-MiniLM-L6-v2",
            "class_names": list(class_names), "seen": [0], "unseen": list(range(1, len(class_names)))}
    rec = Recognizer.from_classifier(PGFAClassifier(model, np.zeros((len(class_names), 384), np.float32), card))
    return rec.save(path)
