"""Dataset summaries for ``zeroskel inspect``: counts per class and partition, lengths."""
from __future__ import annotations

import numpy as np

from .dataset import SkeletonDataset


def describe(ds: SkeletonDataset) -> dict:
    """JSON-able summary: sample/class counts, per-partition per-class counts, length stats,
    persons present, coordinate range."""
    counts = ds.class_counts()
    parts = {}
    for name in ds.partitions:
        tr, te = ds.partition(name, "train"), ds.partition(name, "test")
        parts[name] = {
            "train": int(len(tr)), "test": int(len(te)),
            "train_per_class": ds.class_counts(tr).tolist(),
            "test_per_class": ds.class_counts(te).tolist(),
        }
    lengths = ds.lengths
    persons = None
    if ds.data.shape[-1] > 1 and len(ds):
        # a person is present if any coordinate of it is non-zero; sampled for big caches
        idx = np.linspace(0, len(ds) - 1, min(len(ds), 2000)).astype(int)
        present = np.abs(np.asarray(ds.data[idx])).sum(axis=(1, 2, 3)) > 0
        persons = {str(k): int(v) for k, v in zip(*np.unique(present.sum(1), return_counts=True))}
        persons["sampled"] = int(len(idx))
    return {
        "name": ds.name, "layout": ds.layout, "samples": int(len(ds)), "classes": ds.num_classes,
        "shape": list(ds.data.shape),
        "per_class": {n: int(c) for n, c in zip(ds.class_names, counts)},
        "empty_classes": [n for n, c in zip(ds.class_names, counts) if c == 0],
        "partitions": parts,
        "length": {"min": int(lengths.min()), "mean": float(lengths.mean()),
                   "median": float(np.median(lengths)), "max": int(lengths.max())} if len(ds) else {},
        "persons_present": persons,
        "skipped": list(ds.info.get("skipped", [])),
    }


def format_summary(s: dict) -> str:
    """Human-readable table of :func:`describe`'s output."""
    lines = [f"{s['name']}: {s['samples']} samples, {s['classes']} classes, layout {s['layout']}, "
             f"array {tuple(s['shape'])}"]
    if s["length"]:
        L = s["length"]
        lines.append(f"valid length: min {L['min']}, median {L['median']:.0f}, mean {L['mean']:.1f}, max {L['max']}")
    if s["persons_present"]:
        lines.append(f"persons present (of {s['persons_present']['sampled']} sampled): "
                     + ", ".join(f"{k}: {v}" for k, v in s["persons_present"].items() if k != "sampled"))
    for name, p in s["partitions"].items():
        lines.append(f"partition {name}: train {p['train']}, test {p['test']}")
    if s["skipped"]:
        lines.append(f"skipped while reading: {len(s['skipped'])} samples (see --json for names)")
    if s["empty_classes"]:
        lines.append(f"classes with no samples: {', '.join(s['empty_classes'])}")
    parts = list(s["partitions"])
    head = f"{'id':>3}  {'class':<34}{'total':>6}" + "".join(f"{p + ' tr/te':>16}" for p in parts)
    lines += ["", head, "-" * len(head)]
    for i, (n, c) in enumerate(s["per_class"].items()):
        row = f"{i:>3}  {n[:33]:<34}{c:>6}"
        for p in parts:
            pp = s["partitions"][p]
            row += f"{str(pp['train_per_class'][i]) + '/' + str(pp['test_per_class'][i]):>16}"
        lines.append(row)
    return "\n".join(lines)
