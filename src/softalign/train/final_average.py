"""The end of a run: the average of its last checkpoints, how many chosen on validation.

With ``training.average_last: N`` (0 = off), once training stops rank 0 averages the newest
``K = 1 … N`` checkpoints and keeps the ``K`` whose mean weights have the lowest validation
loss (teacher-forced, unsmoothed)::

    θ̄_K = (1/K) Σ_{k<K} θ_{n-k}          K* = argmin_K loss_valid(θ̄_K)

``K* = 1`` is the last checkpoint itself, so averaging never makes validation worse. The
winner is written to ``RUN/averaged``: a run directory (config, vocabularies, one checkpoint)
that ``translate``, ``evaluate`` and ``serve`` load like any other (see ``average.py``); the
choice is logged and recorded in ``metrics.jsonl``. The run's own checkpoints are untouched,
so it resumes as before (and a resumed run averages again at its end).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from softalign import checkpoint as ckpt
from softalign.average import AVERAGED_DIR, average_tensors, save_average
from softalign.loss import corpus_loss
from softalign.train.session import Session
from softalign.train.step import write_metrics

log = logging.getLogger("softalign")


def validation_loss(session: Session, weights: dict[str, torch.Tensor]) -> float:
    session.model.load_state_dict(weights)
    valid, cfg = session.valid, session.config.training
    loss, _ = corpus_loss(session.model, valid.src, valid.tgt, cfg.batch_tokens, session.device)
    return loss


def average_at_the_end(session: Session) -> Path | None:
    """Average the last checkpoints (see the module docstring); the written directory, or
    None when averaging is off, there are fewer than 2 checkpoints, or on ranks other than 0."""
    wanted = session.config.training.average_last
    paths = ckpt.list_checkpoints(session.run_dir)[-wanted:] if wanted else []
    if not session.ranks.is_main or len(paths) < 2:
        return None
    tensors = [ckpt.load_tensors(p, "model.safetensors", ckpt.read_state(p)) for p in paths]
    trained = {name: value.clone() for name, value in session.model.state_dict().items()}
    losses, best, best_mean = {}, 0, None
    for k in range(1, len(paths) + 1):
        mean = average_tensors(tensors[-k:])
        losses[k] = validation_loss(session, mean)
        if best_mean is None or losses[k] < losses[best]:
            best, best_mean = k, mean
    session.model.load_state_dict(trained)
    output = session.run_dir / AVERAGED_DIR
    if output.exists():  # from before a resume: replaced by this run's average
        shutil.rmtree(output)
    save_average(session.run_dir, output, paths[-best:], best_mean)
    log.info(
        "averaged the last %d of %d checkpoints into %s (valid_loss by K: %s)",
        best,
        len(paths),
        output,
        ", ".join(f"{k}: {loss:.4f}" for k, loss in losses.items()),
    )
    record = {"averaged_last": best, "averaged_valid_loss": losses[best]}
    write_metrics(session, {"step": session.state.step, **record})
    return output
