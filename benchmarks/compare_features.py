"""Compare the quality of Flora-layout feature files with seen-class probes.

For every file: a linear probe (multinomial logistic regression on standardised features,
full-batch L-BFGS, fixed L2) and a nearest-class-mean classifier (cosine to the per-class
mean), both fitted on ``train_data`` (seen classes, train partition) and scored on the
seen-class samples of ``gzsl_data`` (seen classes, test partition). No hyper-parameter is
chosen on the test samples. Usage::

    python benchmarks/compare_features.py A.npz B.npz [--l2 1e-3]

prints one markdown row per file (and ``--json`` writes the numbers).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def probe(path: str, l2: float = 1e-3, seed: int = 0) -> dict:
    from zeroskel.data.features import load_features

    fs = load_features(path)
    seen = fs.seen_classes
    te = np.isin(fs.gzsl_y, seen)
    xtr, ytr = fs.train_x, np.searchsorted(seen, fs.train_y)
    xte, yte = fs.gzsl_x[te], np.searchsorted(seen, fs.gzsl_y[te])
    mu, sd = xtr.mean(0), np.maximum(xtr.std(0), 1e-6)
    a = torch.from_numpy((xtr - mu) / sd).double()
    b = torch.from_numpy((xte - mu) / sd).double()
    torch.manual_seed(seed)
    w = torch.zeros(a.shape[1], len(seen), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(seen), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=500, line_search_fn="strong_wolfe")
    y = torch.from_numpy(ytr)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(a @ w + bias, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        lin = float(((b @ w + bias).argmax(1).numpy() == yte).mean() * 100)
        lin_train = float(((a @ w + bias).argmax(1).numpy() == ytr).mean() * 100)
    cm = np.stack([xtr[ytr == k].mean(0) for k in range(len(seen))])
    cm /= np.maximum(np.linalg.norm(cm, axis=1, keepdims=True), 1e-12)
    xn = xte / np.maximum(np.linalg.norm(xte, axis=1, keepdims=True), 1e-12)
    ncm = float(((xn @ cm.T).argmax(1) == yte).mean() * 100)
    return {"file": str(path), "dim": fs.feature_dim, "n_train": len(ytr), "n_test_seen": len(yte),
            "linear_probe_test_seen": lin, "linear_probe_train": lin_train, "ncm_test_seen": ncm,
            "l2": l2}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--l2", type=float, default=1e-3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [probe(f, args.l2) for f in args.files]
    print("| file | D | train | test (seen) | linear probe | NCM |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {Path(r['file']).name} | {r['dim']} | {r['n_train']} | {r['n_test_seen']} | "
              f"{r['linear_probe_test_seen']:.2f} | {r['ncm_test_seen']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
