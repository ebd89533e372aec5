"""A small, method-agnostic training engine.

* :func:`seed_everything`, :func:`resolve_device` - reproducibility and device choice.
* :func:`build_optimizer`, :func:`lr_at_epoch` - SGD/Adam/AdamW and warm-up + constant /
  step / cosine schedules, computed from the epoch number alone (no scheduler state).
* :func:`save_checkpoint` / :func:`load_checkpoint` - atomic writes of plain dicts, clear
  :class:`~zeroskel.errors.CheckpointError` on corrupt files.
* :class:`Trainer` - the epoch loop. Every epoch re-seeds the RNGs from ``(seed, epoch)``,
  so an interrupted run that resumes from its last completed epoch produces exactly the
  same numbers as an uninterrupted one (on the same machine and thread count).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from .._checks import as_whole
from ..errors import CheckpointError, ConfigError, unknown_name
from .distributed import World, current_world, prepare_model, sum_gradients, sync_buffers

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")
PRECISIONS = ("fp32", "bf16")


# --------------------------------------------------------------------------- basics
def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 63-bit seed derived from (run seed, epoch, stream): independent of history."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(stream)])
    return int(ss.generate_state(2, dtype=np.uint32).astype(np.uint64).dot([1, 2**31]))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA if available else CPU; ``'cpu'``; ``'cuda'`` / ``'cuda:N'``."""
    if isinstance(device, torch.device):
        return device
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available "
                              "(use --device cpu or auto)")
        return torch.device(device)
    raise unknown_name("device", device, ["auto", "cpu", "cuda", "cuda:N"])


def check_precision(precision: str, device: torch.device, key: str = "train.precision") -> str:
    """Validate a training precision for ``device``; returns it.

    ``bf16`` needs a CUDA device with bfloat16 support, or a CPU (fast only where the CPU
    has bfloat16 instructions, e.g. AVX512-BF16 or AMX; elsewhere it is emulated and slower).
    """
    if precision not in PRECISIONS:
        raise unknown_name(key, str(precision), PRECISIONS)
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{key}=bf16: this GPU ({torch.cuda.get_device_name(device)}) has no "
                          "bfloat16 support; use fp32")
    return precision


def autocast(device: torch.device, precision: str = "fp32"):
    """Context for a training forward pass: bfloat16 autocast for ``precision='bf16'``
    (matrix products in bf16, weights, gradients and optimiser state stay fp32), else a no-op."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# --------------------------------------------------------------------------- optimisation
@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        optimizer: 'sgd' | 'adam' | 'adamw'.
        lr: base learning rate.
        momentum, nesterov: SGD only.
        weight_decay: applied to all parameters (as the PGFA reference does) except those a model
            names in ``no_weight_decay()`` (see :func:`param_groups`).
        schedule: after warm-up, 'constant', 'step' (x ``gamma`` at each of ``milestones``)
            or 'cosine' (to ``min_lr`` at the last epoch).
        warmup_epochs: linear warm-up length in epochs. Epoch ``e < warmup_epochs`` trains at
            ``lr * (e + 1) / warmup_epochs``.
        warmup_reference_bug: reproduce the PGFA reference formula ``lr * e / warmup``,
            whose epoch 0 trains at lr 0 (off by default).
        epochs: total epochs (the cosine horizon).
    """

    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "constant"
    milestones: tuple = (50, 80)
    gamma: float = 0.1
    min_lr: float = 0.0
    warmup_epochs: int = 5
    warmup_reference_bug: bool = False
    epochs: int = 50

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise unknown_name("optimizer", self.optimizer, OPTIMIZERS)
        if self.schedule not in SCHEDULES:
            raise unknown_name("lr schedule", self.schedule, SCHEDULES)
        for k in ("lr", "weight_decay", "momentum", "min_lr"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or not math.isfinite(v):
                raise ConfigError(f"train.{k} must be a non-negative number, got {v!r}")
        for k in ("warmup_epochs", "epochs"):  # 2.0 is 2, 1.5 is refused (_checks.as_whole)
            v = getattr(self, k)
            if as_whole(v) is None or v < 0:
                raise ConfigError(f"train.{k} must be a non-negative integer, got {v!r}")
            setattr(self, k, as_whole(v))
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        g = self.gamma
        if not isinstance(g, (int, float)) or isinstance(g, bool) or g < 0 or not math.isfinite(g):
            raise ConfigError(f"train.gamma must be a non-negative number, got {g!r}")
        for k in ("nesterov", "warmup_reference_bug"):  # bool('maybe') is True: refuse, do not guess
            if not isinstance(getattr(self, k), bool):
                raise ConfigError(f"train.{k} must be true or false, got {getattr(self, k)!r}")
        ms = self.milestones
        if not isinstance(ms, (list, tuple)) or not all(as_whole(m) is not None and m >= 0 for m in ms):
            raise ConfigError(f"train.milestones must be a list of epoch numbers (integers >= 0), e.g. [50, 80], "
                              f"got {ms!r}")
        self.milestones = tuple(as_whole(m) for m in ms)
        # a step schedule's lr * gamma ** k can leave float32 (the optimiser's parameters): torch then
        # fails deep inside optimizer.step ('value cannot be converted to type float without overflow')
        for e in range(self.epochs):
            lr = lr_at_epoch(self, e)
            if not lr <= _FLOAT32_MAX:
                raise ConfigError(f"the learning rate of epoch {e + 1} is {lr:g} (train.lr {self.lr:g}, "
                                  f"train.gamma {self.gamma:g}, train.milestones {list(self.milestones)}): "
                                  "beyond what float32 parameters can take; lower train.lr or train.gamma")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def lr_at_epoch(cfg: OptimConfig, epoch: int) -> float:
    """Learning rate of (0-based) ``epoch``."""
    w = cfg.warmup_epochs
    if epoch < w:
        frac = epoch / w if cfg.warmup_reference_bug else (epoch + 1) / w
        return cfg.lr * frac
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    span = max(1, cfg.epochs - w - 1)
    t = min(1.0, (epoch - w) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def param_groups(model: nn.Module) -> list:
    """``model``'s trainable parameters for :func:`build_optimizer`: one list, or two groups when
    the model names parameters that must not decay in ``no_weight_decay()`` (timm's convention;
    a learned temperature, say), the second with ``weight_decay`` 0."""
    names = set(getattr(model, "no_weight_decay", lambda: ())())
    keep = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not names & {n for n, _ in keep}:
        return [p for _, p in keep]
    return [{"params": [p for n, p in keep if n not in names]},
            {"params": [p for n, p in keep if n in names], "weight_decay": 0.0}]


def build_optimizer(params: Iterable, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW over ``params``: parameters, or groups (dicts) as :func:`param_groups` gives."""
    params = list(params)
    if params and not isinstance(params[0], dict):
        params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` (plain dicts / tensors / JSON-able values) atomically.

    The file is written to a temporary name in the same folder and renamed, so a crash
    mid-write never leaves a truncated checkpoint under ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    buf = io.BytesIO()
    torch.save(state, buf)
    try:
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:  # a failed write (disk full) leaves no temporary file of the checkpoint's size behind
        if tmp.exists():
            tmp.unlink()
    return path


def _load_failure(path: Path, e: BaseException) -> str:
    """Why ``torch.load`` failed, in one line. torch's own text is long, and for the
    weights-only case it advises ``weights_only=False``, which would run the file's code."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as oe:  # e.g. no read permission: torch.load failed for the same reason
        return f"cannot open ({oe.strerror or oe})"
    if not head:
        return "the file is empty"
    if head.startswith(b"PK"):  # torch.save's zip format
        if "weights only" in str(e).lower() or type(e).__name__ == "UnpicklingError":
            return ("it holds Python objects beyond tensors and plain containers, which zeroskel does "
                    "not load (torch.load weights_only=True)")
        return "truncated or damaged: its zip archive cannot be read"
    return "not a file written by torch.save (no zip header)"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, not a
    torch file or holds something other than a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(f"checkpoint {path} is corrupt or not a zeroskel checkpoint "
                              f"({_load_failure(path, e)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, found {type(state).__name__}")
    return state


def versions() -> dict:
    import zeroskel
    # str(): torch.__version__ is a TorchVersion, which weights_only loading rejects
    return {"zeroskel": str(zeroskel.__version__), "torch": str(torch.__version__), "numpy": str(np.__version__)}


# --------------------------------------------------------------------------- logging
def run_logger(log_file: str | Path | None, name: str = "zeroskel.run", echo: bool = False) -> logging.Logger:
    """A logger writing to ``log_file`` (append) and optionally to stderr.

    Each call returns a logger with fresh handlers, so two runs in one process never write
    to each other's logs.
    """
    logger = logging.getLogger(f"{name}.{id(object())}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
    if log_file is not None:
        h = logging.FileHandler(log_file, mode="a")
        h.setFormatter(fmt)
        logger.addHandler(h)
    if echo:
        s = logging.StreamHandler()
        s.setFormatter(fmt)
        logger.addHandler(s)
    return logger


def close_logger(logger: logging.Logger) -> None:
    for h in list(logger.handlers):
        h.close()
        logger.removeHandler(h)


# --------------------------------------------------------------------------- trainer
class TrainingDiverged(ConfigError):
    """The training loss became NaN or infinite (``epoch`` 1-based, at learning rate ``lr``).
    Training is deterministic, so continuing the run from its checkpoints fails the same way."""

    def __init__(self, message: str, epoch: int, lr: float) -> None:
        super().__init__(message)
        self.epoch, self.lr = epoch, lr


@dataclass
class EpochResult:
    epoch: int
    lr: float
    loss: float
    seconds: float
    samples: int
    metrics: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, "lr": self.lr, "loss": self.loss, "seconds": self.seconds,
                "samples": self.samples, **self.metrics}


Batch = Any
StepFn = Callable[[nn.Module, Batch], "tuple[torch.Tensor, int]"]


class Trainer:
    """Epoch loop with warm-up, checkpointing and exact resume.

    Args:
        model: the module to train (moved to ``device``).
        step_fn: ``step_fn(model, batch) -> (loss, batch_size)``; computes the loss of one
            batch (the trainer does backward and the optimiser step).
        batches_fn: ``batches_fn(epoch, rng) -> iterable of batches``; ``rng`` is a
            ``np.random.Generator`` seeded from ``(seed, epoch)``, to shuffle / augment.
        optim: :class:`OptimConfig`.
        seed: run seed; the torch RNG is also re-seeded from ``(seed, epoch)`` every epoch.
        device: torch device.
        checkpoint: path of the rolling "last" checkpoint (None: no checkpoints).
        eval_fn: ``eval_fn(model, epoch) -> dict`` of metrics after an epoch, or None.
        eval_every: call ``eval_fn`` after every ``eval_every``-th epoch and after the last
            one of ``fit``; the other epochs' history entries carry no metrics.
        on_epoch_end: ``on_epoch_end(trainer, result)``: e.g. keep the best checkpoint.
        extra_state: JSON-able / tensor dict stored in every checkpoint (config, classes...).
        logger: where per-epoch lines go.
        grad_clip: max gradient norm (None = off).
        world: the data-parallel :class:`~zeroskel.engine.distributed.World` (default: the
            initialised process group, else one process). With several processes ``step_fn``
            gets this process's share of each batch and must return the loss of the *whole*
            global batch, identical in every process (gather the shares' outputs with
            :func:`~zeroskel.engine.distributed.gather_rows`); the trainer back-propagates
            ``loss / size`` and sums the gradients, which gives the one-process gradient.
    """

    def __init__(self, model: nn.Module, step_fn: StepFn, batches_fn: Callable[[int, np.random.Generator], Iterable[Batch]],
                 optim: OptimConfig, seed: int = 0, device: torch.device | str = "cpu",
                 checkpoint: str | Path | None = None, eval_fn: Callable[[nn.Module, int], dict] | None = None,
                 on_epoch_end: Callable[["Trainer", EpochResult], None] | None = None,
                 extra_state: dict | None = None, logger: logging.Logger | None = None,
                 grad_clip: float | None = None, eval_every: int = 1, world: World | None = None) -> None:
        if not isinstance(eval_every, int) or isinstance(eval_every, bool) or eval_every < 1:
            raise ConfigError(f"eval_every must be a positive integer, got {eval_every!r}")
        self.world = world or current_world()
        self.device = self.world.device(resolve_device(device))
        self.model = prepare_model(model, self.device, self.world).to(self.device)
        self.step_fn = step_fn
        self.batches_fn = batches_fn
        self.optim_cfg = optim
        self.optimizer = build_optimizer(param_groups(self.model), optim)
        # keeps a parameter in range after each update (PGFAModel caps a learned logit scale)
        self._after_step = getattr(self.model, "after_optimizer_step", None)
        self.seed = int(seed)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.eval_fn = eval_fn
        self.eval_every = eval_every
        self.on_epoch_end = on_epoch_end
        self.extra_state = dict(extra_state or {})
        self.log = logger or run_logger(None)
        self.grad_clip = grad_clip
        self.epoch = 0  # number of completed epochs
        self.history: list[dict] = []

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"kind": "zeroskel.trainer", "epoch": self.epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "history": self.history,
                "seed": self.seed, "versions": versions(), **self.extra_state}

    def load_state_dict(self, state: dict, where: str = "checkpoint") -> None:
        """Continue from ``state``; a :class:`CheckpointError` if it is not a trainer checkpoint,
        does not fit the model, or was saved by another run or stage: its seed or an
        ``extra_state`` entry (the run config, the stage) differs from this trainer's. Such a
        file (copied from a run of another seed, say) fits the model and would otherwise be
        continued, and reported, as this run."""
        from .runs import _changed_keys

        for key in ("epoch", "model", "optimizer", "history"):
            if key not in state:
                raise CheckpointError(f"{where}: missing key {key!r}; not a trainer checkpoint")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0][:300]
            raise CheckpointError(f"{where}: does not match this model/optimizer ({first})") from None
        differ = []
        for key, ours in {"seed": self.seed, **self.extra_state}.items():
            if key not in state or torch.is_tensor(ours):
                continue
            if isinstance(ours, dict) and isinstance(state[key], dict):
                changed = _changed_keys(state[key], ours)
                if changed:
                    differ.append(f"{key} keys {', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}")
            elif state[key] != ours:
                differ.append(f"{key} {state[key]!r}, this run's {ours!r}")
        if differ:
            raise CheckpointError(f"{where} was saved by another run or stage ({'; '.join(differ)}); restore "
                                  "this run's own file, or delete it to train that stage again from its start")
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])

    def resume(self) -> bool:
        """Load the rolling checkpoint if it exists; True if something was loaded."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return False
        self.load_state_dict(load_checkpoint(self.checkpoint, self.device), str(self.checkpoint))
        self.log.info(f"resumed from {self.checkpoint.name} after epoch {self.epoch}")
        return True

    def save(self, path: str | Path | None = None) -> Path | None:
        path = path or self.checkpoint
        return save_checkpoint(self.state_dict(), path) if path is not None else None

    # ---------------------------------------------------------------- loop
    def train_epoch(self, epoch: int) -> EpochResult:
        lr = lr_at_epoch(self.optim_cfg, epoch)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        rng = np.random.default_rng(epoch_seed(self.seed, epoch, 0))
        # dropout etc.; each data-parallel process draws its own masks for its share (stream 1
        # is process 0's, and a one-process run's)
        torch.manual_seed(epoch_seed(self.seed, epoch, 1 if self.world.main else 1000 + self.world.rank))
        self.model.train()
        t0 = time.perf_counter()
        total, n = 0.0, 0
        for batch in self.batches_fn(epoch, rng):
            loss, bs = self.step_fn(self.model, batch)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"training diverged: loss is {loss.item()} in epoch {epoch + 1} "
                                       f"(lr {lr:.3g}); lower train.lr or set train.grad_clip", epoch + 1, lr)
            self.optimizer.zero_grad(set_to_none=True)
            if self.world.active:
                (loss / self.world.size).backward()
                sum_gradients(self.model.parameters(), self.world)
            else:
                loss.backward()
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            if self._after_step is not None:
                self._after_step()
            total += float(loss.detach()) * bs
            n += bs
        # the loss is checked before each step, so a last step that overflowed the weights or the
        # BatchNorm statistics would otherwise be saved, and the run end with a model whose
        # features are NaN (one check per epoch)
        state = [(k, v) for k, v in self.model.state_dict().items() if torch.is_floating_point(v)]
        if state and not bool(torch.stack([torch.isfinite(v).all() for _, v in state]).all()):
            bad = next(k for k, v in state if not torch.isfinite(v).all())
            raise TrainingDiverged(f"training diverged: the weights ({bad}) are not finite after epoch {epoch + 1} "
                                   f"(lr {lr:.3g}); lower train.lr or set train.grad_clip", epoch + 1, lr)
        sync_buffers(self.model, self.world)  # BatchNorm statistics as process 0's (a no-op alone)
        return EpochResult(epoch=epoch, lr=lr, loss=total / max(n, 1), seconds=time.perf_counter() - t0,
                           samples=n)

    def fit(self, epochs: int | None = None, max_epochs: int | None = None, resume: bool = True) -> list[dict]:
        """Train until ``epochs`` (default ``optim.epochs``) epochs are complete.

        ``max_epochs`` stops after that many *completed* epochs in total (a hook to simulate
        an interruption); calling ``fit`` again resumes. Returns the history (one dict per
        epoch: epoch, lr, loss, seconds, samples and the ``eval_fn`` metrics).
        """
        epochs = self.optim_cfg.epochs if epochs is None else epochs
        if resume:
            self.resume()
        stop = epochs if max_epochs is None else min(epochs, max_epochs)
        while self.epoch < stop:
            e = self.epoch
            res = self.train_epoch(e)
            if self.eval_fn is not None and ((e + 1) % self.eval_every == 0 or e + 1 == epochs):
                res.metrics = dict(self.eval_fn(self.model, e))
            self.epoch = e + 1
            self.history.append(res.as_dict())
            extra = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in res.metrics.items())
            self.log.info(f"epoch {e + 1}/{epochs} lr={res.lr:.5g} loss={res.loss:.4f} "
                          f"{res.samples / max(res.seconds, 1e-9):.1f} samples/s {extra}".rstrip())
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, res)
            self.save()
        return self.history

    def fit_stage(self, epochs: int, max_epochs: int | None, stage: str) -> bool:
        """:meth:`fit` to ``epochs``; False (logged) if ``max_epochs`` stopped it first, so a
        caller can end its run there and resume it later."""
        self.fit(epochs, max_epochs=max_epochs)
        if self.epoch < epochs:
            self.log.info(f"stopped after epoch {self.epoch} of {stage} (max_epochs={max_epochs})")
            return False
        return True


def history_json(history: list[dict]) -> str:
    return json.dumps(history, indent=1)
