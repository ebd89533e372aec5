"""Choose PGFA's test-time alignment options on pseudo-unseen validation data only.

Alignment is applied after training, so its options can be compared on trained models
without retraining. For every pilot run directory (``benchmarks/pilot_pgfa_small.py``:
``validation.mode=pseudo_unseen``, no refit) and each of its stage-1 checkpoints
(``stage1_last.pt``, ``stage1_best.pt``), the features of all train-partition samples of
the pseudo-unseen classes (``selection.json``) are scored with every variant below. Those
classes were never trained on by the stage-1 model, and no test-partition sample is read.

    ZEROSKEL_DATA=/work/shared/data python benchmarks/select_alignment.py \\
        benchmarks/out/pgfa_small_pilots/runs/* --out benchmarks/out/select_alignment.json

Prints a markdown table (validation top-1 % per model and the mean over models).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

VARIANTS: dict[str, dict | None] = {"none": None, "reference (argmax, 1 pass)": {},
                                    "argmax, 3 passes": {"iterations": 3}}
for _eps in (0.05, 0.1, 0.2):
    for _it in (1, 3):
        VARIANTS[f"balanced eps {_eps}, {_it} pass{'es' if _it > 1 else ''}"] = {
            "pseudo_labels": "balanced", "epsilon": _eps, "iterations": _it}


def validation_features(run_dir: Path, checkpoint: str, data_root) -> dict:
    """(N, D) features, labels, pseudo-unseen classes and text bank of one stage-1 model."""
    import torch
    import yaml

    from zeroskel.engine.data import load_prepared
    from zeroskel.engine.trainer import load_checkpoint
    from zeroskel.methods.pgfa import build_model, embed, load_texts

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    sel = json.loads((run_dir / "selection.json").read_text())
    ds, part = load_prepared(cfg, data_root, progress=False)
    text = load_texts(cfg, ds, data_root)["sentence"]
    model = build_model(cfg, ds.layout, int(ds.data.shape[-1]), text.shape[1])
    model.load_state_dict(load_checkpoint(run_dir / checkpoint)["model"])
    train = ds.partition(part, "train")
    pseudo = np.asarray(sel["pseudo_unseen"])
    idx = train[np.isin(ds.labels[train], pseudo)]
    feats = embed(model, np.asarray(ds.data[idx], np.float32), torch.device("cpu"))
    return {"feats": feats, "labels": ds.labels[idx], "classes": pseudo, "text": text}


def score_variants(v: dict) -> dict[str, float]:
    from zeroskel.methods.alignment import prototype_alignment

    f, y, classes = v["feats"], v["labels"], v["classes"]
    anchors = v["text"][classes]
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    an = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    out = {}
    for name, kw in VARIANTS.items():
        pred = (fn @ an.T).argmax(1) if kw is None else prototype_alignment(f, anchors, alpha=0.9, **kw)[1]
        out[name] = float(100 * np.mean(classes[pred] == y))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="pilot run directories (with selection.json)")
    p.add_argument("--data-root", default=os.environ.get("ZEROSKEL_DATA"))
    p.add_argument("--out", type=Path, default=None, help="JSON with every score")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from zeroskel.errors import ZeroskelError

    rows: dict[str, dict[str, float]] = {}
    for rd in a.runs:
        if not (rd / "selection.json").is_file() or json.loads((rd / "selection.json").read_text()).get(
                "mode") != "pseudo_unseen":
            continue
        for ck in ("stage1_last.pt", "stage1_best.pt"):
            if not (rd / ck).is_file():
                continue
            try:
                v = validation_features(rd, ck, a.data_root)
            except ZeroskelError as e:  # e.g. a text model that is not installed here
                print(f"skip {rd.name}/{ck}: {str(e).splitlines()[0]}", file=sys.stderr)
                continue
            rows[f"{rd.name}/{ck}"] = score_variants(v)
    if not rows:
        raise SystemExit("no usable pilot runs (need validation.mode=pseudo_unseen run directories)")
    names = list(VARIANTS)
    print(f"validation top-1 (%) over the pseudo-unseen classes' train-partition samples, {len(rows)} models\n")
    print("| variant | " + " | ".join(rows) + " | mean |")
    print("|---|" + "---|" * (len(rows) + 1))
    for n in names:
        vals = [rows[r][n] for r in rows]
        print(f"| {n} | " + " | ".join(f"{x:.1f}" for x in vals) + f" | {np.mean(vals):.2f} |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
