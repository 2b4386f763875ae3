"""The training loop: token batches, Adam with clipping, validation, checkpoints, resume.

A run directory is self-describing: ``config.yaml`` (resolved), the SentencePiece models,
``checkpoints/step-*`` (safetensors + JSON), ``best.json``, ``metrics.jsonl`` and
``train.log``. Resuming restores weights, optimizer, schedule, RNG and the data position, so
N steps + resume + N steps gives the same weights as 2N steps straight (on CPU).

Under torchrun the same loop runs in every process (see ``train/distributed.py``): each rank
trains on its share of every batch, rank 0 validates, logs and writes checkpoints.
Mixed precision is ``train/precision.py``; the data, raw or binarized, ``train/inputs.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from softalign.config import RunConfig, load_config
from softalign.data.batching import BatchPlan, collate, token_batches
from softalign.data.binarized import sequence_lengths
from softalign.data.dataset import EncodedSplit
from softalign.decoding.search import decode_ids
from softalign.errors import CheckpointError, SoftalignError
from softalign.evaluate import score_corpus
from softalign.model.seq2seq import Seq2Seq, build_model
from softalign.train import checkpoint as ckpt
from softalign.train import distributed
from softalign.train.distributed import Ranks
from softalign.train.inputs import load_data
from softalign.train.loss import corpus_loss
from softalign.train.optim import (
    PlateauSchedule,
    build_optimizer,
    optimizer_from_flat,
    optimizer_to_flat,
    set_lr,
)
from softalign.train.precision import Precision

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
    schedule: PlateauSchedule
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


def setup_logging(run_dir: Path, ranks: Ranks) -> None:
    """Rank 0 logs to ``train.log`` and stderr; other ranks print their warnings only."""
    log.setLevel(logging.INFO if ranks.is_main else logging.WARNING)
    for handler in list(log.handlers):
        if getattr(handler, "_softalign", False):
            log.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if ranks.is_main:
        handlers.append(logging.FileHandler(run_dir / "train.log", encoding="utf-8"))
    prefix = f"[rank {ranks.rank}] " if ranks.active else ""
    for handler in handlers:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(message)s", "%H:%M:%S"))
        handler._softalign = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.propagate = False


def prepare(config: RunConfig, run_dir: Path, resume: bool) -> Session:
    """Read data, build or load vocabularies, model and optimizer (and the checkpoint)."""
    cfg = config.training
    ranks, device = distributed.start(cfg.device)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(run_dir, ranks)
    except OSError as exc:
        raise SoftalignError(
            f"{run_dir}: cannot write the run directory ({exc.strerror})"
        ) from None
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # denormal floats make CPU matrix multiplies crawl
    precision = Precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    train, valid, src_vocab, tgt_vocab = load_data(config, run_dir, resume, ranks)
    model = build_model(config.model, len(src_vocab), len(tgt_vocab)).to(device)
    if ranks.active:  # same initial weights everywhere, but each rank its own dropout masks
        torch.manual_seed(cfg.seed + 7919 * ranks.rank)
    log.info(
        "model: %.2fM parameters; vocab %d/%d; %d training pairs, %d validation pairs; %s"
        + (f"; {ranks.world_size} processes" if ranks.active else ""),
        sum(p.numel() for p in model.parameters()) / 1e6,
        len(src_vocab),
        len(tgt_vocab),
        len(train),
        len(valid),
        device,
    )
    session = Session(
        config,
        run_dir,
        model,
        build_optimizer(model, config.training),
        PlateauSchedule.from_config(config.training),
        train,
        valid,
        tgt_vocab,
        device,
        ranks,
        distributed.wrap(model, cfg.label_smoothing, ranks),
        precision,
    )
    if resume:
        restore(session)
    return session


# ------------------------------------------------------------------------- checkpoints


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
        "precision": session.precision.state_dict(),
    }
    path = ckpt.save_checkpoint(
        session.run_dir, session.state.step, session.model.state_dict(), optim_tensors, state
    )
    ckpt.prune(session.run_dir, session.config.training.keep_checkpoints)
    distributed.barrier(session.ranks)
    return path


def restore(session: Session) -> None:
    path = ckpt.latest_checkpoint(session.run_dir)
    if path is None:
        raise CheckpointError(f"{session.run_dir}: no checkpoint to resume from")
    state = ckpt.read_state(path)
    ckpt.load_weights(session.model, ckpt.load_tensors(path, "model.safetensors", state), path)
    extra = ckpt.load_tensors(path, "optimizer.safetensors", state)
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


# -------------------------------------------------------------------------- validation


def validate(session: Session) -> dict[str, float]:
    model, valid, cfg = session.model, session.valid, session.config
    loss, ppl = corpus_loss(model, valid.src, valid.tgt, cfg.training.batch_tokens, session.device)
    metrics = {"valid_loss": loss, "valid_ppl": ppl}
    if cfg.training.valid_bleu:
        found = decode_ids(
            model,
            valid.src,
            beam=1,
            max_length_ratio=cfg.decoding.max_length_ratio,
            max_length=cfg.decoding.max_length,
            batch_tokens=cfg.decoding.batch_tokens,
            device=session.device,
        )
        hyps = session.tgt_vocab.decode([h[0].tokens if h else [] for h in found])
        metrics["valid_bleu"] = score_corpus(hyps, valid.text.tgt).bleu
    return metrics


def validation_round(session: Session) -> None:
    """Validate on rank 0, record the metrics, and let every rank act on them."""
    state = session.state
    started = time.perf_counter()
    metrics = validate(session) if session.ranks.is_main else None
    # rank 0's metrics and time, so that every rank decides alike from here on
    metrics, seconds = distributed.from_main(
        (metrics, time.perf_counter() - started), session.ranks
    )
    state.elapsed_seconds += seconds
    write_metrics(
        session, {"step": state.step, **metrics, "elapsed_s": round(state.elapsed_seconds, 1)}
    )
    log.info("step %d: %s", state.step, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    after_validation(session, metrics)


def after_validation(session: Session, metrics: dict[str, float]) -> None:
    """Update the schedule, the best checkpoint and early stopping."""
    cfg, state = session.config.training, session.state
    session.schedule.on_validation(metrics["valid_loss"])
    use_bleu = cfg.early_stopping_metric == "bleu" and "valid_bleu" in metrics
    value = metrics["valid_bleu"] if use_bleu else -metrics["valid_loss"]  # higher is better
    if state.best_metric is None or value > state.best_metric:
        state.best_metric, state.bad_validations = value, 0
        path = save(session)
        if path is not None:  # rank 0
            ckpt.mark_best(session.run_dir, path, {"step": state.step, **metrics})
    else:
        state.bad_validations += 1
        if cfg.early_stopping_patience and state.bad_validations >= cfg.early_stopping_patience:
            state.stopped = f"early stopping after {state.bad_validations} validations"


# ---------------------------------------------------------------------------- the loop


class StopFlag:
    """SIGINT/SIGTERM ask the loop to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.requested = ""
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def write_metrics(session: Session, record: dict[str, Any]) -> None:
    """Append one record to ``metrics.jsonl`` (rank 0 only)."""
    if not session.ranks.is_main:
        return
    path = session.run_dir / "metrics.jsonl"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise SoftalignError(f"{path}: cannot write ({exc.strerror or exc})") from None


def accumulate_gradients(session: Session, indices: list[int], tokens: int) -> torch.Tensor:
    """Forward and backward over this rank's micro-batches of a global batch.

    Each micro-batch's summed loss is divided by ``tokens``, the global batch's target-token
    count (times the world size, which DDP's gradient mean divides out again). Returns this
    rank's summed loss (a 0-dim tensor, not divided).
    """
    train, ranks = session.train, session.ranks
    parts = distributed.my_micro_batches(indices, ranks, session.config.training.accumulate)
    loss_sum = torch.zeros((), device=session.device)
    for k, part in enumerate(parts):
        weight = 1.0 if part else 0.0  # an empty share still joins DDP's all-reduce
        batch = collate(part or indices[:1], train.src, train.tgt).to(session.device)
        with distributed.gradient_sync(session.objective, last=k == len(parts) - 1):
            with session.precision.autocast():
                loss, _ = session.objective(batch)
            session.precision.backward(loss / tokens * (weight * ranks.world_size))
        loss_sum = loss_sum + weight * loss.detach()
    return loss_sum


def train_step(session: Session, indices: list[int]) -> tuple[float, int] | None:
    """One optimizer step on one global batch; None when the loss or its gradient was not
    finite (skipped). Returns (mean token loss, target tokens) over the global batch."""
    cfg = session.config.training
    session.optimizer.zero_grad(set_to_none=True)
    tokens = distributed.target_tokens(indices, session.train.tgt)
    local_loss = accumulate_gradients(session, indices, tokens)
    loss = distributed.sum_over_ranks(local_loss, session.ranks) / tokens
    session.precision.unscale(session.optimizer)
    max_norm = cfg.clip_norm if cfg.clip_norm > 0 else float("inf")  # inf: measure, no clip
    norm = torch.nn.utils.clip_grad_norm_(session.model.parameters(), max_norm)
    # a finite loss can still have an inf/NaN gradient (the same verdict on every rank)
    if not (math.isfinite(loss) and torch.isfinite(norm)):
        session.optimizer.zero_grad(set_to_none=True)
        session.precision.skip()
        return None
    set_lr(session.optimizer, session.schedule.lr(session.state.step + 1))
    session.precision.step(session.optimizer)
    return loss, tokens


def next_batch(session: Session) -> list[int]:
    """The next global batch of the deterministic epoch order, advancing the data position.

    A global batch holds ``batch_tokens`` per micro-batch, times the micro-batches of all
    processes (``world_size * accumulate``); every rank builds the same ones.
    """
    state, cfg = session.state, session.config.training
    while True:
        if session.epoch_batches[0] != state.epoch:
            session.epoch_batches = (
                state.epoch,
                token_batches(
                    sequence_lengths(session.train.src),
                    sequence_lengths(session.train.tgt),
                    cfg.batch_tokens * cfg.accumulate * session.ranks.world_size,
                    seed=cfg.seed,
                    epoch=state.epoch,
                ),
            )
        batches = session.epoch_batches[1]
        if state.batch_in_epoch < len(batches):
            state.batch_in_epoch += 1
            return batches[state.batch_in_epoch - 1]
        state.epoch, state.batch_in_epoch = state.epoch + 1, 0


def advance_bar(bar: tqdm, by_time: bool, state: TrainState) -> None:
    """Move the progress bar: one step, or up to the seconds of the time budget used."""
    if by_time:
        bar.update(max(0, min(round(state.elapsed_seconds), bar.total) - bar.n))
    else:
        bar.update(1)


def stop_reason(session: Session, max_steps: int) -> str:
    cfg, state = session.config.training, session.state
    if state.stopped:
        return state.stopped
    if state.step >= max_steps:
        return f"reached {max_steps} steps"
    if cfg.max_minutes and state.elapsed_seconds >= cfg.max_minutes * 60:
        return f"time budget of {cfg.max_minutes:g} minutes used"
    if cfg.max_epochs and state.epoch >= cfg.max_epochs:
        return f"completed {cfg.max_epochs} epochs"
    return ""


def run(
    session: Session,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
) -> TrainState:
    """Train until a step, time, epoch or early-stopping limit, or a stop signal."""
    cfg, state = session.config.training, session.state
    max_steps = max_steps or cfg.max_steps
    checkpoint_every = checkpoint_every or cfg.checkpoint_every
    session.model.train()
    window_tokens, window_loss, window_steps, window_start = 0, 0.0, 0, time.perf_counter()
    # with a time budget the bar counts seconds (its ETA is the budget), else steps
    by_time = cfg.max_minutes > 0
    bar = tqdm(
        total=round(cfg.max_minutes * 60) if by_time else max_steps,
        initial=min(round(state.elapsed_seconds), round(cfg.max_minutes * 60))
        if by_time
        else state.step,
        unit="s" if by_time else "step",
        disable=not progress or not session.ranks.is_main,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    with StopFlag() as stop, logging_redirect_tqdm([log]):
        while not (reason := stop_reason(session, max_steps)):
            started = time.perf_counter()
            result = train_step(session, next_batch(session))
            if result is None and session.precision.overflow_is_expected():
                log.info("step %d: fp16 gradient overflow, loss scale lowered", state.step + 1)
            elif result is None:
                state.nonfinite_in_row += 1
                state.nonfinite_total += 1
                log.warning(
                    "step %d: non-finite loss, step skipped (%d in a row)",
                    state.step + 1,
                    state.nonfinite_in_row,
                )
                if state.nonfinite_in_row >= cfg.max_nonfinite_steps:
                    state.stopped = (
                        f"{state.nonfinite_in_row} non-finite losses in a row: "
                        "check the learning rate and data"
                    )
                    state.elapsed_seconds += time.perf_counter() - started
                    break
            else:
                state.nonfinite_in_row = 0
                state.step += 1
                window_loss += result[0] * result[1]
                window_tokens += result[1]
                window_steps += 1
                advance_bar(bar, by_time, state)
            state.elapsed_seconds += time.perf_counter() - started
            state.elapsed_seconds, stop_requested = distributed.agree_on_progress(
                state.elapsed_seconds, bool(stop.requested), session.ranks, session.device
            )
            if window_steps and (state.step % cfg.log_every == 0):
                seconds = time.perf_counter() - window_start
                record = {
                    "step": state.step,
                    "train_loss": window_loss / window_tokens,
                    "tokens_per_s": window_tokens / seconds,
                    "lr": session.optimizer.param_groups[0]["lr"],
                    "epoch": state.epoch,
                    "elapsed_s": round(state.elapsed_seconds, 1),
                }
                write_metrics(session, record)
                postfix = {
                    "loss": f"{record['train_loss']:.3f}",
                    "tok/s": f"{record['tokens_per_s']:.0f}",
                    "ep": state.epoch,
                    "step": state.step,
                }
                if cfg.max_minutes:
                    left = max(0.0, cfg.max_minutes * 60 - state.elapsed_seconds)
                    postfix["left"] = time.strftime("%M:%S", time.gmtime(left))
                bar.set_postfix(postfix)
                window_tokens, window_loss, window_steps = 0, 0.0, 0
                window_start = time.perf_counter()
            if stop_requested:
                state.stopped = f"interrupted by {stop.requested or 'a signal to another rank'}"
                break
            if result is not None and state.step % cfg.valid_every == 0:
                validation_round(session)
                window_start = time.perf_counter()
            if result is not None and state.step % checkpoint_every == 0:
                save(session)
        bar.close()
        state.stopped = state.stopped or reason
        if session.saved_step != state.step:
            save(session)
        log.info("stopped at step %d: %s", state.step, state.stopped)
    return state


def train(
    config: RunConfig,
    run_dir: Path,
    *,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
) -> TrainState:
    """Start a new run in ``run_dir`` (which must not hold checkpoints yet)."""
    if ckpt.list_checkpoints(run_dir):
        raise SoftalignError(f"{run_dir}: already holds a run; use --resume to continue it")
    try:
        return run(prepare(config, run_dir, resume=False), max_steps, checkpoint_every, progress)
    finally:
        distributed.stop()


def resume(
    run_dir: Path,
    *,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> TrainState:
    """Continue the run in ``run_dir`` from its latest checkpoint."""
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    config = load_config(run_dir / "config.yaml", overrides)
    try:
        return run(prepare(config, run_dir, resume=True), max_steps, checkpoint_every, progress)
    finally:
        distributed.stop()
