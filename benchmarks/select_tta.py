"""Test-time augmentation for PGFA, scored on pseudo-unseen validation data only.

For every pilot run directory (``benchmarks/pilot_pgfa_small.py`` with
``validation.heldout_group``) and each stage-1 checkpoint, the pseudo-unseen samples of the
held-out subjects / views (classes and people stage 1 never trained on; no test-partition
sample is read) are embedded under each view set below; a sample's feature is the mean of
the model's outputs over its views. Each variant is scored plain (nearest text anchor) and
with the run's own test-time step (``alignment`` config: the small preset's centring +
balanced alignment), through ``zeroskel.methods.pgfa.zsl_eval``.

    ZEROSKEL_DATA=/work/shared/data python benchmarks/select_tta.py \\
        benchmarks/out/pgfa_seg3_pilots/runs/* --out benchmarks/out/select_tta.json

Prints, per variant, the mean score and the paired difference to ``base`` (mean, se,
better/worse) over the last-epoch models and over all models.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from select_alignment import paired_cell

CROP = 0.85   # share of the valid frames in a crop
ROT = 15.0    # degrees about the vertical axis
VARIANTS = {
    "base": [("full", None)],
    "crops": [("full", None), ("crop", 0.0), ("crop", 0.5), ("crop", 1.0)],
    "rot": [("full", None), ("rot", -ROT), ("rot", ROT)],
    "crops+rot": [("full", None), ("crop", 0.0), ("crop", 0.5), ("crop", 1.0), ("rot", -ROT), ("rot", ROT)],
}


def view(x: np.ndarray, lengths: np.ndarray, kind: str, arg) -> np.ndarray:
    """One deterministic view of a (N, 3, T, V, M) batch: the batch itself, a crop of ``CROP``
    of each sample's valid frames placed at relative position ``arg`` (0 start, 0.5 centre,
    1 end) and resized back to T, or a rotation by ``arg`` degrees about the y axis."""
    from zeroskel.data.transforms import _resample

    if kind == "full":
        return x
    if kind == "crop":
        lengths = np.minimum(lengths, x.shape[2])
        count = np.maximum(np.floor(lengths * CROP).astype(np.int64), 1)
        start = np.floor(arg * (lengths - count)).astype(np.int64)
        return _resample(x, start, count, x.shape[2])
    th = np.deg2rad(arg)
    out = x.copy()
    out[:, 0] = np.cos(th) * x[:, 0] + np.sin(th) * x[:, 2]
    out[:, 2] = -np.sin(th) * x[:, 0] + np.cos(th) * x[:, 2]
    return out


def score_run(run_dir: Path, checkpoint: str, data_root) -> dict:
    import torch
    import yaml

    from zeroskel.engine.data import load_prepared
    from zeroskel.engine.trainer import load_checkpoint
    from zeroskel.methods.pgfa import build_model, embed, load_texts, zsl_eval

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    sel = json.loads((run_dir / "selection.json").read_text())
    group = sel.get("heldout_group")
    if not group:
        raise SystemExit(f"{run_dir}: no held-out group (TTA is scored on unseen people / views only)")
    ds, part = load_prepared(cfg, data_root, progress=False)
    tx = load_texts(cfg, ds, data_root)
    model = build_model(cfg, ds.layout, int(ds.data.shape[-1]), tx["dim"])
    model.load_state_dict(load_checkpoint(run_dir / checkpoint)["model"])
    train = ds.partition(part, "train")
    pseudo = np.asarray(sel["pseudo_unseen"])
    held = np.isin(np.asarray(ds.meta[group["key"]])[train], group["value"])
    idx = train[np.isin(ds.labels[train], pseudo) & held]
    x = np.asarray(ds.data[idx], np.float32)
    lengths, labels = np.asarray(ds.lengths[idx]), ds.labels[idx]
    dev = torch.device("cpu")
    cache: dict = {}
    out = {}
    for name, views in VARIANTS.items():
        feats = []
        for v in views:
            if v not in cache:
                cache[v] = embed(model, view(x, lengths, *v), dev)
            feats.append(cache[v])
        r = zsl_eval(np.mean(feats, axis=0), labels, pseudo, tx["sentence"], cfg["alignment"])
        out[name] = {"plain": float(r["top1"]), "step": float(r["top1_aligned"])}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="pilot run directories (with selection.json)")
    p.add_argument("--data-root", default=os.environ.get("ZEROSKEL_DATA"))
    p.add_argument("--out", type=Path, default=None, help="JSON with every score")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(a.threads)
    scores = {}
    for run in sorted(a.runs):
        for ck in ("stage1_last.pt", "stage1_best.pt"):
            if (run / ck).is_file():
                key = f"{run.parent.parent.name}/{run.name}/{ck}"
                scores[key] = score_run(run, ck, a.data_root)
                print(key, json.dumps(scores[key]), flush=True)
    if a.out:
        a.out.write_text(json.dumps(scores, indent=1))
    for subset, keys in (("last-epoch models", [k for k in scores if k.endswith("stage1_last.pt")]),
                         ("all models", list(scores))):
        print(f"\n{subset} ({len(keys)}): mean score; paired difference to base: mean (se; better/worse)")
        print("| variant | plain | step | plain - base | step - base |")
        print("|---|---|---|---|---|")
        for name in VARIANTS:
            pl = np.array([scores[k][name]["plain"] for k in keys])
            st = np.array([scores[k][name]["step"] for k in keys])
            bp = np.array([scores[k]["base"]["plain"] for k in keys])
            bs = np.array([scores[k]["base"]["step"] for k in keys])
            print(f"| {name} | {pl.mean():.2f} | {st.mean():.2f} | {paired_cell(pl - bp)} | {paired_cell(st - bs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
