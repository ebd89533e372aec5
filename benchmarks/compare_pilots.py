"""Paired comparison of two pilot sets scored by ``select_alignment.py --out``.

Each JSON maps ``<pilot folder>/<run name>/<checkpoint>`` to validation scores per
variant. Two models are paired when their run name (method, dataset, split, seed: the same
validation problem) and checkpoint agree; the pilot folder may differ. Prints the mean of
each set and the paired difference (candidate - baseline) for plain scoring and the
preset's test-time step, over all pairs, per dataset and per split, so a rule written before the
pilots can be applied as it was written.

    python benchmarks/compare_pilots.py benchmarks/out/select_scoring_base17.json \\
        benchmarks/out/select_scoring_ltemp.json --checkpoint stage1_last.pt [--decide]
    python benchmarks/compare_pilots.py benchmarks/out/select_scoring_base19.json --step-gain \\
        --checkpoint stage1_last.pt      # one set: how much the step gains over plain
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from select_alignment import paired_cell

SCORES = {"plain": "none", "preset step": "test centring + balanced alignment (center: true)"}


def pair_rows(base: dict, cand: dict, checkpoint: str | None) -> list[tuple[str, dict, dict]]:
    """(run name, baseline scores, candidate scores) for every model present in both."""
    def index(rows: dict) -> dict:
        out = {}
        for key, scores in rows.items():
            run, ck = key.split("/")[-2:]
            if checkpoint is None or ck == checkpoint:
                out[(run, ck)] = scores
        return out
    b, c = index(base), index(cand)
    return [(run, b[(run, ck)], c[(run, ck)]) for run, ck in sorted(set(b) & set(c))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("baseline", type=Path)
    p.add_argument("candidate", type=Path, nargs="?",
                   help="omit with --step-gain: then the step's gain over plain within the baseline set")
    p.add_argument("--checkpoint", default=None, help="only this checkpoint (e.g. stage1_last.pt)")
    p.add_argument("--decide", action="store_true",
                   help="also apply the studies' standard rule over all pairs: adopt only if the preset "
                        "step's mean gain exceeds one paired se and the plain mean difference is >= 0")
    p.add_argument("--step-gain", action="store_true",
                   help="one set: the preset step's score minus plain, per model, grouped the same way")
    a = p.parse_args(argv)
    if a.step_gain:
        if a.candidate is not None or a.decide:
            p.error("--step-gain takes one scored set and no --decide")
        return step_gain(json.loads(a.baseline.read_text()), a.checkpoint)
    if a.candidate is None:
        p.error("give a candidate set (or --step-gain for one set)")
    pairs = pair_rows(json.loads(a.baseline.read_text()), json.loads(a.candidate.read_text()), a.checkpoint)
    if not pairs:
        raise SystemExit(f"no model of {a.baseline} has a partner in {a.candidate}")
    groups = grouped(pairs)
    print(f"{len(pairs)} paired models; validation top-1 %, baseline -> candidate; "
          "difference: mean (se; better/worse)\n")
    print("| models | " + " | ".join(f"{s} | {s} difference" for s in SCORES) + " |")
    print("|---|" + "---|---|" * len(SCORES))
    for name, ps in groups.items():
        cells = []
        for variant in SCORES.values():
            xb = np.array([b[variant] for _, b, _ in ps])
            xc = np.array([c[variant] for _, _, c in ps])
            cells += [f"{xb.mean():.2f} -> {xc.mean():.2f}", paired_cell(xc - xb)]
        print(f"| {name} ({len(ps)}) | " + " | ".join(cells) + " |")
    if a.decide:
        print("\n" + decide(pairs))
    return 0


def grouped(rows: list[tuple]) -> dict[str, list]:
    """``{"all", <dataset>..., "<dataset> <split>"...: rows}`` for rows whose first item is a run
    name ``pgfa-<dataset>-<split>-seedN``; splits after the datasets, since a per-dataset mean
    can hide a split."""
    groups: dict[str, list] = {"all": rows}
    per_split: dict[str, list] = {}
    for row in rows:
        run = row[0]
        dataset, split = run.split("-")[1], "-".join(run.split("-")[2:-1])
        groups.setdefault(dataset, []).append(row)
        per_split.setdefault(f"{dataset} {split}", []).append(row)
    groups.update(per_split)
    return groups


def step_gain(rows: dict, checkpoint: str | None) -> int:
    """Print plain, step and step - plain (paired over models) per group of one scored set."""
    plain_v, step_v = SCORES["plain"], SCORES["preset step"]
    models = [(key.split("/")[-2], v) for key, v in sorted(rows.items())
              if checkpoint is None or key.split("/")[-1] == checkpoint]
    if not models:
        raise SystemExit(f"no model with checkpoint {checkpoint}")
    print(f"{len(models)} models; validation top-1 %; step - plain: mean (se; better/worse)\n")
    print("| models | plain | preset step | step - plain |")
    print("|---|---|---|---|")
    for name, ms in grouped(models).items():
        xp = np.array([v[plain_v] for _, v in ms])
        xs = np.array([v[step_v] for _, v in ms])
        print(f"| {name} ({len(ms)}) | {xp.mean():.2f} | {xs.mean():.2f} | {paired_cell(xs - xp)} |")
    return 0


def decide(pairs: list[tuple[str, dict, dict]]) -> str:
    """The standard rule of the preset studies (benchmarks/RESULTS.md), applied to all pairs."""
    diff = {name: np.array([c[v] - b[v] for _, b, c in pairs]) for name, v in SCORES.items()}
    step, plain = diff["preset step"], diff["plain"]
    se = step.std(ddof=1) / np.sqrt(len(step)) if len(step) > 1 else float("nan")
    gain_ok = bool(step.mean() > se)  # False for a single pair (se nan): one problem decides nothing
    plain_ok = bool(plain.mean() >= 0)
    verdict = "ADOPT" if gain_ok and plain_ok else "REJECT"
    return (f"rule: {verdict}: preset step {step.mean():+.2f} vs one se {se:.2f} "
            f"({'met' if gain_ok else 'not met'}); plain {plain.mean():+.2f} >= 0 "
            f"({'met' if plain_ok else 'not met'})")


if __name__ == "__main__":
    sys.exit(main())
