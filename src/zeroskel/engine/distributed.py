"""Data-parallel training over several processes (one per GPU), launched with ``torchrun``.

``torchrun --nproc_per_node 4 -m zeroskel train --method pgfa ...`` starts four processes; each
reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from its environment (:func:`world_from_env`)
and :func:`init_world` joins them (NCCL on CUDA, gloo on CPU). The design keeps a
multi-process run equal to a one-process run of the same global batch:

* every process draws the same global batch (same seed, same shuffling and augmentation) and
  encodes only its own contiguous share of it (:func:`shard`);
* :func:`gather_rows` concatenates the shares' features (autograd-aware), so the loss of the
  whole global batch, with all its negatives, is computed on every process;
* the trainer back-propagates ``loss / world size`` and sums the gradients over processes
  (:func:`sum_gradients`), which is exactly the one-process gradient, also for parameters the
  loss uses directly (a learnable temperature);
* on CUDA, BatchNorm layers become ``SyncBatchNorm`` (statistics of the global batch). On CPU
  (gloo, for testing) each process normalises with its own share's statistics, and the
  running statistics are copied from process 0 after every epoch.

Model weights therefore stay identical in every process. Every process also runs validation
and writes its own checkpoints (process 0 in the run directory, process r in ``rank<r>/``
inside it), so resuming needs no communication; the copies are removed when the run ends.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run (``size`` 1: a plain run)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device of this process: ``cuda`` becomes ``cuda:<local rank>``."""
        if self.active and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device


SINGLE = World()


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"environment variable {name}={v!r} is not an integer (set by torchrun)") from None


def world_from_env() -> World:
    """The :class:`World` described by torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} / WORLD_SIZE={size} from the environment are inconsistent")
    return World(rank, size, _env_int("LOCAL_RANK", rank))


def current_world() -> World:
    """The initialised process group as a :class:`World`, else :data:`SINGLE`."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return World(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                     _env_int("LOCAL_RANK", torch.distributed.get_rank()))
    return SINGLE


def init_world(device: str = "auto", init_method: str | None = None) -> World:
    """Join the process group torchrun describes (a no-op for one process or if already joined).

    ``device`` picks the backend: NCCL for CUDA (``auto`` with a GPU), gloo otherwise.
    ``init_method``: torch's rendezvous (default ``env://``, torchrun's ``MASTER_ADDR`` /
    ``MASTER_PORT``); e.g. ``file:///shared/path`` where no port can be reserved.
    """
    if current_world().active:  # joined already (by an earlier call, or by the caller)
        return current_world()
    world = world_from_env()
    if not world.active:
        return SINGLE
    if not torch.distributed.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = str(device).startswith("cuda") or (str(device) == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available():  # as a one-process run says it, not "only 0 CUDA device(s)"
            raise ConfigError(f"device {device!r} requested but CUDA is not available (use --device cpu or auto)")
        if torch.cuda.device_count() <= world.local_rank:
            raise ConfigError(f"LOCAL_RANK {world.local_rank} but only {torch.cuda.device_count()} CUDA "
                              "device(s) here: start at most that many processes per node")
        torch.cuda.set_device(world.local_rank)
    torch.distributed.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30),
                                         init_method=init_method, rank=world.rank, world_size=world.size)
    return current_world()


def shard_sizes(n: int, size: int) -> tuple[int, ...]:
    """How many of ``n`` rows each of ``size`` processes takes (sizes differ by at most one,
    the first ``n % size`` processes taking one more)."""
    q, r = divmod(n, size)
    return tuple(q + (k < r) for k in range(size))


def shard(n: int, world: World) -> slice:
    """This process's contiguous share of a batch of ``n`` rows (:func:`shard_sizes`)."""
    sizes = shard_sizes(n, world.size)
    start = sum(sizes[:world.rank])
    return slice(start, start + sizes[world.rank])


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t: torch.Tensor, sizes: tuple[int, ...], rank: int) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        top = max(sizes)
        padded = t.new_zeros((top,) + tuple(t.shape[1:]))
        padded[:len(t)] = t
        parts = [torch.empty_like(padded) for _ in sizes]
        torch.distributed.all_gather(parts, padded.contiguous())
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # every process holds the gradient of its own copy of the loss; their sum is the
        # gradient with respect to the gathered rows, and each process keeps its own share
        grad = grad.contiguous().clone()  # reduced in place: never in autograd's own buffer
        torch.distributed.all_reduce(grad)
        start = sum(ctx.sizes[:ctx.rank])
        return grad[start:start + ctx.sizes[ctx.rank]], None, None


def gather_rows(t: torch.Tensor, n: int, world: World) -> torch.Tensor:
    """(this process's share of ``n`` rows, ...) -> all ``n`` rows in batch order, on every
    process. Gradients flow back to each process's own share (see the module doc for how the
    trainer scales them)."""
    if not world.active:
        return t
    sizes = shard_sizes(n, world.size)
    if len(t) != sizes[world.rank]:
        raise ValueError(f"process {world.rank} holds {len(t)} rows; its share of {n} is {sizes[world.rank]}")
    return _GatherRows.apply(t, sizes, world.rank)


def sum_gradients(params, world: World) -> None:
    """Sum the gradients of ``params`` over all processes, in one flat all-reduce."""
    if not world.active:
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:  # unused this step: a zero gradient keeps the flat layout equal
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    torch.distributed.all_reduce(flat)
    i = 0
    for p in params:
        k = p.numel()
        p.grad.copy_(flat[i:i + k].view_as(p.grad))
        i += k


def sync_buffers(module: nn.Module, world: World) -> None:
    """Copy process 0's buffers (BatchNorm running statistics) to every process."""
    if world.active:
        for b in module.buffers():
            torch.distributed.broadcast(b, 0)


def prepare_model(model: nn.Module, device: torch.device, world: World) -> nn.Module:
    """SyncBatchNorm for a multi-process CUDA run (CPU process groups cannot run it)."""
    if world.active and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def broadcast_object(obj, world: World):
    """Process 0's ``obj`` on every process (picklable objects)."""
    if not world.active:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.active:
        torch.distributed.barrier()


def shutdown() -> None:
    """Leave the process group cleanly, if one was joined: a barrier first, since a process
    that tears gloo down while another still does was seen to abort (SIGABRT, "terminate
    called without an active exception") after all its work had been written."""
    world = current_world()
    if world.active:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
