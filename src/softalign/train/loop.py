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
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from softalign import checkpoint as ckpt
from softalign.backend import apply_backend, choose_backend
from softalign.config import RunConfig, load_config
from softalign.data.dataset import seen_ids
from softalign.errors import CheckpointError, Interrupted, SoftalignError
from softalign.loading import load_model
from softalign.model.seq2seq import build_model
from softalign.precision import Precision
from softalign.train import distributed, resume_config
from softalign.train.distributed import Ranks
from softalign.train.final_average import average_at_the_end
from softalign.train.inputs import load_data
from softalign.train.interrupts import StopFlag, remove_new_files
from softalign.train.optim import build_optimizer
from softalign.train.resume_config import ResumeRequest
from softalign.train.schedules import build_schedule
from softalign.train.session import Session, TrainState, restore, save
from softalign.train.step import (
    next_batch,
    train_step,
    trim_metrics,
    validation_round,
    write_metrics,
)
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


def generator_words(config: RunConfig, train_tgt, tgt_vocab_size: int) -> torch.Tensor | None:
    """The target ids the generator of a new run scores (None: all): with ``output_vocab:
    seen``, the ids seen in its training targets. (A resumed run keeps its checkpoint's,
    whatever the data or ``model.output_vocab`` say now: ``load_model`` reads them.)"""
    if config.model.output_vocab == "seen":
        return torch.tensor(seen_ids(train_tgt, tgt_vocab_size))
    return None


def checkpoint_to_resume(
    config: RunConfig, run_dir: Path, request: ResumeRequest | None
) -> tuple[ckpt.Loaded, list[str]]:
    """The newest intact checkpoint, and the keys whose value ``config`` changes from it
    (after :func:`resume_config.check` has refused any forbidden change)."""
    start = ckpt.load_newest_intact(run_dir, log.warning)
    if start is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from")
    if "averaged_from" in start.state:
        raise CheckpointError(
            f"{start.path}: averaged weights (softalign average) without optimizer state: "
            "they decode but cannot be trained further"
        )
    if request is None:
        return start, []
    return start, resume_config.check(request, config, start.state.get("config"))


def prepare(
    config: RunConfig, run_dir: Path, resume: bool, request: ResumeRequest | None = None
) -> Session:
    """Read data, build or load vocabularies, model and optimizer (and the checkpoint).

    On resume, ``request`` (``RUN/config.yaml`` as saved and the ``--set`` keys) is checked
    against the checkpoint; an allowed change is logged, checkpointed and written back."""
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
    start, changed = checkpoint_to_resume(config, run_dir, request) if resume else (None, [])
    precision = Precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    train, valid, src_vocab, tgt_vocab = load_data(config, run_dir, resume, ranks)
    m = config.model
    log.info(
        "building the model: %s encoder-decoder, %s attention, %s backend on %s",
        m.rnn_type.upper(),
        m.attention,
        choose_backend(cfg.backend, device),
        device,
    )
    if start is None:
        output_ids = generator_words(config, train.tgt, len(tgt_vocab))
        model = build_model(config.model, len(src_vocab), len(tgt_vocab), output_ids)
        model = apply_backend(model, cfg.backend, device).to(device)
    else:  # the loader Translator uses, on the checkpoint already read and verified
        model = load_model(
            start.path,
            config.model,
            len(src_vocab),
            len(tgt_vocab),
            device=device,
            backend=cfg.backend,
            state=start.state,
            tensors=start.model,
        )
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
        build_schedule(config.training),
        train,
        valid,
        tgt_vocab,
        device,
        ranks,
        distributed.wrap(model, cfg.label_smoothing, ranks),
        precision,
    )
    if start is not None:
        restore(session, start)
        trim_metrics(session)
        if changed:  # a checkpoint from before configs were stored: compare with the file
            trained = start.state.get("config") or (request.saved.to_dict() if request else {})
            write_back(session, changed, trained, request)
    if cfg.tensorboard and ranks.is_main:  # a resumed run hides the events past its step
        resumed_at = None if start is None else session.state.step + 1
        session.tensorboard = TensorBoardLog(run_dir / "tb", purge_step=resumed_at)
    return session


def write_back(
    session: Session, changed: list[str], trained: dict[str, Any], request: ResumeRequest | None
) -> None:
    """Log a change made with ``--set`` on resume, save it in the restored step's checkpoint,
    then into ``RUN/config.yaml`` (atomically)."""
    log.info(
        "resume with changed settings: %s",
        resume_config.describe(changed, trained, session.config),
    )
    save(session)
    if session.ranks.is_main and request is not None:
        resume_config.write_config_atomic(session.config, request.config_path)


# ---------------------------------------------------------------------------- the loop


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


def save_in_budget(session: Session) -> None:
    """Write a checkpoint and count the time it took in the run's clock (``max_minutes`` and
    the budget schedules see it): rank 0's time, so every rank keeps the same clock."""
    started = time.perf_counter()
    save(session)
    seconds = distributed.from_main(time.perf_counter() - started, session.ranks)
    session.state.elapsed_seconds += seconds


def run(
    session: Session,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    stop: StopFlag | None = None,
    on_step: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Train until a step, time, epoch or early-stopping limit, or a stop signal.

    ``on_step`` (rank 0) is called with the state after every completed step, e.g. to
    measure the step rate; it must not change the state.
    """
    if stop is None:
        with StopFlag() as own:
            return _loop(session, own, max_steps, checkpoint_every, progress, on_step)
    stop.raising = False  # from here a signal stops the loop after a checkpoint
    return _loop(session, stop, max_steps, checkpoint_every, progress, on_step)


def _loop(
    session: Session,
    stop: StopFlag,
    max_steps: int | None,
    checkpoint_every: int | None,
    progress: bool,
    on_step: Callable[[TrainState], None] | None = None,
) -> TrainState:
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
    with logging_redirect_tqdm([log]):
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
            if on_step is not None and result is not None and session.ranks.is_main:
                on_step(state)
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
                save_in_budget(session)
        bar.close()
        state.stopped = state.stopped or reason
        if session.saved_step != state.step:
            save_in_budget(session)
        if not state.stopped.startswith("interrupted"):  # a signal wants the process to end
            average_at_the_end(session)
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
    on_step: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Start a new run in ``run_dir`` (which must not hold checkpoints yet).

    A signal during start-up (data, vocabulary training) removes what this start wrote, so
    the run directory is left as it was (or absent), then raises
    :class:`~softalign.errors.Interrupted`; during training it stops after a checkpoint.
    """
    if ckpt.list_checkpoints(run_dir):
        raise SoftalignError(f"{run_dir}: already holds a run; use --resume to continue it")
    before = set(os.listdir(run_dir)) if run_dir.is_dir() else None
    with distributed.leaving_at_the_end(), StopFlag(raising=True) as stop:
        try:
            session = prepare(config, run_dir, resume=False)
        except BaseException as exc:
            if not stop.requested:
                raise
            remove_new_files(run_dir, before)
            if isinstance(exc, Interrupted):
                raise
            # SentencePiece may turn the signal's exception into its own error
            raise Interrupted(stop.signum) from None
        return run(session, max_steps, checkpoint_every, progress, stop, on_step)


def resume(
    run_dir: Path,
    *,
    max_steps: int | None = None,
    checkpoint_every: int | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    on_step: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Continue the run in ``run_dir`` from its newest intact checkpoint.

    ``overrides`` may change only the keys :mod:`~softalign.train.resume_config` allows;
    a changed ``RUN/config.yaml`` is refused (see there)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    overrides = overrides or []
    request = ResumeRequest(path, load_config(path), resume_config.set_keys(overrides))
    config = load_config(path, overrides)
    with distributed.leaving_at_the_end(), StopFlag(raising=True) as stop:
        session = prepare(config, run_dir, resume=True, request=request)
        return run(session, max_steps, checkpoint_every, progress, stop, on_step)
