"""Does a seed ensemble of PGFA models generalise better? Judged on held-out training subjects only.

Members are pilot runs (``benchmarks/pilot_pgfa_small.py``) of one split that differ only
in their training seed and share the validation hold-out (``validation.mode=heldout_seen``,
``validation.heldout_group=subject``, the same ``validation.seed``): every member's stage 1
never saw the held-out subject(s). For each stage-1 checkpoint kind (``stage1_last.pt`` =
the fixed-budget model, as the benchmark sweep trains; ``stage1_best.pt``) the script prints
seen-class top-1 (cosine to the seen classes' text anchors) on the held-out subject's
samples for every member, their mean, and the ensemble (mean of the members' cosines,
:class:`zeroskel.methods.pgfa.PGFAEnsemble`), then the mean ± std over every subset of each
ensemble size (how many members are worth training). No test-partition sample is read.

    ZEROSKEL_DATA=/work/shared/data python benchmarks/select_ensemble.py RUN_DIR RUN_DIR RUN_DIR
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np


def heldout_subject_data(run_dir: Path, data_root):
    """Preprocessed samples, labels and seen classes of a run's held-out group (train partition)."""
    import yaml

    from zeroskel.data.splits import get_split
    from zeroskel.engine.data import load_prepared
    from zeroskel.methods.pgfa.training import training_partition, validation_partition

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    v = cfg["validation"]
    if v["mode"] != "heldout_seen" or not v.get("heldout_group"):
        raise SystemExit(f"{run_dir}: needs validation.mode=heldout_seen with a heldout_group")
    ds, part = load_prepared(cfg, data_root, progress=False)
    split = get_split(cfg["dataset"], cfg["split"])
    vp = validation_partition(cfg, ds, split, training_partition(cfg, ds, part))  # the run's own stage-1 sets
    idx, seen, held = vp["val"], split.seen_array, vp["heldout_group"]["value"]
    return np.asarray(ds.data[idx], np.float32), ds.labels[idx], seen, held


def member(run_dir: Path, checkpoint: str):
    import yaml

    from zeroskel.engine.trainer import load_checkpoint
    from zeroskel.methods.pgfa import PGFAClassifier, build_model

    final = PGFAClassifier.load(run_dir / "final.pt")  # card + text bank of the run
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    model = build_model(cfg, final.card["layout"], int(final.card["num_persons"]), final.model.text_dim)
    model.load_state_dict(load_checkpoint(run_dir / checkpoint)["model"])
    return PGFAClassifier(model, final.text, final.card)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="pilot run directories (one split, different seeds)")
    p.add_argument("--data-root", default=os.environ.get("ZEROSKEL_DATA"))
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from zeroskel.methods.pgfa import PGFAEnsemble

    x, y, seen, held = heldout_subject_data(a.runs[0], a.data_root)
    for rd in a.runs[1:]:
        if heldout_subject_data(rd, a.data_root)[3] != held:
            raise SystemExit(f"{rd} holds out {held!r}? no: members must share the held-out group")
    out = {"held_out": held, "samples": int(len(y)), "classes": int(len(seen)), "runs": [str(r) for r in a.runs]}
    print(f"held-out {held}: {len(y)} samples of {len(seen)} seen classes\n")
    print("| checkpoint | " + " | ".join(r.name for r in a.runs) + " | member mean | ensemble |")
    print("|---|" + "---|" * (len(a.runs) + 2))
    sizes = {}
    for ck in ("stage1_last.pt", "stage1_best.pt"):
        clfs = [member(rd, ck) for rd in a.runs]
        feats = [c.features(x) for c in clfs]

        def acc(idx) -> float:  # ensemble of members idx, from their cached features
            ens = PGFAEnsemble([clfs[i] for i in idx])
            return float(100 * np.mean(seen[ens.score(ens.join([feats[i] for i in idx]), seen).argmax(1)] == y))

        accs = [acc([i]) for i in range(len(clfs))]
        ens = acc(range(len(clfs)))
        # ensemble size: mean (std) over every subset of that size of the given runs
        sizes[ck] = {k: [acc(c) for c in itertools.combinations(range(len(clfs)), k)]
                     for k in range(1, len(clfs) + 1)}
        out[ck] = {"members": accs, "member_mean": float(np.mean(accs)), "ensemble": ens,
                   "by_size": {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "subsets": len(v)}
                               for k, v in sizes[ck].items()}}
        print(f"| {ck} | " + " | ".join(f"{v:.1f}" for v in accs) + f" | {np.mean(accs):.1f} | {ens:.1f} |")
    print("\n| checkpoint | " + " | ".join(f"{k} member{'s' if k > 1 else ''}" for k in sizes["stage1_last.pt"])
          + " |\n|---|" + "---|" * len(a.runs))
    for ck, by in sizes.items():
        print(f"| {ck} | " + " | ".join(f"{np.mean(v):.1f} ± {np.std(v):.1f}" for v in by.values()) + " |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
