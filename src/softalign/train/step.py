"""What the training loop does at a step: pick the batch, take the optimizer step, record
metrics, and validate.

The batch order is deterministic (seed and epoch), so a resumed run sees the batches a
straight run would. Under torchrun every rank builds the same global batch and trains on its
share; rank 0 validates and writes ``metrics.jsonl``, and every rank acts on its verdict.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

import torch

from softalign import checkpoint as ckpt
from softalign.data.batching import collate, drop_words, token_batches
from softalign.data.binarized import sequence_lengths
from softalign.decoding.search import decode_ids
from softalign.errors import SoftalignError
from softalign.loss import corpus_loss
from softalign.metrics import score_corpus
from softalign.train import distributed
from softalign.train.optim import set_lr
from softalign.train.session import Session, save

log = logging.getLogger("softalign")


def write_metrics(session: Session, record: dict[str, Any]) -> None:
    """Append one record to ``metrics.jsonl`` (rank 0 only), and to TensorBoard's files."""
    if not session.ranks.is_main:
        return
    if session.tensorboard is not None:
        session.tensorboard.write(record)
    path = session.run_dir / "metrics.jsonl"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise SoftalignError(f"{path}: cannot write ({exc.strerror or exc})") from None


def trim_metrics(session: Session) -> None:
    """On resume, drop the ``metrics.jsonl`` rows past the restored step (written after the
    checkpoint by a run that was then killed) and any torn last line, so that the steps the
    resumed run does again are not recorded twice. Atomic: rewritten via a temporary file."""
    path = session.run_dir / "metrics.jsonl"
    if not session.ranks.is_main or not path.is_file():
        return
    kept, dropped = [], 0
    try:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            step = record.get("step") if isinstance(record, dict) else None
            if isinstance(step, int) and step <= session.state.step:
                kept.append(line)
            else:
                dropped += 1
        if dropped:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
            os.replace(tmp, path)
    except OSError as exc:
        raise SoftalignError(f"{path}: cannot rewrite ({exc.strerror or exc})") from None
    if dropped:
        log.info("%s: dropped %d rows past step %d", path.name, dropped, session.state.step)


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
        batch = collate(part or indices[:1], train.src, train.tgt)
        batch = drop_words(batch, session.config.training.word_dropout).to(session.device)
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
    state = session.state
    set_lr(session.optimizer, session.schedule.lr(state.step + 1, state.elapsed_seconds))
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
            precision=cfg.decoding.precision,
            attention=False,
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
