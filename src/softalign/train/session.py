"""A training session: the objects the loop works on, its progress, and its checkpoints.

:func:`save` writes everything a resume needs (weights, optimizer, schedule, loss scale, every
rank's RNG, the :class:`TrainState`, the whole configuration) as one checkpoint of the run
directory; :func:`restore` puts one back into a freshly prepared :class:`Session`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from softalign import checkpoint as ckpt
from softalign.config import RunConfig
from softalign.data.batching import BatchPlan
from softalign.data.dataset import EncodedSplit
from softalign.errors import CheckpointError
from softalign.model.seq2seq import Seq2Seq
from softalign.precision import Precision
from softalign.train import distributed
from softalign.train.distributed import Ranks
from softalign.train.optim import optimizer_from_flat, optimizer_to_flat
from softalign.train.schedules import Schedule
from softalign.train.tensorboard import TensorBoardLog

log = logging.getLogger("softalign")


@dataclass
class TrainState:
    """Progress that a checkpoint must carry besides tensors (all JSON)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # index of the next batch of this epoch
    elapsed_seconds: float = 0.0
    best_metric: float | None = None
    bad_validations: int = 0
    nonfinite_in_row: int = 0
    nonfinite_total: int = 0
    stopped: str = ""  # why training ended, once it has


@dataclass
class Session:
    """Everything the loop works on, built once by :func:`prepare`."""

    config: RunConfig
    run_dir: Path
    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    train: EncodedSplit
    valid: EncodedSplit
    tgt_vocab: Any
    device: torch.device
    ranks: Ranks  # this process among the training processes (rank 0 of 1 without torchrun)
    objective: torch.nn.Module  # model + loss, DDP-wrapped with several ranks
    precision: Precision
    state: TrainState = field(default_factory=TrainState)
    epoch_batches: tuple[int, BatchPlan | None] = (-1, None)  # cached (epoch, global batches)
    saved_step: int = -1  # step of the last checkpoint written or restored
    tensorboard: TensorBoardLog | None = None  # RUN/tb, with training.tensorboard (rank 0)


def save(session: Session) -> Path | None:
    """Write a checkpoint (rank 0; every rank must call it). Returns its path on rank 0."""
    rng = distributed.rng_states(session.ranks)  # every rank's, gathered on all
    session.saved_step = session.state.step
    if not session.ranks.is_main:
        distributed.barrier(session.ranks)
        return None
    optim_tensors, groups = optimizer_to_flat(session.optimizer)
    optim_tensors.update(rng)
    state = {
        "train": dataclasses.asdict(session.state),
        "schedule": session.schedule.state_dict(),
        "param_groups": groups,
        "model_config": dataclasses.asdict(session.config.model),
        "config": session.config.to_dict(),  # what resume compares RUN/config.yaml with
        "precision": session.precision.state_dict(),
    }
    path = ckpt.save_checkpoint(
        session.run_dir, session.state.step, session.model.state_dict(), optim_tensors, state
    )
    ckpt.prune(session.run_dir, session.config.training.keep_checkpoints)
    distributed.barrier(session.ranks)
    return path


def restore(session: Session, loaded: ckpt.Loaded) -> None:
    """Put a checkpoint's training state back (``ckpt.load_newest_intact``): optimizer,
    schedule, counters, loss scale and RNG. The weights came with the model, built by
    :func:`~softalign.loading.load_model` like a translator's."""
    path, state, extra = loaded.path, loaded.state, loaded.extra  # the weights: load_model
    try:  # a state.json from another version, or edited by hand
        optimizer_from_flat(session.optimizer, extra, state["param_groups"])
        session.schedule.load_state_dict(state["schedule"])
        session.state = TrainState(**state["train"])
        session.precision.load_state_dict(state.get("precision", {}))
        distributed.restore_rng(extra, session.ranks, session.config.training.seed)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise CheckpointError(f"{path}: incompatible checkpoint state ({reason})") from None
    session.state.stopped = ""
    session.saved_step = session.state.step
    log.info("resumed from %s (step %d)", path, session.state.step)
