"""Data-parallel training with ``torch.distributed``: one process per rank, launched by ``torchrun``.

A run is ``torchrun --nproc-per-node N -m gan4rec train ... --distributed`` (see docs/distributed.md).
:func:`init` joins the process group that ``torchrun`` describes in the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): gloo on the CPU, NCCL on GPUs, with an
explicit ``timeout`` (the library defaults wait 10 to 30 minutes on a rank that never answers). While a
group is joined, :class:`~gan4rec.models.torch_base.TorchRecommender` trains through
``DistributedDataParallel`` and :func:`~gan4rec.train.loop.fit_loop` validates, early-stops and checkpoints
on rank 0 only, broadcasting its decision as a tensor. Without a group every helper here is a no-op that
returns its input, so single-process training does not change at all.

What each rank does, and why:

- **Rows are sharded.** Every epoch all ranks draw the *same* permutation of the rows (training pairs or
  users) from the shared generator (seeded from ``random_state`` alone), pad it by wrapping around to a
  multiple of the world size, and rank ``r`` takes every ``world``-th row from ``r`` (:func:`shard`). So
  each rank runs the same number of equally sized batches (DDP needs every rank in every all-reduce), and
  step ``b`` of all ranks together covers rows ``b*B*W .. (b+1)*B*W`` of the permutation: the batch of a
  single process with batch size ``B * W`` (the *effective batch*), apart from the < ``W`` padded rows.
- **Other randomness is per rank.** Negatives, dropout masks, noise and samples come from generators
  derived from the seed, the rank and the epoch (:func:`rank_rngs`), so they differ between ranks (else
  every rank would draw the same negatives for different rows' users) yet a run is reproducible for a
  given world size, and a resumed run re-derives them without checkpointing one generator per rank.
- **Gradients are averaged** by DDP's all-reduce during ``backward()``; each rank's loss is a mean over
  its local batch, so the average is the mean over the effective batch. Weights stay identical on all
  ranks; :func:`check_in_sync` verifies it at the end of a fit.

Models whose gradients do not come from autograd (CFGAN's hand-written backward) cannot use DDP's hooks.
They can still train data-parallel with :func:`shard`, :func:`rank_rngs` and
:func:`all_reduce_mean_` (one all-reduce over a flat buffer of all gradient tensors, called between their
backward and their optimiser step); see docs/distributed.md.
"""

from __future__ import annotations

import datetime
import gc
import importlib
import logging
import math
import os
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gan4rec.errors import DataError
from gan4rec.train.devices import resolve_device
from gan4rec.train.seeding import RandomState, derive_seed, to_numpy_rng, torch_generator

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DistContext",
    "agree_seed",
    "all_reduce_max",
    "all_reduce_mean_",
    "all_reduce_sum",
    "average_scalars",
    "broadcast_floats",
    "check_in_sync",
    "check_same",
    "current",
    "init",
    "is_main",
    "launched_by_torchrun",
    "pad_to",
    "partition",
    "rank_rngs",
    "shard",
    "shutdown",
    "world_size",
    "wrap",
]

#: Seconds a collective waits for the other ranks before failing. Rank 0 validates and writes checkpoints
#: while the others wait in a broadcast, so this must exceed one validation; a rank that dies is normally
#: noticed much sooner (its sockets close, and torchrun tears the group down).
DEFAULT_TIMEOUT_S = 600.0

_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """The process group this process joined with :func:`init`.

    Attributes
    ----------
    rank, world_size, local_rank
        As set by ``torchrun`` (``local_rank``: the rank on this machine, which picks the GPU).
    backend
        ``"gloo"`` (CPU) or ``"nccl"`` (GPU).
    device
        Where this rank trains: ``cpu`` or ``cuda:<local_rank>``.
    timeout_s
        The process group's timeout.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    timeout_s: float

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that validates, logs, and writes checkpoints and artifacts."""
        return self.rank == 0


_CONTEXT: DistContext | None = None


def launched_by_torchrun() -> bool:
    """Whether the environment describes a process group (``torchrun`` sets these variables)."""
    return all(os.environ.get(k) for k in _TORCHRUN_ENV)


def current() -> DistContext | None:
    """The joined process group, or ``None`` (single process)."""
    return _CONTEXT


def is_main() -> bool:
    """True on rank 0 and in a single process."""
    return _CONTEXT is None or _CONTEXT.is_main


def world_size() -> int:
    """The number of ranks (1 in a single process)."""
    return 1 if _CONTEXT is None else _CONTEXT.world_size


def init(*, device: str | torch.device | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> DistContext:
    """Join the process group described by the ``torchrun`` environment.

    Parameters
    ----------
    device
        ``"cpu"`` (gloo), ``"cuda"`` (NCCL, one GPU per local rank) or ``None``: CUDA when available.
    timeout_s
        How long a collective waits for the other ranks (passed to ``init_process_group``).

    Raises
    ------
    DataError
        Outside ``torchrun``, with a bad ``device`` or ``timeout_s``, or when CUDA has fewer GPUs than the
        local ranks.
    """
    global _CONTEXT
    if _CONTEXT is not None:
        raise DataError("distributed.init: this process already joined a process group")
    if not dist.is_available():
        raise DataError("distributed training needs a torch build with torch.distributed")
    if not launched_by_torchrun():
        missing = [k for k in _TORCHRUN_ENV if not os.environ.get(k)]
        raise DataError(
            f"distributed training needs the environment torchrun sets ({', '.join(missing)} missing); "
            "launch with: torchrun --nproc-per-node N -m gan4rec train ... --distributed"
        )
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise DataError(f"timeout_s={timeout_s!r}; expected a positive number of seconds")
    try:
        rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise DataError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    dev = resolve_device(device)
    timeout = datetime.timedelta(seconds=float(timeout_s))
    # Before the group exists: torch.distributed.nn.functional binds ``group=group.WORLD`` as default
    # arguments when first imported, and DDP imports it lazily (through torch._dynamo). Imported after
    # init_process_group, those defaults would hold the default group for the rest of the process, so
    # shutdown() could not free it (see there). Imported now, they hold None.
    importlib.import_module("torch.distributed.nn")
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DataError(
                f"local rank {local} has no GPU: this machine has {torch.cuda.device_count()}; "
                "run at most that many processes per node (--nproc-per-node)"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
        dist.init_process_group(backend, timeout=timeout, device_id=dev)
    elif dev.type == "cpu":
        backend = "gloo"
        dist.init_process_group(backend, timeout=timeout)
    else:
        raise DataError(f"device={str(dev)!r}; distributed training runs on 'cpu' (gloo) or 'cuda' (NCCL)")
    _CONTEXT = DistContext(rank, world, local, backend, dev, float(timeout_s))
    return _CONTEXT


def shutdown() -> None:
    """Leave the process group and free it, joining its threads (no-op without one).

    Every rank must call this before its interpreter exits. ``destroy_process_group`` only drops
    torch's own references to the group; the group's C++ destructor, which drains its work queue and
    joins its worker threads, runs when the last Python reference goes. Until then a gloo worker thread
    may still be releasing a finished collective whose tensors are Python objects, and releasing them
    takes the GIL: if that happens while the interpreter is finalizing, the thread is unwound through a
    ``noexcept`` destructor and the process aborts ("terminate called without an active exception").
    So this first collects garbage (a DDP wrapper dropped after a fit sits in a reference cycle and still
    holds the group), then destroys the group and checks that nothing else holds it; it logs a warning
    if something does (the group's threads then live on until exit).
    """
    global _CONTEXT
    if _CONTEXT is None:
        return
    _CONTEXT = None
    if not dist.is_initialized():
        return
    gc.collect()
    group = dist.group.WORLD
    dist.destroy_process_group()
    others = sys.getrefcount(group) - 2  # minus `group` here and getrefcount's own argument
    del group  # normally the last reference: the group is freed and its threads joined here
    if others > 0:
        logger.warning(
            "the process group is still referenced %d more time(s) after destroy_process_group, so its "
            "threads stay alive until exit, where they can abort the process; drop every "
            "DistributedDataParallel wrapper and process-group handle before distributed.shutdown()",
            others,
        )


# ---------------------------------------------------------------------------------------------- collectives
def _comm_device() -> torch.device:
    """Where small control tensors live: NCCL only moves GPU tensors."""
    assert _CONTEXT is not None
    return _CONTEXT.device if _CONTEXT.backend == "nccl" else torch.device("cpu")


def broadcast_floats(values: Sequence[float], src: int = 0) -> list[float]:
    """Rank ``src``'s ``values`` on every rank, as one float64 tensor broadcast (no pickling).

    Every rank passes a sequence of the same length (the non-source ranks' values are ignored).
    """
    if _CONTEXT is None:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.broadcast(t, src=src)
    return t.cpu().tolist()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over the ranks (a new tensor; ``t`` itself without a process group)."""
    if _CONTEXT is None:
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_reduce_max(value: int) -> int:
    """The largest ``value`` over the ranks."""
    if _CONTEXT is None:
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def check_same(value: int, what: str) -> None:
    """Raise :class:`DataError` unless every rank passes the same int (one all-reduce of ``(v, -v)``)."""
    if _CONTEXT is None:
        return
    v = int(value) & ((1 << 62) - 1)
    t = torch.tensor([v, -v], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if int(t[0]) != -int(t[1]):
        raise DataError(f"the ranks disagree on {what}; every rank must run the same command on the same data")


def _key_hash(keys: Iterable[str]) -> int:
    return zlib.crc32("\x00".join(keys).encode())


def average_scalars(values: Mapping[str, float]) -> dict[str, float]:
    """The mean of each named scalar over the ranks (one all-reduce; every rank passes the same keys)."""
    if _CONTEXT is None:
        return dict(values)
    keys = [str(k) for k in values]
    check_same(_key_hash(keys), f"the names of the epoch diagnostics ({', '.join(keys)})")
    t = torch.tensor([float(values[k]) for k in values], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, (t / _CONTEXT.world_size).cpu().tolist(), strict=True))


def agree_seed(random_state: RandomState) -> int:
    """One int seed on every rank: ``random_state`` itself when an int, else a seed drawn on rank 0.

    Every rank must draw the same shared permutations, so a ``None`` or Generator ``random_state`` (which
    may differ between processes) is replaced by rank 0's draw.
    """
    rs = random_state
    if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
        to_numpy_rng(rs)  # rejects negative seeds with the usual message
        check_same(int(rs), "random_state")
        return int(rs)
    seed = derive_seed(to_numpy_rng(rs)) if is_main() else 0
    if _CONTEXT is None:
        return seed
    t = torch.tensor([seed], dtype=torch.int64, device=_comm_device())
    dist.broadcast(t, src=0)
    return int(t.item())


def all_reduce_mean_(tensors: Sequence[torch.Tensor]) -> None:
    """Replace each tensor by its mean over the ranks, in place, with one all-reduce of a flat buffer.

    For models that compute gradients by hand (outside autograd, so without DDP's hooks): call it on the
    list of gradient tensors after the backward pass and before the optimiser step, in the same order on
    every rank. The tensors must share one dtype and device. A no-op in a single process.
    """
    if _CONTEXT is None or not tensors:
        return
    dtypes = {t.dtype for t in tensors}
    devices = {t.device for t in tensors}
    if len(dtypes) > 1 or len(devices) > 1:
        raise ValueError(f"all_reduce_mean_ needs one dtype and one device, got {dtypes} on {devices}")
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= _CONTEXT.world_size
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


def check_in_sync(modules: Mapping[str, nn.Module]) -> None:
    """Raise ``RuntimeError`` unless every rank holds the same weights (compared by checksums).

    DDP keeps replicas equal by construction; this catches a model step that bypassed it.
    """
    if _CONTEXT is None:
        return
    sums = []
    for _, module in sorted(modules.items()):
        for p in module.parameters():
            x = p.detach().double()
            sums += [x.sum(), x.abs().sum()]
    if not sums:
        return
    local = torch.stack(sums).to(_comm_device())
    hi, lo = local.clone(), -local
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MAX)
    if not torch.equal(hi, -lo):
        raise RuntimeError(
            f"rank {_CONTEXT.rank}: the ranks hold different weights after training; a training step "
            "bypassed DistributedDataParallel"
        )


# ---------------------------------------------------------------------------------------------- sharding
def pad_to(indices: np.ndarray, length: int) -> np.ndarray:
    """``indices`` repeated cyclically up to ``length`` entries (``indices`` itself when long enough)."""
    n = len(indices)
    if n >= length:
        return indices
    if n == 0:
        raise DataError(f"cannot pad an empty shard to {length} rows; every rank needs at least one row")
    return np.resize(indices, length)


def shard(indices: np.ndarray) -> np.ndarray:
    """This rank's share of ``indices`` (a permutation every rank drew alike); ``indices`` in one process.

    ``indices`` is padded cyclically to a multiple of the world size, then rank ``r`` takes entries
    ``r, r + world, ...``: every rank gets ``ceil(n / world)`` rows, and batch ``b`` of all ranks together
    is batch ``b`` of one process with a ``world`` times larger batch.
    """
    if _CONTEXT is None:
        return indices
    world = _CONTEXT.world_size
    padded = pad_to(indices, math.ceil(len(indices) / world) * world)
    return padded[_CONTEXT.rank :: world]


def partition(indices: np.ndarray) -> np.ndarray:
    """A fixed disjoint share of ``indices`` for this rank (entries ``rank, rank + world, ...``).

    Unlike :func:`shard`, not padded: the shares differ in length by at most one, and together cover
    ``indices`` exactly once. ``indices`` itself in one process.
    """
    if _CONTEXT is None:
        return indices
    return indices[_CONTEXT.rank :: _CONTEXT.world_size]


def rank_rngs(
    seed: int, tag: str, epoch: int, device: str | torch.device = "cpu"
) -> tuple[np.random.Generator, torch.Generator]:
    """This rank's numpy and torch generators for ``epoch``: a pure function of seed, tag, rank and epoch.

    ``tag`` (e.g. the model's name) keeps two models fitted with the same seed (IRGAN and its BPR
    pre-training) from drawing the same streams.
    """
    rank = 0 if _CONTEXT is None else _CONTEXT.rank
    ss = np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(tag.encode()), rank, int(epoch)))
    np_ss, torch_ss = ss.spawn(2)
    torch_seed = int(torch_ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    return np.random.default_rng(np_ss), torch_generator(torch_seed, device)


# ---------------------------------------------------------------------------------------------- DDP
class _Dispatch(nn.Module):
    """Routes ``forward(method, *args)`` to ``inner.method(*args)``.

    DDP arms its gradient all-reduce in ``forward``; the scorers here are called through named methods
    (``bpr_terms``, ``scores``...), so this is how one such call per step goes through DDP.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, method: str, *args: Any) -> Any:
        return getattr(self.inner, method)(*args)


def wrap(module: nn.Module, *, find_unused_parameters: bool = False) -> DistributedDataParallel:
    """``module`` in DDP, called as ``ddp("method", *args)`` (see :class:`_Dispatch`).

    The wrapper shares ``module``'s parameters: optimisers, checkpoints and scoring keep using
    ``module`` itself; only the training step whose gradients must be averaged goes through the wrapper.
    ``find_unused_parameters`` costs a graph traversal per step; the models here touch every parameter
    in every step, so it stays off.
    """
    if _CONTEXT is None:
        raise RuntimeError("distributed.wrap needs a joined process group (distributed.init)")
    dev = _CONTEXT.device
    return DistributedDataParallel(
        _Dispatch(module),
        device_ids=[dev.index] if dev.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
    )
