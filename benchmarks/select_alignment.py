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

``--scoring`` adds the score-debiasing variants that were compared on 2026-11-21 (centring
the features on the evaluated set's mean or on the training features' mean, per-class
z-scores of the cosines, CSLS-style hubness corrections, text centring) and prints each
variant's paired difference to ``none`` and to the preset's balanced alignment.
``--group-only`` scores only the validation samples of the held-out subjects / views of
pilots trained with ``validation.heldout_group`` (unseen class *and* unseen person or
view, as in the test); the training-feature statistics then come from the samples stage 1
trained on.

``--text-source S [S ...]`` scores with other class-text anchors (one source, or several:
a prompt ensemble as ``text.source`` takes it) than the ones the pilots trained on.

``--ensemble-with DIR [DIR ...]`` scores each pilot together with, from every DIR, the pilot
run trained on the same validation problem (dataset, split, pseudo-unseen / pseudo-seen
classes and held-out group; any encoder or training seed) as one ensemble, exactly as
:class:`zeroskel.methods.pgfa.PGFAEnsemble` joins members: concatenated unit features and
unit text anchors, each block scaled by ``1/sqrt(M)``, so every variant scores the mean of
the members' cosines.
"""
from __future__ import annotations

import argparse
import functools
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


def validation_features(run_dir: Path, checkpoint: str, data_root, group_only: bool = False,
                        text_source=None) -> dict:
    """(N, D) features, labels, pseudo-unseen classes and text bank of one stage-1 model,
    plus ``ref``: features of the pseudo-seen samples that stage 1 trained on.
    ``text_source`` (a source or a list: a prompt ensemble) replaces the run's
    ``text.source`` for the anchors only; the model is loaded as trained."""
    import torch
    import yaml

    from zeroskel.engine.data import load_prepared
    from zeroskel.engine.trainer import load_checkpoint
    from zeroskel.methods.pgfa import build_model, embed, load_texts

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    sel = json.loads((run_dir / "selection.json").read_text())
    ds, part = load_prepared(cfg, data_root, progress=False)
    tx = load_texts(cfg, ds, data_root)
    text = tx["sentence"]
    model = build_model(cfg, ds.layout, int(ds.data.shape[-1]), tx["dim"])
    if text_source is not None:
        text = load_texts({**cfg, "text": {**cfg["text"], "source": text_source}}, ds, data_root)["sentence"]
    model.load_state_dict(load_checkpoint(run_dir / checkpoint)["model"])
    train = ds.partition(part, "train")
    pseudo = np.asarray(sel["pseudo_unseen"])
    group = sel.get("heldout_group")
    held = (np.isin(np.asarray(ds.meta[group["key"]])[train], group["value"]) if group
            else np.zeros(len(train), bool))
    val = np.isin(ds.labels[train], pseudo) & (held if group_only and group else True)
    ref = np.isin(ds.labels[train], sel["pseudo_seen"]) & ~held
    dev = torch.device("cpu")
    feats = embed(model, np.asarray(ds.data[train[val]], np.float32), dev)
    ref_feats = embed(model, np.asarray(ds.data[train[ref]], np.float32), dev)
    return {"feats": feats, "labels": ds.labels[train[val]], "classes": pseudo, "text": text,
            "ref": ref_feats, "seen": np.asarray(sel["pseudo_seen"])}


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def paired_cell(d: np.ndarray) -> str:
    """Paired differences ``d`` as 'mean (se; better/worse)' (se nan for a single pair)."""
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return f"{d.mean():+.2f} ({se:.2f}; {(d > 0).sum()}/{(d < 0).sum()})"


@functools.lru_cache(maxsize=None)  # each pool is scanned once per pilot
def _pilot(run_dir: Path) -> tuple[tuple, int]:
    """(what makes two pilots' validation sets identical, encoder and training seed aside;
    the validation seed)."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    sel = json.loads((run_dir / "selection.json").read_text())
    vseed = cfg["seed"] if cfg["validation"].get("seed") is None else cfg["validation"]["seed"]
    return (cfg["dataset"], cfg["split"], tuple(sel["pseudo_unseen"]), tuple(sel["pseudo_seen"]),
            json.dumps(sel.get("heldout_group"), sort_keys=True)), int(vseed)


def find_partners(run_dir: Path, pools: "list[Path]") -> "list[Path]":
    """For each pool folder of pilot runs, its run on ``run_dir``'s validation problem (the
    one with the same validation seed when several pilots drew the same problem)."""
    (key, vseed), out = _pilot(run_dir), []
    for pool in pools:
        if not pool.is_dir():
            raise SystemExit(f"--ensemble-with {pool}: not a folder of pilot runs")
        info = {d: _pilot(d) for d in sorted(pool.iterdir()) if (d / "selection.json").is_file()}
        hits = [d for d, (k, _) in info.items() if k == key]
        hits = [d for d in hits if info[d][1] == vseed] or hits
        if len(hits) != 1:
            raise SystemExit(f"{pool}: {len(hits)} pilot runs on the validation problem of {run_dir} (need 1)")
        out.append(hits[0])
    return out


def join_members(vs: "list[dict]") -> dict:
    """One validation record for an ensemble: PGFAEnsemble's concatenation of unit blocks."""
    if len(vs) == 1:
        return vs[0]
    for v in vs[1:]:
        if not (np.array_equal(v["labels"], vs[0]["labels"]) and np.array_equal(v["classes"], vs[0]["classes"])):
            raise SystemExit("ensemble members score different validation samples")
    k = 1.0 / np.sqrt(len(vs))
    cat = lambda key: np.concatenate([_unit(v[key]) for v in vs], axis=1) * k  # noqa: E731
    return {**vs[0], "feats": cat("feats"), "ref": cat("ref"), "text": cat("text")}


PRESET = {"pseudo_labels": "balanced", "epsilon": 0.1, "iterations": 3}


def scoring_variants(v: dict) -> dict:
    """name -> (N,) predicted indices into the candidate classes, for the debiasing variants."""
    from zeroskel.methods.alignment import balanced_assignment, center_features, prototype_alignment

    f, r, anchors = _unit(v["feats"]), _unit(v["ref"]), v["text"][v["classes"]]
    an = _unit(anchors)
    s, rs = f @ an.T, r @ an.T  # (N, K) cosines; (Nr, K) cosines of the training features
    topk = lambda m, k: -np.sort(-m, axis=0)[:k].mean(0)  # noqa: E731  mean of each anchor's k best
    text_mean = _unit(v["text"][np.concatenate([v["seen"], v["classes"]])]).mean(0)
    z = (s - rs.mean(0)) / rs.std(0)  # per-class z-scores against the training features
    return {
        "sinkhorn plan only (eps 0.1, 3 passes)": balanced_assignment(s, 0.1, 3).argmax(1),
        "train-mean centring (inductive)": (s - rs.mean(0)).argmax(1),
        "train z-score per class (inductive)": z.argmax(1),
        "train CSLS k=5 (inductive)": (s - topk(rs, 5)).argmax(1),
        "train CSLS k=20 (inductive)": (s - topk(rs, 20)).argmax(1),
        "train z-score + sinkhorn": balanced_assignment(z, 0.1 * float(np.std(z)), 3).argmax(1),
        "train-mean centring + balanced alignment": prototype_alignment(
            _unit(v["feats"]) - r.mean(0), anchors, alpha=0.9, **PRESET)[1],
        "text centring (seen + candidates)": (f @ _unit(an - text_mean).T).argmax(1),
        "test z-score per class": ((s - s.mean(0)) / s.std(0)).argmax(1),
        "test CSLS k=5": (s - topk(s, 5)).argmax(1),
        "test centring (center: true), no prototypes": (center_features(v["feats"]) @ an.T).argmax(1),
        "test centring + balanced alignment (center: true)": prototype_alignment(
            v["feats"], anchors, alpha=0.9, center=True, **PRESET)[1],
    }


def score_variants(v: dict, scoring: bool = False) -> dict[str, float]:
    from zeroskel.methods.alignment import prototype_alignment

    f, y, classes = v["feats"], v["labels"], v["classes"]
    anchors = v["text"][classes]
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    an = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    out = {}
    for name, kw in VARIANTS.items():
        pred = (fn @ an.T).argmax(1) if kw is None else prototype_alignment(f, anchors, alpha=0.9, **kw)[1]
        out[name] = float(100 * np.mean(classes[pred] == y))
    if scoring:
        for name, pred in scoring_variants(v).items():
            out[name] = float(100 * np.mean(classes[pred] == y))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="pilot run directories (with selection.json)")
    p.add_argument("--data-root", default=os.environ.get("ZEROSKEL_DATA"))
    p.add_argument("--out", type=Path, default=None, help="JSON with every score")
    p.add_argument("--scoring", action="store_true", help="also the score-debiasing variants (module doc)")
    p.add_argument("--group-only", action="store_true",
                   help="held-out-group pilots: score only the held-out subjects' / views' samples")
    p.add_argument("--ensemble-with", nargs="+", type=Path, default=[], metavar="DIR",
                   help="folders of pilot runs: score each run with their runs on its validation problem "
                        "as one ensemble (module doc)")
    p.add_argument("--text-source", nargs="+", default=None, metavar="SOURCE",
                   help="anchor texts for scoring instead of the run's text.source (several = prompt ensemble)")
    a = p.parse_args(argv)
    src = None if a.text_source is None else (a.text_source[0] if len(a.text_source) == 1 else a.text_source)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from zeroskel.errors import ZeroskelError

    rows: dict[str, dict[str, float]] = {}
    for rd in a.runs:
        if not (rd / "selection.json").is_file() or json.loads((rd / "selection.json").read_text()).get(
                "mode") != "pseudo_unseen":
            continue
        members = [rd] + find_partners(rd, a.ensemble_with)
        for ck in ("stage1_last.pt", "stage1_best.pt"):
            if not (rd / ck).is_file():
                continue
            try:
                v = join_members([validation_features(m, ck, a.data_root, a.group_only, src) for m in members])
            except ZeroskelError as e:  # e.g. a text model that is not installed here
                print(f"skip {rd.name}/{ck}: {str(e).splitlines()[0]}", file=sys.stderr)
                continue
            rows[f"{rd.parent.parent.name}/{rd.name}/{ck}"] = score_variants(v, a.scoring)
    if not rows:
        raise SystemExit("no usable pilot runs (need validation.mode=pseudo_unseen run directories)")
    names = list(next(iter(rows.values())))
    print(f"validation top-1 (%) over the pseudo-unseen classes' train-partition samples, {len(rows)} models\n")
    if a.scoring:  # many models: paired differences instead of one column per model
        pre = "balanced eps 0.1, 3 passes"
        print("| variant | mean | vs none (se; better/worse) | vs preset alignment (se; better/worse) |")
        print("|---|---|---|---|")
        for n in names:
            x = np.array([rows[r][n] for r in rows])
            cells = []
            for b in ("none", pre):
                cells.append(paired_cell(x - np.array([rows[r][b] for r in rows])))
            print(f"| {n} | {x.mean():.2f} | " + " | ".join(cells) + " |")
    else:
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
