"""Calibrated GZSL of a candidate recipe's whole-protocol replays against a scored baseline arm.

``pilot_pgfa_nested.py`` records each replayed problem's calibrated GZSL (S / U / H with the
gamma of the candidate's own stage 1). ``compare_refit_gzsl.py --json`` holds the baseline's
scores of the same problems (its ``scratch`` arm: the preset's from-scratch final model with
the preset's own stage-1 gamma). This pairs them by problem and prints the H difference
(candidate - baseline) over all problems, per dataset and per split::

    python benchmarks/compare_nested_gzsl.py benchmarks/out/warm_gzsl.json \\
        benchmarks/out/pgfa_compact_nested [--arm scratch]

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


def pairs(baseline: list[dict], nested: Path, arm: str) -> list[tuple[str, dict, dict]]:
    """(problem, baseline S/U/H, candidate S/U/H) for every problem, sorted by name."""
    base = {r["problem"]: r[arm] for r in baseline}
    cand = {}
    for f in sorted(nested.glob("*.json")):
        rec = json.loads(f.read_text())
        g = rec.get("gzsl_calibrated") or {}
        if not g.get("available", g.get("H") is not None):
            raise SystemExit(f"{f}: no calibrated GZSL recorded (run with validation.calibration_fraction > 0)")
        cand[Path(rec["base_run"]).name] = {k: g[k] for k in ("S", "U", "H")}
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
    p.add_argument("baseline", type=Path, help="a compare_refit_gzsl.py --json file")
    p.add_argument("nested", type=Path, help="a pilot_pgfa_nested.py output folder of the candidate")
    p.add_argument("--arm", default="scratch", help="the baseline file's arm to compare against")
    a = p.parse_args(argv)
    print(summarise(pairs(json.loads(a.baseline.read_text()), a.nested, a.arm)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
