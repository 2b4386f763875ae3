"""The training loop: token batches, Adam with clipping, validation, checkpoints, resume.

A run directory is self-describing: ``config.yaml`` (resolved), the SentencePiece models,
``checkpoints/step-*`` (safetensors + JSON), ``best.json``, ``metrics.jsonl`` and
``train.log``. Resuming restores weights, optimizer, schedule, RNG and the data position, so
N steps + resume + N steps gives the same weights as 2N steps straight (on CPU).

Under torchrun the same loop runs in every process (see ``train/distributed.py``): each rank
trains on its share of every batch, rank 0 validates, logs and writes checkpoints.
Mixed precision is ``train/precision.py``; the data, raw or binarized, ``train/inputs.py``.

The session and its checkpoints are ``train/session.py``; the work of one step (batch,
optimizer step, metrics, validation) is ``train/step.py``.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from softalign import checkpoint as ckpt
from softalign.config import RunConfig, load_config
from softalign.data.dataset import seen_ids
from softalign.errors import CheckpointError, SoftalignError
from softalign.model.seq2seq import build_model
from softalign.precision import Precision
from softalign.train import distributed
from softalign.train.distributed import Ranks
from softalign.train.inputs import load_data
from softalign.train.optim import PlateauSchedule, build_optimizer
from softalign.train.session import Session, TrainState, restore, save
from softalign.train.step import next_batch, train_step, validation_round, write_metrics
from softalign.train.tensorboard import TensorBoardLog

log = logging.getLogger("softalign")


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


def generator_words(
    config: RunConfig, run_dir: Path, resume: bool, train_tgt, tgt_vocab_size: int
) -> torch.Tensor | None:
    """The target ids the generator scores (None: all). A resumed run keeps its checkpoint's,
    whatever the data or ``model.output_vocab`` say now; a new run with ``output_vocab: seen``
    takes the ids seen in its training targets."""
    if resume and (path := ckpt.latest_checkpoint(run_dir)) is not None:
        weights = ckpt.load_tensors(path, "model.safetensors", ckpt.read_state(path))
        return weights.get("output_ids")
    if config.model.output_vocab == "seen":
        return torch.tensor(seen_ids(train_tgt, tgt_vocab_size))
    return None


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
    output_ids = generator_words(config, run_dir, resume, train.tgt, len(tgt_vocab))
    model = build_model(config.model, len(src_vocab), len(tgt_vocab), output_ids).to(device)
    if ranks.active:  # same initial weights everywhere, but each rank its own dropout masks
        torch.manual_seed(cfg.seed + 7919 * ranks.rank)
    log.info(
        "model: %.2fM parameters; vocab %d/%d (%d output words); %d training pairs, "
        "%d validation pairs; %s" + (f"; {ranks.world_size} processes" if ranks.active else ""),
        sum(p.numel() for p in model.parameters()) / 1e6,
        len(src_vocab),
        len(tgt_vocab),
        model.generator.out_features,
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
    if cfg.tensorboard and ranks.is_main:
        session.tensorboard = TensorBoardLog(run_dir / "tb")
    if resume:
        restore(session)
    return session


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
    if session.tensorboard is not None:
        session.tensorboard.close()
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
