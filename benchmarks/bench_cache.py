"""Cost of :func:`zeroskel.data.prepare`: first build versus reuse of the prepared cache.

    python benchmarks/bench_cache.py [--datasets utd_mhad nw_ucla] [--pipeline pgfa50]
        [--repeats 5] [--threads 1] [--out bench_cache.json]

For each dataset under ``$ZEROSKEL_DATA``: ``--repeats`` builds into a fresh temporary
cache (read every raw file, preprocess, write) and ``--repeats`` reuses of that cache
(fingerprint the raw files, memory-map the arrays). Reported: median / min / max seconds of
each and the ratio of the medians. The reuse cost is dominated by fingerprinting the source
files (one ``stat`` each), so it grows with the number of files, not their size. Wall times
on a shared machine are upper bounds; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch


def _stats(ts) -> dict:
    ts = np.asarray(ts)
    return {"median_s": float(np.median(ts)), "min_s": float(ts.min()), "max_s": float(ts.max())}


def bench(dataset: str, pipeline: str, repeats: int) -> dict:
    from zeroskel.data.cache import prepare

    builds, reuses = [], []
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            ds = prepare(dataset, pipeline, cache_dir=cache, progress=False)
            builds.append(time.perf_counter() - t0)
            if i == 0:  # all reuses against the first cache
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    again = prepare(dataset, pipeline, cache_dir=cache, progress=False)
                    np.asarray(again.data[0])  # touch the map so a lazy open is not free
                    reuses.append(time.perf_counter() - t0)
    b, r = _stats(builds), _stats(reuses)
    return {"dataset": dataset, "pipeline": pipeline, "shape": list(ds.data.shape),
            "files": ds.info["prepared_from"]["files"], "build": b, "reuse": r,
            "build_over_reuse": b["median_s"] / r["median_s"]}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["utd_mhad", "nw_ucla"])
    ap.add_argument("--pipeline", default="pgfa50")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    if not os.environ.get("ZEROSKEL_DATA"):
        ap.error("set ZEROSKEL_DATA to the data root (see the README)")
    torch.set_num_threads(args.threads)
    results = []
    for name in args.datasets:
        res = bench(name, args.pipeline, args.repeats)
        results.append(res)
        print(f"{name:10s} {res['files']:5d} files {str(res['shape']):24s} "
              f"build {res['build']['median_s']:.3f} s  reuse {res['reuse']['median_s']:.3f} s  "
              f"x{res['build_over_reuse']:.1f}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.2f}, torch threads {args.threads}")
    if args.out:
        with open(args.out, "x") as f:  # never overwrite an earlier result
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
