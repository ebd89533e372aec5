"""A held-out validation problem of a pilot, replayed as an ordinary PGFA run (seen-class data only).

A pilot (``pilot_pgfa_small.py`` with ``validation.heldout_group``) trains on the pseudo-seen
classes of some training subjects / views and scores the pseudo-unseen classes of a held-out
one. To judge a change of the *whole protocol* (stage 1 inside the seen classes, then the final
model) rather than of one trained model, this script turns that problem into a dataset of its
own and runs the full library protocol on it:

* a custom-format dataset (``zeroskel.data.readers.custom``) holding the train partition's
  prepared sequences, with the partition ``custom``: train = the pilot's training subjects /
  views, test = the held-out one;
* a split file: seen = the pilot's pseudo-seen classes, unseen = its pseudo-unseen classes;
* the run config's class texts rendered to files (a custom dataset has no registered texts).

The run's test ZSL is then the pilot problem's validation score, and its calibrated GZSL
(S / U / H with the gamma of its own stage 1) the problem's GZSL score; no test-partition sample
is in the dataset at all. ``--collect`` writes the scores of a set of such runs in the format of
``select_alignment.py --out`` so ``compare_pilots.py`` pairs them with a pilot set.

    ZEROSKEL_DATA=/work/shared/data python benchmarks/pilot_pgfa_nested.py \\
        benchmarks/out/pgfa_base19_pilots/runs/pgfa-utd_mhad-purls-22_5-seed11 --tag warm \\
        --set validation.refit_from=selected --set validation.finetune_epochs=12
    python benchmarks/pilot_pgfa_nested.py --collect benchmarks/out/pgfa_warm_nested \\
        --json benchmarks/out/select_scoring_warm.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

PLAIN, STEP = "none", "test centring + balanced alignment (center: true)"  # select_alignment's names


def build_problem(base_run: Path, work: Path, data_root) -> tuple[Path, Path, dict, dict]:
    """Write the problem's dataset, split file and text files under ``work``; return
    (dataset path, split path, text overrides, base config)."""
    from zeroskel.data.readers.custom import write_custom
    from zeroskel.engine.data import load_prepared
    from zeroskel.text.classtexts import load_class_texts

    cfg0 = yaml.safe_load((base_run / "config.yaml").read_text())
    sel = json.loads((base_run / "selection.json").read_text())
    if "heldout_group" not in sel or "pseudo_unseen" not in sel:
        raise SystemExit(f"{base_run}: not a held-out-group pseudo-unseen pilot (selection.json)")
    ds, part = load_prepared(cfg0, data_root, progress=False)
    train_part = ds.partition(part, "train")
    key, held = sel["heldout_group"]["key"], sel["heldout_group"]["value"]
    is_test = np.isin(np.asarray(ds.meta[key])[train_part], held)
    work.mkdir(parents=True, exist_ok=True)
    dpath = work / f"{cfg0['dataset']}.npz"
    if not dpath.is_file():
        joints = np.asarray(ds.data[train_part]).transpose(0, 4, 2, 3, 1)  # (N, M, T, V, 3)
        meta = {k: np.asarray(v)[train_part] for k, v in ds.meta.items() if k in ("subject", "view")}
        write_custom(dpath, joints, ds.labels[train_part], list(ds.class_names), ds.layout,
                     name=f"{cfg0['dataset']}-nested", lengths=ds.lengths[train_part],
                     subjects=meta.get("subject"), views=meta.get("view"),
                     partitions={"custom": np.where(is_test, "test", "train")})
    spath = work / f"{cfg0['split'].replace('/', '_')}.yaml"
    spath.write_text(yaml.safe_dump({"name": f"{cfg0['split']}-nested-{key}{held}", "num_classes": ds.num_classes,
                                     "seen": sel["pseudo_seen"], "unseen": sel["pseudo_unseen"]}))

    def text_file(src: str, i: int) -> str:
        f = work / f"text{i}.json"
        f.write_text(json.dumps(load_class_texts(cfg0["dataset"], src, data_root)))
        return str(f)

    t = cfg0["text"]
    if t.get("train_sources") or t.get("part_sources"):
        raise SystemExit(f"{base_run}: text.train_sources / part_sources are not replayed by this script")
    texts = {"text.source": text_file(t["source"], 0)}
    if t.get("segment_sources"):
        texts["text.segment_sources"] = "[" + ", ".join(text_file(s, i + 1)
                                                       for i, s in enumerate(t["segment_sources"])) + "]"
    return dpath, spath, texts, cfg0


def _diff(a, b, prefix=""):
    """Keys whose values differ between two nested config dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out


def run_one(a) -> int:
    import torch

    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train

    data_root = os.environ.get("ZEROSKEL_DATA")
    base_run = a.base_run.resolve()
    work = a.out / "problems" / base_run.name
    dpath, spath, texts, cfg0 = build_problem(base_run, work, data_root)
    torch.set_num_threads(a.threads)
    t = cfg0["train"]
    # the library-default protocol of the base run's preset on the problem; the base run's
    # own pilot settings (heldout_group, no calibration hold-out, no refit) are not carried over
    overrides = ["data.pipeline=none", "data.partition=custom", f"train.epochs={t['epochs']}",
                 f"validation.every={t['epochs']}", f"train.threads={a.threads}",
                 *[f"{k}={v}" for k, v in texts.items()], *a.set]
    cfg = build_config("pgfa", dataset=str(dpath), split=str(spath), seed=int(cfg0["seed"]),
                       preset=cfg0.get("preset"), overrides=overrides)
    changed = _diff(cfg0, cfg)
    print("config differences from the base run:\n  " + "\n  ".join(changed))
    t0 = time.time()
    run_dir = train(cfg, a.out / "runs", data_root=data_root)
    m = json.loads((run_dir / "metrics.json").read_text())
    rec = {"base_run": str(base_run), "run_dir": str(run_dir), "tag": a.tag, "overrides": a.set,
           "config_differences": changed, PLAIN: m["zsl_top1"], STEP: m.get("zsl_top1_aligned"),
           # calibrated GZSL too: a protocol change can move it without moving ZSL (the fine-tune did)
           "gzsl_calibrated": {k: m.get("gzsl_calibrated", {}).get(k) for k in ("available", "S", "U", "H", "gamma")},
           "final_model": m.get("final_model"), "train_seconds": m["train_seconds"],
           "wall_seconds": time.time() - t0}
    (a.out / f"{a.tag}-{base_run.name}.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps({k: rec[k] for k in (PLAIN, STEP, "final_model", "wall_seconds")}))
    return 0


def collect(folder: Path, out: Path) -> int:
    """``{<folder name>/<base run name>/stage1_last.pt: {none, preset step}}`` for compare_pilots.py
    (the checkpoint name pairs these scores with the pilots' last-epoch models)."""
    rows = {}
    for f in sorted(folder.glob("*.json")):
        rec = json.loads(f.read_text())
        rows[f"{folder.name}/{Path(rec['base_run']).name}/stage1_last.pt"] = {PLAIN: rec[PLAIN], STEP: rec[STEP]}
    if not rows:
        raise SystemExit(f"no records in {folder}")
    out.write_text(json.dumps(rows, indent=1))
    print(f"{len(rows)} problems -> {out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base_run", type=Path, nargs="?", help="a pilot's run folder (config.yaml, selection.json)")
    p.add_argument("--tag", default="nested")
    p.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/out/pgfa_<tag>_nested")
    p.add_argument("--collect", type=Path, default=None, help="a folder of records to gather (with --json)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZEROSKEL_QUIET", "1")
    if a.collect:
        if not a.json:
            p.error("--collect needs --json")
        return collect(a.collect, a.json)
    if a.base_run is None:
        p.error("give a pilot run folder, or --collect")
    a.out = a.out or Path(f"benchmarks/out/pgfa_{a.tag}_nested")
    return run_one(a)


if __name__ == "__main__":
    sys.exit(main())
