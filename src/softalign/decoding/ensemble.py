"""Ensembles: several models decoding as one, their next-word probabilities averaged.

    p(y | y_<t, x) = (1/M) Σ_m p_m(y | y_<t, x)        (in log space: logsumexp - log M)

:class:`Ensemble` offers what the searches call on a model (``start``, ``step``,
``step_best``, ``output_words``, ``output_rows``, ``output_ids``) and builds it only on each
member's public API: ``start``, ``step`` (log-probabilities over the member's generator rows),
``output_ids`` (the vocabulary id of each row) and the :class:`DecoderState`'s
``select``/``repeat``, ``decoding`` and ``worth_compacting``. Greedy and beam search,
prefixes included, run on it unchanged, whichever backend computes each member (the fast
backend's per-search state is each member's own, opened together in :meth:`decoding`).
The members must share the source and target vocabularies (:func:`load_ensemble` checks);
each may predict a different subset of the target words (``model.output_vocab: seen``): a
member gives probability 0 to the words it has no generator row for. Attention weights are
the members' mean (all members must have attention for the ensemble to report any).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from softalign.errors import SoftalignError


@dataclass
class EnsembleState:
    """One decoder state per member, moved together."""

    states: list[Any]

    def select(self, rows: torch.Tensor, sources: torch.Tensor | None = None) -> EnsembleState:
        return EnsembleState([s.select(rows, sources) for s in self.states])

    def repeat(self, times: int) -> EnsembleState:
        return EnsembleState([s.repeat(times) for s in self.states])


class Ensemble(nn.Module):
    """Members decoding together; columns of the log-probabilities are vocabulary ids."""

    output_ids = None  # columns are vocabulary ids (for BeamSearch)

    def __init__(self, models: Sequence[nn.Module], vocab_size: int) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)
        self.vocab_size = vocab_size

    def start(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EnsembleState:
        """Every member encodes src (batch, src_len)."""
        return EnsembleState([m.start(src, src_lengths) for m in self.members])

    def _vocabulary_columns(self, model: nn.Module, log_probs: torch.Tensor) -> torch.Tensor:
        """(rows, output rows of ``model``) -> (rows, vocab), -inf at words it cannot output."""
        ids = model.output_ids
        if ids is None and log_probs.size(-1) == self.vocab_size:
            return log_probs
        if ids is None:
            ids = torch.arange(log_probs.size(-1), device=log_probs.device)
        full = log_probs.new_full((log_probs.size(0), self.vocab_size), float("-inf"))
        return full.index_copy_(1, ids, log_probs)

    def step(
        self, tokens: torch.Tensor, state: EnsembleState
    ) -> tuple[torch.Tensor, torch.Tensor | None, EnsembleState]:
        """Log of the members' mean probabilities (rows, vocab) of the word after ``tokens``
        (rows,), the mean attention (rows, src_len) or None, and the new state."""
        log_probs, weights, states = [], [], []
        for model, member_state in zip(self.members, state.states, strict=True):
            scores, attention, new_state = model.step(tokens, member_state)
            log_probs.append(self._vocabulary_columns(model, scores.float()))
            weights.append(attention)
            states.append(new_state)
        mean = torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(self.members))
        attention = None
        if all(w is not None for w in weights):
            attention = torch.stack([w.float() for w in weights]).mean(dim=0)
        return mean, attention, EnsembleState(states)

    def step_best(
        self, tokens: torch.Tensor, state: EnsembleState, k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, EnsembleState]:
        """The ``k`` best next words: (rows, k) log-probabilities, best first, and their ids."""
        log_probs, attention, state = self.step(tokens, state)
        scores, ids = log_probs.topk(min(k, log_probs.size(-1)), dim=-1)
        return scores, ids, attention, state

    def decoding(self, cache: dict | None = None) -> contextlib.AbstractContextManager:
        """Every member's search context (see ``Seq2Seq.decoding``), ``cache`` shared: a
        backend keys what it keeps there by the member's own parameters."""
        stack = contextlib.ExitStack()
        for model in self.members:
            stack.enter_context(model.decoding(cache))
        return stack

    def worth_compacting(self, rows: int, left: int) -> bool:
        """Drop ended rows when every member finds it worth it."""
        return all(model.worth_compacting(rows, left) for model in self.members)

    def output_words(self, rows: torch.Tensor) -> torch.Tensor:
        return rows

    def output_rows(self, ids: torch.Tensor) -> torch.Tensor:
        return ids


def _pieces(vocab) -> list[str]:
    return vocab.pieces(list(range(len(vocab))))


def load_ensemble(
    run_dirs: Sequence[str | Path],
    checkpoint: str | None = None,
    device: str = "auto",
    precision: str | None = None,
    decoding: dict[str, Any] | None = None,
    backend: str = "auto",
):
    """A :class:`~softalign.translator.Translator` whose model is the ensemble of the runs
    (each at ``checkpoint``); decoding settings come from the first run (and ``decoding``).
    Runs with different vocabularies are a one-line error naming the first that differs."""
    from softalign.translator import Translator

    loaded = [
        Translator.load(
            run,
            checkpoint,
            device=device,
            precision=precision,
            decoding=decoding,
            backend=backend,
        )
        for run in run_dirs
    ]
    first = loaded[0]
    for run, other in zip(run_dirs[1:], loaded[1:], strict=True):
        for side in ("src", "tgt"):
            if _pieces(getattr(other, f"{side}_vocab")) != _pieces(getattr(first, f"{side}_vocab")):
                name = "target" if side == "tgt" else "source"
                raise SoftalignError(
                    f"{run}: its {name} vocabulary differs from {run_dirs[0]}'s: an ensemble "
                    "needs models with the same vocabularies"
                )
    ensemble = Ensemble([t.model for t in loaded], len(first.tgt_vocab))
    return Translator(
        model=ensemble,
        config=first.config,
        src_vocab=first.src_vocab,
        tgt_vocab=first.tgt_vocab,
        device=first.device,
        checkpoint=first.checkpoint,
    )
