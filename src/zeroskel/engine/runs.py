"""Run directories and the library API behind ``zeroskel train`` / ``zeroskel evaluate``.

A run lives in ``<runs_dir>/<method>-<dataset>-<split>-seed<k>[-N]``; the folder is
created exclusively (``mkdir`` without ``exist_ok``), so a run never overwrites another:
a second run with the same name gets the suffix ``-1``, ``-2``... It holds

* ``config.yaml``: the resolved configuration;
* ``train.log``: one line per epoch and stage;
* checkpoints (``stage1_last.pt``, ``stage2_last.pt``, ``final.pt``) and, when a validation
  stage runs (``validation.mode`` not ``none``), ``selection.json``;
* ``metrics.json``: test metrics of the final model (and the selection record);
* ``.lock``: held by the process that trains in the folder, so that a second ``resume``
  of the same run refuses to start instead of writing the same checkpoints at once;
* ``diverged.json``: written when training diverged (non-finite loss) after checkpoints were
  saved; training is deterministic, so ``resume`` refuses the run up front instead of
  replaying its epochs to diverge again, and says how to start a new run.

Functions: :func:`train`, :func:`resume_run`, :func:`evaluate_run`, :func:`create_run_dir`.
"""
from __future__ import annotations

import importlib
import os
import re
import shutil
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable

import yaml

from ..errors import ConfigError, ZeroskelError, unknown_name, yaml_problem
from ..paths import looks_like_path, path_name
from .config import dump_config, safe_load, validate_config

# method name -> ("module:train_function", "module:evaluate_function", "module:check_function").
#   train(cfg, run_dir, data_root=None, logger=None, max_epochs=None) -> metrics | None
#   evaluate(run_dir, data_root=None, device=None) -> metrics
#   check(cfg) -> None: value checks (names, ranges) that raise ConfigError; run before the
#   run folder is created, so a bad config leaves nothing behind
METHODS: dict[str, tuple[str, str, str]] = {
    "pgfa": ("zeroskel.methods.pgfa:train_pgfa", "zeroskel.methods.pgfa:evaluate_pgfa",
             "zeroskel.methods.pgfa:check_config"),
    # skeleton-encoder pretraining for the feature-based methods (writes encoder.pt)
    "pretrain": ("zeroskel.engine.pretrain:train_pretrain", "zeroskel.engine.pretrain:evaluate_pretrain",
                 "zeroskel.engine.pretrain:check_config"),
}

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
# what a run folder holds before its first checkpoint
_SETUP_FILES = {"config.yaml", "train.log", ".lock"}
LOCK_FILE = ".lock"
DIVERGED_FILE = "diverged.json"


@contextmanager
def run_lock(run_dir: Path):
    """Hold ``run_dir/.lock`` while training in the folder; a :class:`ConfigError` if another
    process holds it. The operating system releases the lock when its holder exits, however it
    exits, so a killed run leaves nothing stale behind (the file itself stays, unlocked)."""
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None
    f = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")
    locked = False
    try:
        try:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                import msvcrt
                f.seek(0)  # msvcrt locks bytes from the current position: always byte 0
                msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            locked = True
        except OSError:
            raise ConfigError(f"run directory {run_dir} is in use: another process is training in it "
                              "(train or resume); wait for it to end") from None
        yield
    finally:
        if locked and fcntl is None:  # Windows may release a lock some time after close: unlock now
            try:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            except OSError:
                pass
        f.close()  # releases the lock


def unfinished_hint(run_dir: Path) -> str:
    """What to do about a run folder without its final model: wait while a process still trains in
    it (it holds the ``.lock``; a resume would be refused), start a new run if its training
    diverged (:data:`DIVERGED_FILE`), else resume it."""
    if (Path(run_dir) / LOCK_FILE).is_file():
        try:
            with run_lock(Path(run_dir)):
                pass
        except ConfigError:
            return "a process is still training in it; evaluate it when that run ends"
        except OSError:
            pass
    diverged = _diverged_record(Path(run_dir))
    if diverged is not None:
        return f"the run stopped because {diverged['error']} (it cannot be resumed: {diverged['advice']})"
    return "the run did not finish (resume it with `zeroskel resume RUN_DIR`)"


def _diverged_record(run_dir: Path) -> dict | None:
    """The :data:`DIVERGED_FILE` record of a run folder (``error``, ``advice``...), or None."""
    import json

    f = run_dir / DIVERGED_FILE
    if not f.is_file():
        return None
    try:
        rec = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rec = None
    if not isinstance(rec, dict):  # damaged: still a divergence; say so without its details
        rec = {}
    return {"error": str(rec.get("error") or "training diverged"),
            "advice": str(rec.get("advice") or "start a new run with a lower train.lr or with train.grad_clip")}


def _diverged(e, config: dict, run_dir: Path, world):
    """``e`` (a :class:`~zeroskel.engine.trainer.TrainingDiverged`) with the way out: a new run with
    the changed setting, as a command; where the run kept checkpoints, process 0 records the
    failure in :data:`DIVERGED_FILE` so that ``resume`` refuses the run up front (resuming replays
    the same deterministic steps, and an edited config.yaml is refused)."""
    import shlex
    import time

    from .._json import write_json
    from .trainer import TrainingDiverged

    method = config.get("method")
    cmd = "zeroskel pretrain" if method == "pretrain" else f"zeroskel train --method {method}"
    cmd += f" --dataset {shlex.quote(str(config.get('dataset')))} --split {shlex.quote(str(config.get('split')))}"
    lr = (config.get("train") or {}).get("lr")
    setting = (f"--set train.lr={lr / 10:g}" if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0
               else "--set train.grad_clip=1")
    if not any(run_dir.glob("*.pt")):  # nothing kept (train removes such a folder): the same command, changed
        return TrainingDiverged(f"{e}; run again with the changed setting, e.g. `{cmd} ... {setting}`", e.epoch, e.lr)
    advice = (f"start a new run with the changed setting, e.g. `{cmd} --config "
              f"{shlex.quote(str(run_dir.resolve() / 'config.yaml'))} {setting}` (or --set train.grad_clip=1)")
    if world.main:
        write_json({"error": str(e), "epoch": e.epoch, "lr": e.lr, "advice": advice,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, run_dir / DIVERGED_FILE)
    return TrainingDiverged(f"{e}. Resuming {run_dir} would repeat the same steps and diverge again (resume "
                            f"refuses it now): {advice}", e.epoch, e.lr)


def _load(ref: str) -> Callable:
    mod, fn = ref.split(":")
    return getattr(importlib.import_module(mod), fn)


def _entry(name: str) -> tuple[str, str, str]:
    if name not in METHODS:
        raise unknown_name("method", str(name), METHODS)
    return METHODS[name]


def _method(name: str) -> tuple[Callable, Callable]:
    tr, ev, _ = _entry(name)
    return _load(tr), _load(ev)


def check_run_config(config: dict) -> None:
    """Schema and value checks of a run config (the method's own check also requires
    ``dataset`` and ``split``); raises :class:`ConfigError` naming the key."""
    from .config import check_int

    method = config.get("method")
    check = _load(_entry(method)[2])
    validate_config(config, method)
    # numpy's generators refuse negative seeds: a traceback after the run folder was made
    check_int(config, "seed", 0)
    if isinstance(config.get("validation"), dict) and "seed" in config["validation"]:
        check_int(config, "validation.seed", 0, allow_none=True)
    check(config)
    check_engine_keys(config)


def check_engine_keys(config: dict) -> None:
    """The keys every trained method reads the same way beyond the seeds (checked above):
    gradient clipping. A ConfigError naming the key, before the run folder is made, instead of a
    ValueError traceback mid-run ('abc') or a silent change (a negative grad_clip reversed every
    gradient)."""
    import math

    clip = (config.get("train") or {}).get("grad_clip")
    if clip is not None and (not isinstance(clip, (int, float)) or isinstance(clip, bool) or not clip > 0
                             or not math.isfinite(clip)):
        raise ConfigError(f"train.grad_clip must be a positive number (a maximum gradient norm) or null, got {clip!r}")


def run_name(method: str, dataset: str, split: str, seed: int) -> str:
    """``pgfa-utd_mhad-purls-22_5-seed1`` (characters unsafe in paths become ``_``)."""
    ds = Path(path_name(str(dataset))).stem if (looks_like_path(str(dataset)) or str(dataset).endswith(".npz")) \
        else str(dataset)
    sp = Path(path_name(str(split))).stem if Path(str(split)).suffix in (".yaml", ".yml", ".json", ".npy", ".txt") \
        else str(split)
    parts = [method, ds, sp, f"seed{seed}"]
    return "-".join(_SAFE.sub("_", str(p)).strip("_") or "x" for p in parts)


def create_run_dir(runs_dir: str | Path, name: str) -> Path:
    """Create ``runs_dir/name`` or, if taken, ``name-1``, ``name-2``...; never reuses one.

    ``mkdir`` is atomic, so two processes starting the same run at once still get
    different folders.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for i in range(0, 100000):
        path = runs_dir / (name if i == 0 else f"{name}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ZeroskelError(f"{runs_dir}: too many runs named {name}")  # pragma: no cover


def _join_world(config: dict, device: str | None = None):
    """The data-parallel world this process belongs to (torchrun), joined (every method of
    :data:`METHODS` trains data-parallel); ``device`` instead of the config's picks the backend."""
    from .distributed import init_world

    return init_world(str(device or config.get("device") or "auto"))


def check_world(config: dict, world) -> None:
    """A :class:`ConfigError` when ``config`` cannot train in ``world``'s processes: every process
    encodes a share of each global batch (``train.batch_size``), and a batch smaller than the
    number of processes is skipped (:func:`~zeroskel.engine.data.epoch_batches`), so a batch size
    below it would train no step at all, and report the untrained model as a result."""
    bs = (config.get("train") or {}).get("batch_size")
    if world.active and isinstance(bs, int) and not isinstance(bs, bool) and bs < world.size:
        raise ConfigError(f"train.batch_size is {bs}, fewer than the {world.size} processes of this torchrun: "
                          "each process takes a share of every batch, so no batch could be trained; use a "
                          f"train.batch_size of at least {world.size}, or fewer processes")


def _work_dir(run_dir: Path, world) -> Path:
    """Where this process writes: the run directory for process 0; for process r, ``rank<r>/``
    inside it, seeded with copies of process 0's checkpoints and records (the processes'
    states are identical by construction, so a resumed run continues from the same point in
    every process, whatever the number of processes before)."""
    from .distributed import barrier

    barrier(world)  # process 0 has created the folder; nobody writes until all have copied
    d = run_dir
    if not world.main:
        d = run_dir / f"rank{world.rank}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        for f in run_dir.iterdir():
            if f.is_file() and f.suffix in (".pt", ".json"):
                shutil.copy2(f, d / f.name)
    barrier(world)
    return d


def _only_setup(run_dir: Path) -> bool:
    """True if ``run_dir`` holds nothing but what a run writes before its first checkpoint
    (:data:`_SETUP_FILES`), also in the ``rank<r>/`` work folders of a data-parallel run."""
    for p in run_dir.iterdir():
        if p.is_dir() and re.fullmatch(r"rank\d+", p.name):
            if not _only_setup(p):
                return False
        elif p.name not in _SETUP_FILES:
            return False
    return True


def _train_in(train_fn, config: dict, run_dir: Path, world, data_root, max_epochs, device: str | None = None) -> None:
    """``train_fn`` in this process's work folder; afterwards process 0 removes the others'.

    The caller's torch thread count is restored afterwards: ``train.threads`` applies to this
    run only (a later run with ``train.threads: null`` in the same process must get torch's
    own choice, not the previous run's setting). ``device`` replaces the config's for this call."""
    import os

    import torch

    from .distributed import barrier
    from .trainer import TrainingDiverged

    if world.active and not world.main:
        os.environ["ZEROSKEL_QUIET"] = "1"  # one process prints
    kw = {"data_root": data_root, "max_epochs": max_epochs, **({"device": device} if device else {})}
    threads = torch.get_num_threads()
    try:
        # process 0 holds the run folder's lock; the others write in their own rank folders
        with run_lock(run_dir) if world.main else nullcontext():
            train_fn(config, _work_dir(run_dir, world), **kw)
            barrier(world)
    except ZeroskelError as e:
        work = run_dir / f"rank{world.rank}"
        # failed before any work, or diverged (never resumed): leave no rank folder
        if world.active and not world.main and work.is_dir() and (isinstance(e, TrainingDiverged) or _only_setup(work)):
            shutil.rmtree(work, ignore_errors=True)
        if isinstance(e, TrainingDiverged):
            if world.main:  # the others diverged at the same step; process 0 may exit (and end them) first
                _remove_rank_folders(run_dir)
            raise _diverged(e, config, run_dir, world) from None
        raise
    finally:
        torch.set_num_threads(threads)
    if world.main:  # also those a killed data-parallel run left to a one-process resume
        _remove_rank_folders(run_dir)


def _remove_rank_folders(run_dir: Path) -> None:
    """Remove the other processes' work folders (``rank<N>/``, that exact name only) of a run folder."""
    for d in run_dir.glob("rank*"):
        if d.is_dir() and re.fullmatch(r"rank\d+", d.name):
            shutil.rmtree(d, ignore_errors=True)


def train(config: dict, runs_dir: str | Path = "runs", data_root=None, max_epochs: int | None = None) -> Path:
    """Start a new run of ``config['method']`` in a fresh run directory; return its path.

    The resolved config is written to ``config.yaml`` before training starts, so an
    interrupted run can be continued with :func:`resume_run`. ``max_epochs`` stops each
    stage after that many epochs (an interruption hook for tests). Under ``torchrun`` (PGFA)
    the processes train one run together: process 0 creates the run directory.
    """
    from .distributed import broadcast_object

    method = config.get("method")
    train_fn, _ = _method(method)
    check_run_config(config)
    world = _join_world(config)
    check_world(config, world)
    runs_dir = Path(runs_dir)
    for d in (runs_dir, *runs_dir.parents):
        if d.exists() and not d.is_dir():
            raise ConfigError(f"runs directory {runs_dir}: {d} is a file, not a folder")
    created = [d for d in (runs_dir, *runs_dir.parents) if not d.exists()]  # deepest first
    run_dir = None
    if world.main:
        run_dir = create_run_dir(runs_dir, run_name(method, config["dataset"], config["split"], config.get("seed", 0)))
        dump_config(config, run_dir / "config.yaml")
    run_dir = Path(broadcast_object(str(run_dir) if run_dir else None, world))
    try:
        _train_in(train_fn, config, run_dir, world, data_root, max_epochs)
    except ZeroskelError:
        if not world.main:
            raise
        # failed before any work was saved (no data root, missing files...): leave no
        # folder behind, so the retry gets the run's own name rather than "-1"
        if _only_setup(run_dir):  # (with the other processes' rank folders, under torchrun)
            shutil.rmtree(run_dir, ignore_errors=True)
            for d in created:  # and the runs folder this call made, if nothing else is in it
                try:
                    d.rmdir()
                except OSError:
                    break
        raise
    return run_dir


def read_run_config(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    f = run_dir / "config.yaml"
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run directory")
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} does not exist")
    if not f.is_file():
        raise ConfigError(f"{run_dir}: not a zeroskel run directory (no config.yaml)")
    try:
        cfg = safe_load(f.read_text(encoding="utf-8"), str(f))
    except yaml.YAMLError as e:
        raise ConfigError(f"{f}: invalid YAML ({yaml_problem(e)})") from None
    if not isinstance(cfg, dict) or "method" not in cfg:
        raise ConfigError(f"{f}: not a run config (no 'method' key)")
    _method(cfg["method"])
    return validate_config(cfg, cfg["method"], str(f))


def _changed_keys(a, b, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [prefix or "<config>"]
    out = []
    for k in sorted(set(a) | set(b), key=str):
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in a or k not in b:
            out.append(key)
        else:
            out += _changed_keys(a[k], b[k], key)
    return out


def check_config_unchanged(run_dir: Path, cfg: dict) -> None:
    """:class:`ConfigError` naming the keys where ``run_dir/config.yaml`` (``cfg``) differs from
    the config its checkpoints were trained with: a resume with other settings would continue
    those weights under the new settings and report the mix as a result."""
    from .trainer import load_checkpoint

    # every checkpoint of a run stores the same config (the one config.yaml was written from), so
    # the first that has one is enough: the others would be loaded, weights and all, for nothing
    for ck in sorted(run_dir.glob("*.pt")):
        saved = load_checkpoint(ck).get("config")
        if not isinstance(saved, dict):
            continue
        changed = _changed_keys(saved, cfg)
        if changed:
            raise ConfigError(f"{run_dir / 'config.yaml'} differs from the config {ck.name} was trained with "
                              f"(keys: {', '.join(changed[:8])}{' ...' if len(changed) > 8 else ''}); a run "
                              "resumes with the settings it started with: restore config.yaml, or start a new "
                              "run with the new settings")
        return


def data_state(ds) -> dict:
    """``{"data": content record}`` of a prepared dataset, for a trainer's ``extra_state``, so every
    checkpoint records the data it was trained on (:func:`check_data_unchanged`); empty for a
    cache built before content records existed."""
    from ..data.cache import content_record

    rec = content_record(ds)
    return {"data": rec} if rec else {}


# the parts of a run's text record (zeroskel.methods.pgfa.texts.text_record), as a resume error names them
TEXT_PARTS = {"class_texts": "the class texts (text.source and the other text sources' files)",
              "text_model": "the text model's weights"}


def check_data_unchanged(run_dir: Path, ds, cfg: dict, texts: dict | None = None) -> None:
    """:class:`ConfigError` when ``run_dir``'s checkpoints were trained on other prepared data than
    ``ds``: the dataset was re-prepared since the run started (other files, labels, partitions or
    preprocessing), and a resume would continue the weights on other data and report one result
    for the mix. Compares content records (:mod:`zeroskel.data.cache`), not file times, so a run
    whose dataset was copied to another folder or machine resumes. Checkpoints or caches from
    before content records existed are not checked. ``texts`` (a PGFA run's text record, stored
    under ``texts``) is compared the same way: class texts edited since the run started would
    change its training targets."""
    from ..data.cache import CONTENT_PARTS, content_record
    from .trainer import load_checkpoint

    now = content_record(ds) or {}
    now_texts = texts or {}
    if not now and not now_texts:
        return
    for ck in sorted(Path(run_dir).glob("*.pt")):
        state = load_checkpoint(ck)
        then, then_texts = state.get("data"), state.get("texts")
        if not isinstance(then, dict) and not isinstance(then_texts, dict):
            continue
        then, then_texts = then if isinstance(then, dict) else {}, then_texts if isinstance(then_texts, dict) else {}
        changed = [CONTENT_PARTS[k] + (f" ({then[k]}, now {now[k]})" if k == "samples" else "")
                   for k in CONTENT_PARTS if k in then and k in now and then[k] != now[k]]
        changed += [TEXT_PARTS[k] for k in TEXT_PARTS if then_texts.get(k) and now_texts.get(k)
                    and then_texts[k] != now_texts[k]]
        if changed:
            what = "; ".join(changed)
            cmd = "zeroskel pretrain" if cfg.get("method") == "pretrain" else f"zeroskel train --method {cfg.get('method')}"
            raise ConfigError(
                f"{run_dir}: the data of dataset {cfg.get('dataset')} are not those this run was trained "
                f"on ({ck.name}), so it cannot be resumed; changed since: {what}. The dataset (or its "
                f"preprocessing or texts) changed, and continuing would report one result for a mix of the two. "
                f"Start a new run on the data as they are now ({cmd} ...), or restore the data this run started "
                "with and resume it")
        return


def resume_run(run_dir: str | Path, data_root=None, max_epochs: int | None = None,
               device: str | None = None) -> Path:
    """Continue an interrupted run from its last completed epoch (identical results).

    A finished run (``metrics.json`` present) is left as it is. The run's ``config.yaml`` must
    be the one its checkpoints were trained with (:func:`check_config_unchanged`); a run whose
    training diverged (:data:`DIVERGED_FILE`) is refused up front. ``device``
    continues it on another device than its config's (a run started with ``--device cuda``, on
    a machine without a GPU); the config is not changed, and the numbers of the remaining
    epochs are those of that device."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if (run_dir / "metrics.json").is_file():
        return run_dir  # nothing to continue; re-scoring is `zeroskel evaluate`
    diverged = _diverged_record(run_dir)
    if diverged is not None:  # deterministic: the same epochs would run again and diverge again
        raise ConfigError(f"{run_dir} stopped because {diverged['error']}; resuming repeats the same steps and "
                          f"diverges again: {diverged['advice']}. (Delete {run_dir / DIVERGED_FILE} to resume "
                          "it anyway, e.g. with --device on another device.)")
    check_config_unchanged(run_dir, cfg)
    if not os.access(run_dir, os.W_OK):  # fail now, not after an epoch of training
        raise ConfigError(f"run directory {run_dir} is not writable")
    if device is not None:
        from .trainer import resolve_device
        resolve_device(device)  # a bad name fails before any work
    train_fn, _ = _method(cfg["method"])
    world = _join_world(cfg, device)
    check_world(cfg, world)  # a run resumes with any number of processes, up to its batch size
    _train_in(train_fn, cfg, run_dir, world, data_root, max_epochs, device)
    return run_dir


def evaluate_run(run_dir: "str | Path | list", data_root=None, device: str | None = None,
                 alignment: dict | None = None) -> dict:
    """Re-compute the test metrics of a finished run from its final checkpoint.

    ``alignment`` (PGFA runs) overrides keys of the run's ``alignment`` section: the
    test-time prototype alignment needs no retraining, so its options can be compared on
    one trained model. The result records the settings used under ``alignment``.
    Several run directories (PGFA runs of one split, e.g. different seeds) are evaluated as
    one ensemble.
    """
    dirs = [Path(d) for d in run_dir] if isinstance(run_dir, (list, tuple)) else [Path(run_dir)]
    twice = sorted({str(d) for d in dirs if sum(e.resolve() == d.resolve() for e in dirs) > 1})
    if twice:  # an ensemble member counted twice weighs double, silently
        raise ConfigError(f"run {', '.join(twice)} is listed more than once")
    cfgs = [read_run_config(d) for d in dirs]
    for d, c in zip(dirs, cfgs):  # an edited config.yaml would be reported beside a model it did not train
        check_config_unchanged(d, c)
    cfg = cfgs[0]
    _, eval_fn = _method(cfg["method"])
    if len(dirs) > 1:
        for d, c in zip(dirs[1:], cfgs[1:]):
            if c["method"] != cfg["method"]:
                raise ConfigError(f"cannot ensemble {dirs[0]} ({cfg['method']}) with {d} ({c['method']})")
        if cfg["method"] != "pgfa":
            raise ConfigError(f"method {cfg['method']!r} runs cannot be evaluated as an ensemble (only pgfa)")
    target = dirs if len(dirs) > 1 else dirs[0]
    if alignment:
        if "alignment" not in cfg:
            raise ConfigError(f"{dirs[0]}: method {cfg['method']!r} has no test-time alignment to override")
        return eval_fn(target, data_root=data_root, device=device, alignment=alignment)
    return eval_fn(target, data_root=data_root, device=device)
