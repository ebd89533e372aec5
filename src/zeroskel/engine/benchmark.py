"""Benchmark runner: one end-to-end method over a suite of published splits x seeds.

Every (dataset, split, seed) job trains an ordinary run (:func:`zeroskel.engine.runs.train`,
run directories under ``OUT/runs``) and then writes one small record, ``OUT/<dataset>-<split>-seed<k>.json``.
A finished job is never run again, so an interrupted benchmark continues where it stopped, and
several processes can share one ``OUT`` (``shard=(i, n)``, plus lock files so that two workers
never take the same job). ``OUT/benchmark.json`` fixes the method, suite, config (and a config file's
content) and overrides at the first call; a later call with other settings is refused rather than mixing two
configurations in one table. :func:`summarize` turns the records into a Markdown table: mean and
sample std over seeds of ZSL top-1 (plain and with the test-time step) and of calibrated GZSL,
next to the published numbers the suite has.

Feature-based methods (Flora, SMIE, DeViSE, CADA-VAE) run on feature files instead: for a
pair (dataset, ``purls-A/B``) the file ``FEATURES/<dataset>_ru<B>.npz`` (the Flora / PURLS
naming of the shipped files) with the token bank ``FEATURES/<dataset>_text_mpnet_L5.npy``,
each job through :func:`zeroskel.eval.protocol.evaluate_method` (held-out selection and GZSL
calibration, never the test set).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .._json import dumps
from ..errors import ConfigError, ZeroskelError, unknown_name

#: suite name -> the (dataset, split) pairs it runs, in table order
SUITES: dict[str, tuple[tuple[str, str], ...]] = {
    # the PURLS small-dataset benchmark (UTD-MHAD cross-subject, NW-UCLA cross-view)
    "purls-small": (("utd_mhad", "purls-22/5"), ("utd_mhad", "purls-18/9"), ("utd_mhad", "purls-14/13"),
                    ("nw_ucla", "purls-8/2"), ("nw_ucla", "purls-5/5")),
    # the SynSE splits of NTU RGB+D 60 / 120 (PGFA's setting 2)
    "synse-ntu": (("ntu60", "synse-55/5"), ("ntu60", "synse-48/12"),
                  ("ntu120", "synse-110/10"), ("ntu120", "synse-96/24")),
    # SMIE's three random splits per dataset (PGFA's setting 1; papers report their mean)
    "smie-ntu60": tuple(("ntu60", f"smie-{i}") for i in (1, 2, 3)),
    "smie-ntu120": tuple(("ntu120", f"smie-{i}") for i in (1, 2, 3)),
    "smie-pku_mmd1": tuple(("pku_mmd1", f"smie-{i}") for i in (1, 2, 3)),
}

#: suite -> (source, {(dataset, split): ZSL top-1 %}): published numbers, as listed in the data
#: README (PURLS supplementary Table 8). Only numbers checked against their source are here.
PUBLISHED: dict[str, tuple[str, dict[tuple[str, str], float]]] = {
    "purls-small": ("PURLS (CVPR 2024, suppl. Table 8)", {
        ("utd_mhad", "purls-22/5"): 57.50, ("utd_mhad", "purls-18/9"): 31.71,
        ("utd_mhad", "purls-14/13"): 19.23, ("nw_ucla", "purls-8/2"): 75.84, ("nw_ucla", "purls-5/5"): 49.47}),
}

#: the Flora reference code on the shipped feature files (features README): the best of its
#: test evaluations, so an extra to compare with, not an estimate
FLORA_REFERENCE_CODE: dict[str, float] = {"utd_mhad_ru5": 27.50, "utd_mhad_ru9": 13.19, "utd_mhad_ru13": 25.00,
                                          "nw_ucla_ru2": 51.55, "nw_ucla_ru5": 40.25}

END_TO_END = ("pgfa",)
SETTINGS_FILE = "benchmark.json"


def feature_file(dataset: str, split: str) -> str:
    """Stem of the feature file of a PURLS pair: (``utd_mhad``, ``purls-22/5``) -> ``utd_mhad_ru5``."""
    if not split.startswith("purls-") or "/" not in split:
        raise ConfigError(f"split {split!r}: feature files exist for the PURLS splits (purls-A/B) only; "
                          "use suite purls-small with a feature method")
    return f"{dataset}_ru{int(split.rsplit('/', 1)[1])}"


def _methods() -> tuple[str, ...]:
    from ..methods import METHODS as FEATURE_METHODS
    return END_TO_END + tuple(sorted(FEATURE_METHODS))


@dataclass(frozen=True)
class Job:
    dataset: str
    split: str
    seed: int

    def record(self, out: Path) -> Path:
        return Path(out) / f"{self.dataset}-{self.split.replace('/', '_')}-seed{self.seed}.json"


def plan(suite: str, seeds: Sequence[int], only: Iterable[str] | None = None) -> list[Job]:
    """The jobs of ``suite`` for ``seeds``, seed-major (if a benchmark is cut short, every
    split still has its first seeds). ``only``: ``dataset:split`` items to keep."""
    if suite not in SUITES:
        raise unknown_name("benchmark suite", suite, SUITES)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in seeds):
        raise ConfigError(f"seeds (--seeds) must be a non-empty list of integers, got {list(seeds)!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds (--seeds) must not repeat, got {list(seeds)!r}")
    if any(s < 0 for s in seeds):
        raise ConfigError(f"seeds (--seeds) must be integers >= 0, got {list(seeds)!r}")
    pairs = SUITES[suite]
    if only:
        names = {f"{d}:{s}" for d, s in pairs}
        bad = [o for o in only if o not in names]
        if bad:
            raise ConfigError(f"--only {bad[0]!r} is not in suite {suite!r}; valid: {', '.join(sorted(names))}")
        pairs = tuple(p for p in pairs if f"{p[0]}:{p[1]}" in set(only))
    return [Job(d, s, int(seed)) for seed in seeds for d, s in pairs]


def _read_settings(path: Path) -> dict:
    """A folder's ``benchmark.json``; a damaged one is a :class:`ConfigError` naming it."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: unreadable benchmark settings ({e}); use another --out") from None
    if not isinstance(settings, dict) or not {"method", "suite", "config", "overrides"} <= set(settings):
        raise ConfigError(f"{path}: not a benchmark settings file (needs method, suite, config, overrides); "
                          "use another --out")
    return settings


def _check_settings(out: Path, settings: dict) -> bool:
    """Write ``benchmark.json`` on first use (True: this call wrote it); refuse a later call with
    other settings."""
    path = out / SETTINGS_FILE
    if path.is_file():
        have = _read_settings(path)
        # torch_threads, config_sha256, device: folders written before they were recorded carry no value,
        # and are not refused for it
        diff = sorted(k for k in settings if have.get(k) != settings[k]
                      and not (k in ("torch_threads", "config_sha256", "device") and k not in have))
        if diff:
            edited = " (the config file was edited since)" if diff == ["config_sha256"] else ""
            raise ConfigError(f"{out} holds a benchmark with other settings ({', '.join(diff)}: "
                              f"{', '.join(f'{have.get(k)!r} there, {settings[k]!r} now' for k in diff)})"
                              f"{edited}; use another --out so that no run is mixed with another configuration")
        return False
    # Shards started together must agree on one file: each writes its own temporary file and
    # links it into place, which fails for all but the first; the others then compare with it.
    tmp = out / f".{SETTINGS_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(settings, indent=1), encoding="utf-8")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return _check_settings(out, settings)
    except OSError:  # a filesystem without hard links
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _untie(out: Path, existed: bool) -> None:
    """Remove ``benchmark.json`` (and the folders this call made) when nothing was run under it:
    a config error that only training finds (a model argument, ``train.epochs=0``) would
    otherwise tie ``out`` to settings that cannot run, and the corrected call be refused."""
    if any(out.glob("*-seed*.json")) or any(p for p in (out / "runs").glob("*")):
        return
    (out / SETTINGS_FILE).unlink(missing_ok=True)
    for d in (out / "runs", *(() if existed else (out,))):
        try:
            d.rmdir()
        except OSError:  # absent, or not empty
            pass


def _unfinished_run(runs: Path, method: str, cfg: dict) -> Path | None:
    """The run folder of an interrupted earlier attempt at this job (same name, no metrics.json,
    the same config), if any: the job's lock was released or removed, so nobody else runs it."""
    from .runs import read_run_config, run_name

    name = run_name(method, cfg["dataset"], cfg["split"], cfg["seed"])
    for d in sorted(runs.glob(f"{name}*")) if runs.is_dir() else []:
        if d.name != name and not d.name[len(name):].lstrip("-").isdigit():
            continue
        if (d / "metrics.json").is_file() or not any(d.glob("*.pt")):
            continue
        try:
            if read_run_config(d) == cfg:
                return d
        except ConfigError:
            continue
    return None


def _check_feature_file(features: Path, dataset: str, split: str) -> None:
    """:class:`ConfigError` unless the feature file named for (dataset, split) holds that split's
    unseen classes: the table would otherwise report another split's file under this one's name."""
    from ..data.features import load_features, load_token_bank
    from ..data.registry import get_spec
    from ..data.splits import get_split

    path = features / f"{feature_file(dataset, split)}.npz"
    have = np.sort(load_features(path).unseen_classes)
    want = np.sort(get_split(dataset, split).unseen_array)
    if not np.array_equal(have, want):
        raise ConfigError(f"{path}: its unseen classes {have.tolist()} are not those of {dataset} {split} "
                          f"({want.tolist()}); is the file misnamed?")
    bank = features / f"{dataset}_text_mpnet_L5.npy"
    n_text, n_data = load_token_bank(bank).num_classes, get_spec(dataset).num_classes
    if n_text != n_data:  # checked here, before benchmark.json ties the folder to this call
        raise ConfigError(f"{bank}: texts for {n_text} classes, {dataset} has {n_data}; is it another "
                          "dataset's text bank?")


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_feature_digests(out: Path, digests: dict[str, str]) -> None:
    """:class:`ConfigError` if a finished job in ``out`` used a feature file or text bank whose
    content differs from ``digests`` (file name -> sha256) now: ``benchmark.json`` names the
    folder only, so files re-extracted into it would be tabled with the earlier ones."""
    for rec_path in sorted(out.glob("*-seed*.json")) if out.is_dir() else []:
        try:
            rec = json.loads(rec_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        for name, have in (rec.get("sha256") or {}).items() if isinstance(rec, dict) else ():
            if name in digests and digests[name] != have:
                raise ConfigError(f"{name} in --features has changed since {rec_path.name} was computed from "
                                  f"it (sha256 {have[:12]}... there, {digests[name][:12]}... now); use another "
                                  "--out so that no result is mixed with results of other features")


def _feature_record(job: Job, method: str, features: Path, config: str | None, overrides: Sequence[str],
                    device: str | None, digests: dict[str, str]) -> dict:
    """Fit and score one feature method on one file and seed (the protocol of
    ``zeroskel eval-features``); the record keeps ZSL, GZSL S / U / H per rule and the choices."""
    import torch

    from ..data.features import load_features, load_token_bank
    from ..eval.protocol import evaluate_named

    stem = feature_file(job.dataset, job.split)
    fs = load_features(features / f"{stem}.npz")
    texts = load_token_bank(features / f"{job.dataset}_text_mpnet_L5.npy")
    t0 = time.time()
    res = evaluate_named(method, fs, texts, job.seed, preset=config, overrides=list(overrides),
                         device=device or "cpu", dataset=job.dataset)
    gz = {rule: {k: m[k] for k in ("S", "U", "H")} for rule, m in res["gzsl"].items()
          if isinstance(m, dict) and "H" in m}
    used = (f"{stem}.npz", f"{job.dataset}_text_mpnet_L5.npy")
    return {"dataset": job.dataset, "split": job.split, "seed": job.seed, "file": stem,
            "sha256": {k: digests[k] for k in used},  # what _check_feature_digests compares with
            "zsl_top1": res["zsl"], "zsl_top1_aligned": None, "gzsl": gz, "selection": res.get("selection"),
            "wall_seconds": time.time() - t0, "torch_threads": torch.get_num_threads(), "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def _record(job: Job, run_dir: Path, wall: float, threads: int | None) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    cal = m.get("gzsl_calibrated") or {}
    return {"dataset": job.dataset, "split": job.split, "seed": job.seed, "run_dir": str(run_dir),
            "zsl_top1": m["zsl_top1"], "zsl_top1_aligned": m.get("zsl_top1_aligned"),
            "gzsl_calibrated": {k: cal[k] for k in ("S", "U", "H") if k in cal} or None,
            "test_samples": m.get("test_samples"), "final_epochs": m.get("final_epochs"),
            "train_seconds": m.get("train_seconds"), "wall_seconds": wall,
            # the run's own count (train.threads), which training records; the process's is restored after it
            "torch_threads": m.get("torch_threads", threads),
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_benchmark(suite: str, seeds: Sequence[int], out: str | Path, *, method: str = "pgfa",
                  config: str | None = None, overrides: Sequence[str] = (), only: Iterable[str] | None = None,
                  shard: tuple[int, int] = (0, 1), data_root=None, device: str | None = None,
                  features: str | Path | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """Run the jobs of ``suite`` x ``seeds`` that this worker owns and that are not done yet.

    Args:
        suite: a key of :data:`SUITES`.
        out: the benchmark folder (records, ``benchmark.json``, ``runs/``).
        method: ``pgfa`` (trains end to end) or a feature method (``flora``, ``smie``,
            ``devise``, ``cada_vae``), which needs ``features``.
        config, overrides: as ``zeroskel train --config`` / ``--set`` (for a feature method:
            its preset, e.g. ``cpu``, and ``--set`` keys); each dataset's default preset
            applies when ``config`` is None.
        shard: ``(i, n)``: this worker takes every n-th job starting at i.
        features: folder of the feature files and token banks (feature methods).
    Returns:
        the record files this call wrote.
    """
    from .config import build_config
    from .distributed import world_from_env
    from .runs import check_run_config

    if world_from_env().active:  # workers would claim different jobs and train them as one run
        raise ConfigError("zeroskel benchmark runs each job in one process: start it without torchrun, "
                          "and spread jobs over processes with --shard i/n")
    if method not in _methods():
        raise unknown_name("benchmark method", method, _methods())
    i, n = shard
    if not (isinstance(n, int) and n >= 1 and isinstance(i, int) and 0 <= i < n):
        raise ConfigError(f"--shard must be i/n with 0 <= i < n, got {i}/{n}")
    jobs = plan(suite, seeds, only)
    out = Path(out)
    import torch
    # the thread count moves single runs (RESULTS.md): one folder holds one thread count
    settings = {"method": method, "suite": suite, "config": config, "overrides": list(overrides),
                "torch_threads": torch.get_num_threads()}
    configs: dict[Job, dict] = {}   # per job (pgfa)
    digests: dict[str, str] = {}    # feature file -> sha256 (feature methods)
    if method in END_TO_END:
        if features is not None:
            raise ConfigError(f"--features is for the feature methods; {method} trains on the skeletons")
        if config is not None and Path(config).expanduser().is_file():
            # the file's name alone let a later call train with an edited file into the same table
            settings["config_sha256"] = hashlib.sha256(Path(config).expanduser().read_bytes()).hexdigest()
        # every job's config is built and checked (as train checks it) before the first one trains
        configs = {j: build_config(method, dataset=j.dataset, split=j.split, seed=j.seed, config=config,
                                   overrides=list(overrides), data_root=data_root, device=device) for j in jobs}
        for c in configs.values():
            check_run_config(c)
        # so is every job's data (without reading it): a dataset missing from the data root stopped
        # the benchmark only when its first job came up, after the jobs before it had trained
        from ..data.cache import source_fingerprint
        for where in {(c["dataset"], data_root if data_root is not None else c.get("data_root"))
                      for c in configs.values()}:
            source_fingerprint(*where)
    else:
        if features is None:
            raise ConfigError(f"{method} works on skeleton features: pass --features DIR (e.g. $ZEROSKEL_DATA/features)")
        features = Path(features).expanduser()
        need = sorted({f"{feature_file(j.dataset, j.split)}.npz" for j in jobs}
                      | {f"{j.dataset}_text_mpnet_L5.npy" for j in jobs})
        missing = [f for f in need if not (features / f).is_file()]
        if missing:
            raise ConfigError(f"--features {features}: missing {', '.join(missing)}")
        from ..methods.factory import make_factory
        for ds in sorted({j.dataset for j in jobs}):  # a bad preset or --set fails before the first fit
            make_factory(method, config, list(overrides), seed=jobs[0].seed, device=device or "cpu", dataset=ds)
        for ds, sp in sorted({(j.dataset, j.split) for j in jobs}):  # so does a misnamed feature file
            _check_feature_file(features, ds, sp)
        settings["features"] = str(features.resolve())
        digests = {f: _digest(features / f) for f in need}
        _check_feature_digests(out, digests)
    # a CPU and a GPU run of one job differ (other kernels): one folder holds one kind of device
    from .trainer import resolve_device
    wanted = {str(c["device"]) for c in configs.values()} if configs else {device or "cpu"}
    settings["device"] = ",".join(sorted({resolve_device(d).type for d in wanted}))
    existed = out.is_dir()
    out.mkdir(parents=True, exist_ok=True)
    created = _check_settings(out, settings)
    written: list[Path] = []
    try:
        _run_jobs(jobs, (i, n), out, method, configs, written, log=log, data_root=data_root, features=features,
                  config=config, overrides=overrides, device=device, digests=digests)
    except ZeroskelError:
        if created:
            _untie(out, existed)
        raise
    return written


def _run_jobs(jobs: list[Job], shard: tuple[int, int], out: Path, method: str, configs: dict, written: list,
              *, log, data_root, features, config, overrides, device, digests) -> None:
    """The loop of :func:`run_benchmark`: claim, run and record this worker's unfinished jobs."""
    import torch

    from .runs import resume_run, train

    i, n = shard
    for k, job in enumerate(jobs):
        rec_path = job.record(out)
        if k % n != i or rec_path.is_file():
            continue
        lock = rec_path.with_suffix(".lock")
        try:
            with lock.open("x", encoding="utf-8") as f:  # claim the job: any number of workers can share OUT
                f.write(f"{os.getpid()}\n")
        except FileExistsError:
            log(f"skip {job.dataset} {job.split} seed {job.seed}: {lock.name} exists (another worker, or a "
                "crashed one: delete the lock to retry)")
            continue
        try:
            log(f"[{time.strftime('%H:%M:%S')}] {job.dataset} {job.split} seed {job.seed}")
            t0 = time.time()
            if method in END_TO_END:
                unfinished = _unfinished_run(out / "runs", method, configs[job])
                if unfinished is not None:  # an interrupted earlier call: continue it, not start again
                    log(f"  resuming {unfinished}")
                    run_dir = resume_run(unfinished, data_root=data_root)
                else:
                    run_dir = train(configs[job], out / "runs", data_root=data_root)
                rec = _record(job, run_dir, time.time() - t0, torch.get_num_threads())
            else:
                run_dir = features / f"{feature_file(job.dataset, job.split)}.npz"
                rec = _feature_record(job, method, features, config, overrides, device, digests)
            tmp = rec_path.with_suffix(".tmp")
            tmp.write_text(dumps(rec), encoding="utf-8")
            os.replace(tmp, rec_path)
            written.append(rec_path)
            log(f"  ZSL {rec['zsl_top1']:.2f}"
                + (f", with the test-time step {rec['zsl_top1_aligned']:.2f}" if rec["zsl_top1_aligned"] is not None else "")
                + f" ({rec['wall_seconds']:.0f} s, {run_dir})")
        finally:
            lock.unlink(missing_ok=True)


def _records(out: Path, dataset: str, split: str) -> list[dict]:
    """The finished jobs' records of one (dataset, split) in ``out``, by seed."""
    recs = [json.loads(p.read_text(encoding="utf-8")) for p in out.glob(f"{dataset}-{split.replace('/', '_')}-seed*.json")]
    return sorted(recs, key=lambda r: r["seed"])


def _cell(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    if len(a) == 1:  # one seed has no spread to report
        return f"{a[0]:.2f} (1 seed)"
    return f"{a.mean():.2f} ± {a.std(ddof=1):.2f}"


def summarize(out: str | Path) -> str:
    """A Markdown table of the records in ``out``: per (dataset, split), mean ± sample std over
    the finished seeds of ZSL top-1, ZSL with the test-time step (PGFA), GZSL S / U / H
    (calibrated stacking; feature methods also Flora's gate), and the suite's published
    number where it has one (for Flora, the reference code's best-of-test extra)."""
    out = Path(out)
    path = out / SETTINGS_FILE
    if not path.is_file():
        raise ConfigError(f"{out}: no {SETTINGS_FILE}; not a benchmark folder")
    settings = _read_settings(path)
    if settings["method"] not in END_TO_END:
        return _summarize_features(out, settings)
    suite = settings["suite"]
    source, published = PUBLISHED.get(suite, ("published", {}))
    lines = [f"{settings['method']} on suite {suite} (config {settings['config'] or 'dataset preset'}"
             + (f", overrides {' '.join(settings['overrides'])}" if settings["overrides"] else "") + ")", "",
             f"| dataset | split | {source} | ZSL top-1 | + test-time step | GZSL S / U / H | seeds | wall s/run |",
             "|---|---|---|---|---|---|---|---|"]
    for ds, sp in SUITES[suite]:
        recs = _records(out, ds, sp)
        pub = f"{published[(ds, sp)]:.2f}" if (ds, sp) in published else "-"
        if not recs:
            lines.append(f"| {ds} | {sp} | {pub} | (not run) | | | 0 | |")
            continue
        step = [r["zsl_top1_aligned"] for r in recs if r.get("zsl_top1_aligned") is not None]
        g = [r["gzsl_calibrated"] for r in recs if r.get("gzsl_calibrated")]
        gz = " / ".join(_cell([x[k] for x in g]) for k in ("S", "U", "H")) if len(g) == len(recs) else "-"
        seeds = ",".join(str(r["seed"]) for r in recs)
        lines.append(f"| {ds} | {sp} | {pub} | {_cell([r['zsl_top1'] for r in recs])} | "
                     f"{_cell(step) if len(step) == len(recs) else '-'} | {gz} | {seeds} | "
                     f"{np.mean([r['wall_seconds'] for r in recs]):.0f} |")
    lines += ["", "Mean ± sample std (ddof 1) over the seeds listed; the test set chose nothing "
                  "(model selection on seen-class validation data only)."]
    return "\n".join(lines)


def _summarize_features(out: Path, settings: dict) -> str:
    suite, method = settings["suite"], settings["method"]
    source, published = PUBLISHED.get(suite, ("published", {}))
    head = f"| dataset | split | {source} |" + (" Flora reference code (best of test, extra) |" if method == "flora" else "")
    lines = [f"{method} on suite {suite} (features {settings['features']}, preset {settings['config'] or 'none'}"
             + (f", overrides {' '.join(settings['overrides'])}" if settings["overrides"] else "") + ")", "",
             head + " ZSL top-1 | GZSL stacking S / U / H | GZSL gate S / U / H | seeds | wall s/run |",
             "|---|---|---|" + ("---|" if method == "flora" else "") + "---|---|---|---|---|"]
    for ds, sp in SUITES[suite]:
        recs = _records(out, ds, sp)
        cells = [ds, sp, f"{published[(ds, sp)]:.2f}" if (ds, sp) in published else "-"]
        if method == "flora":
            ref = FLORA_REFERENCE_CODE.get(feature_file(ds, sp))
            cells.append(f"{ref:.2f}" if ref is not None else "-")
        if not recs:
            lines.append("| " + " | ".join(cells + ["(not run)", "", "", "0", ""]) + " |")
            continue
        rules = [" / ".join(_cell([r["gzsl"][rule][k] for r in recs]) for k in ("S", "U", "H"))
                 if all(rule in r["gzsl"] for r in recs) else "-" for rule in ("stacking", "gate")]
        seeds = ",".join(str(r["seed"]) for r in recs)
        cells += [_cell([r["zsl_top1"] for r in recs]), *rules, seeds,
                  f"{np.mean([r['wall_seconds'] for r in recs]):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Mean ± sample std (ddof 1) over the seeds listed; budgets and GZSL thresholds chosen on "
                  "held-out seen data, never on the test set."]
    return "\n".join(lines)
