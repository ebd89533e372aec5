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
