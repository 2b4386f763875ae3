"""Data-parallel training over processes (torchrun), and how a step's batch is shared out.

``torchrun --nproc-per-node N -m softalign train ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`start` joins them into one process group (NCCL
on CUDA, gloo on the CPU) and gives each rank its device (``cuda:LOCAL_RANK`` on GPUs).

One optimizer step consumes one *global* batch, ``token_batches(batch_tokens * W * A)`` for
W processes and A accumulation steps (``training.accumulate``). Every rank builds the same
global batches (same seed and epoch), cuts each into W·A contiguous micro-batches of about
``batch_tokens`` padded tokens, and trains on its own A of them (rank r: r·A … r·A+A-1).
Each micro-batch's summed loss is divided by the global batch's target-token count T, which
every rank knows without communicating, so after DDP's all-reduce (a mean over ranks, hence
the factor W) every rank holds

    g = Σ_{micro-batches m} ∇ loss_sum(m) / T

whatever the split: 2 processes × accumulate 1 train like 1 process × accumulate 2.
Validation, logging and checkpoint writing happen on rank 0; the other ranks receive the
validation metrics, so the learning-rate schedule and early stopping agree everywhere.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from softalign.data.batching import Batch
from softalign.device import pick_device
from softalign.errors import SoftalignError
from softalign.loss import batch_loss
from softalign.model.seq2seq import Seq2Seq


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes (1 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise SoftalignError(f"environment variable {name}={value!r} is not an integer") from None


def start(device_name: str) -> tuple[Ranks, torch.device]:
    """Join torchrun's process group (when ``WORLD_SIZE`` > 1) and pick this rank's device."""
    ranks = Ranks(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if not ranks.active:
        return ranks, pick_device(device_name)
    if device_name in ("auto", "cuda") and torch.cuda.is_available():
        device = torch.device("cuda", ranks.local_rank)  # one GPU per process
    else:
        device = pick_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # the other ranks wait while rank 0 validates: allow a long validation
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
    return ranks, device


# Process groups left at the end of a run, kept alive until the interpreter exits (see stop).
_RETIRED: list[Any] = []


def stop(finished: bool = True) -> None:
    """Leave the process group (no-op without one); after a ``finished`` run, once every rank
    has arrived here (after a failure, at once: the other ranks may never arrive, and
    torchrun stops them when this process exits).

    The group is unregistered but its C++ object is not destroyed now: gloo's destructor
    joins its worker threads while holding the GIL, and a worker may still be freeing the
    last collective's tensors, which takes the GIL, so both wait forever. (That deadlock hung
    one 2-process run in about ten on a loaded 2-core machine: the DDP model's reducer,
    freed when training returned, held the last reference.) Kept in ``_RETIRED``, the group
    dies with the process, when its threads are long idle.
    """
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        _RETIRED.append(dist.distributed_c10d._get_default_group())
        dist.destroy_process_group()


@contextlib.contextmanager
def leaving_at_the_end() -> Iterator[None]:
    """Run the body, then :func:`stop` (``finished`` unless the body raised)."""
    try:
        yield
    except BaseException:
        stop(finished=False)
        raise
    stop(finished=True)


# --------------------------------------------------------------------------- sharding


def split_batch(indices: Sequence[int], parts: int) -> list[list[int]]:
    """Cut a batch into ``parts`` contiguous micro-batches of (nearly) equal size.

    A batch comes sorted by length, so contiguous pieces waste little padding. With fewer
    examples than parts, the last micro-batches are empty.
    """
    return [chunk.tolist() for chunk in np.array_split(np.asarray(indices, dtype=np.int64), parts)]


def my_micro_batches(indices: Sequence[int], ranks: Ranks, accumulate: int) -> list[list[int]]:
    """The ``accumulate`` micro-batches of a global batch that this rank trains on."""
    parts = split_batch(indices, ranks.world_size * accumulate)
    return parts[ranks.rank * accumulate : (ranks.rank + 1) * accumulate]


def target_tokens(indices: Sequence[int], tgt_ids: Sequence[Sequence[int]]) -> int:
    """Target tokens the loss is summed over (each sentence plus its EOS)."""
    return sum(len(tgt_ids[i]) + 1 for i in indices)


# ------------------------------------------------------------------- the wrapped model


class Objective(nn.Module):
    """The training loss as a module, so DDP can wrap it: ``forward(batch) -> (loss, tokens)``.

    Parameter names are the model's with a ``model.`` prefix; checkpoints save the model.
    """

    def __init__(self, model: Seq2Seq, label_smoothing: float) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing

    def forward(self, batch: Batch) -> tuple[torch.Tensor, int]:
        return batch_loss(self.model, batch, self.label_smoothing)


def wrap(model: Seq2Seq, label_smoothing: float, ranks: Ranks) -> nn.Module:
    """The loss module the training step calls; DDP-wrapped when there are several ranks.

    No ``device_ids``: the loop moves each batch itself (DDP would otherwise also move the
    source lengths, which packed sequences need on the CPU).
    """
    objective = Objective(model, label_smoothing)
    return DistributedDataParallel(objective) if ranks.active else objective


def gradient_sync(objective: nn.Module, last: bool) -> contextlib.AbstractContextManager:
    """Skip DDP's all-reduce on every micro-batch but the last of a step."""
    if isinstance(objective, DistributedDataParallel) and not last:
        return objective.no_sync()
    return contextlib.nullcontext()


# ----------------------------------------------------------------- collective helpers


def sum_over_ranks(value: torch.Tensor, ranks: Ranks) -> float:
    """The sum of a scalar tensor over all ranks (its own value with one rank)."""
    if ranks.active:
        value = value.detach().clone().double()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return float(value)


def agree_on_progress(
    elapsed: float, stop_requested: bool, ranks: Ranks, device: torch.device
) -> tuple[float, bool]:
    """The largest elapsed time and whether any rank was asked to stop, the same on every
    rank, so that all of them stop after the same step."""
    if not ranks.active:
        return elapsed, stop_requested
    values = torch.tensor([elapsed, float(stop_requested)], dtype=torch.float64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return float(values[0]), bool(values[1] > 0)


def from_main(value: Any, ranks: Ranks) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object)."""
    if not ranks.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ranks: Ranks) -> None:
    if ranks.active:
        dist.barrier()


@contextlib.contextmanager
def main_first(ranks: Ranks) -> Iterator[bool]:
    """Run a block on rank 0 first (it writes files), then on the others (they read them).

    Yields whether this rank is rank 0.
    """
    if not ranks.is_main:
        barrier(ranks)
    yield ranks.is_main
    if ranks.is_main:
        barrier(ranks)


# ------------------------------------------------------------------------ RNG states


def rng_states(ranks: Ranks) -> dict[str, torch.Tensor]:
    """Every rank's RNG states for the checkpoint: ``rng.torch`` (rank 0), ``rng.torch.rankR``.

    A collective call: every rank must make it; the result matters on rank 0.
    """
    mine = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        mine["rng.cuda"] = torch.cuda.get_rng_state()
    if not ranks.active:
        return mine
    gathered: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(gathered, mine)
    states = dict(gathered[0])
    for rank, theirs in enumerate(gathered[1:], start=1):
        states.update({f"{key}.rank{rank}": value for key, value in theirs.items()})
    return states


def restore_rng(states: dict[str, torch.Tensor], ranks: Ranks, seed: int) -> None:
    """Set this rank's RNG states from a checkpoint (a rank the run did not have before gets
    a fresh stream of its own)."""
    suffix = f".rank{ranks.rank}" if ranks.rank else ""
    if ranks.is_main or f"rng.torch{suffix}" in states:
        torch.set_rng_state(states[f"rng.torch{suffix}"])  # KeyError: an incomplete checkpoint
    else:
        torch.manual_seed(seed + 7919 * ranks.rank)
    if f"rng.cuda{suffix}" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states[f"rng.cuda{suffix}"])
