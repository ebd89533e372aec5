"""Calibrated GZSL of a candidate recipe's whole-protocol replays against a baseline.

``pilot_pgfa_nested.py`` records each replayed problem's calibrated GZSL (S / U / H with the
gamma of the run's own stage 1). The baseline is either another such folder (the baseline
recipe replayed on the same problems) or a ``compare_refit_gzsl.py --json`` file (its
``--arm``, e.g. ``scratch``: the preset's from-scratch final model with the preset's own
stage-1 gamma). This pairs them by problem and prints the H difference (candidate - baseline)
over all problems, per dataset and per split::

    python benchmarks/compare_nested_gzsl.py benchmarks/out/warm_gzsl.json \\
        benchmarks/out/pgfa_compact_nested [--arm scratch]
    python benchmarks/compare_nested_gzsl.py benchmarks/out/pgfa_c32f_nested benchmarks/out/pgfa_c50f_nested

A problem missing from either side is an error, not a smaller mean.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from compare_pilots import grouped
from select_alignment import paired_cell


def nested_scores(folder: Path) -> dict[str, dict]:
    """{problem (base run name): calibrated S / U / H} of a pilot_pgfa_nested.py folder."""
    out = {}
    for f in sorted(folder.glob("*.json")):
        rec = json.loads(f.read_text())
        g = rec.get("gzsl_calibrated") or {}
        if not g.get("available", g.get("H") is not None):
            raise SystemExit(f"{f}: no calibrated GZSL recorded (run with validation.calibration_fraction > 0)")
        out[Path(rec["base_run"]).name] = {k: g[k] for k in ("S", "U", "H")}
    return out


def pairs(baseline: Path, nested: Path, arm: str, subset: bool = False) -> list[tuple[str, dict, dict]]:
    """(problem, baseline S/U/H, candidate S/U/H) for every problem, sorted by name.

    ``subset``: the candidate may cover only some of the baseline's problems (a one-dataset
    candidate); pairs are then its problems. A candidate problem missing from the baseline is
    always an error.
    """
    base = (nested_scores(baseline) if baseline.is_dir()
            else {r["problem"]: r[arm] for r in json.loads(baseline.read_text())})
    cand = nested_scores(nested)
    if subset and set(cand) <= set(base):
        base = {k: v for k, v in base.items() if k in cand}
    if set(base) != set(cand):
        raise SystemExit(f"problems differ: only in the baseline {sorted(set(base) - set(cand))}, "
                         f"only in {nested} {sorted(set(cand) - set(base))}")
    return [(p, base[p], cand[p]) for p in sorted(base)]


def summarise(rows: list[tuple[str, dict, dict]]) -> str:
    lines = ["| problems | n | baseline S / U / H | candidate S / U / H | H difference (se; better/worse) |",
             "|---|---|---|---|---|"]
    for name, group in grouped(rows).items():
        d = np.array([c["H"] - b["H"] for _, b, c in group])
        mean = [" / ".join(f"{np.mean([r[i][k] for r in group]):.2f}" for k in ("S", "U", "H")) for i in (1, 2)]
        lines.append(f"| {name} | {len(group)} | {mean[0]} | {mean[1]} | {paired_cell(d)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("baseline", type=Path, help="a pilot_pgfa_nested.py folder, or a compare_refit_gzsl.py --json file")
    p.add_argument("nested", type=Path, help="a pilot_pgfa_nested.py output folder of the candidate")
    p.add_argument("--arm", default="scratch", help="with a JSON baseline: its arm to compare against")
    p.add_argument("--subset", action="store_true",
                   help="pair only the candidate's problems (it may cover part of the baseline's)")
    a = p.parse_args(argv)
    print(summarise(pairs(a.baseline, a.nested, a.arm, a.subset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
