"""What the decoder carries from one output step to the next (:class:`DecoderState`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

State = tuple[torch.Tensor, ...]  # one recurrent layer's state: GRU (h,), LSTM (h, c)


@dataclass
class DecoderState:
    """Everything one decoding step needs.

    The decoder-side tensors have one row per hypothesis, the source-side tensors one row per
    source sentence; ``group`` hypotheses in a row read the same sentence (row r reads sentence
    ``r // group``: the K hypotheses of a beam share one copy of their source).

    hidden: per layer, (h,) for GRU or (h, c) for LSTM, each (rows, hidden)
    feed: (rows, output_size) previous attentional vector (input feeding), else None
    memory: (sentences, src_len, memory_size) encoder annotations (attention values)
    keys: attention keys projected once per sentence, None without attention
    pad_mask: (sentences, src_len) True at source padding
    summary: (sentences, memory_size) the fixed-length sentence vector
    group: rows per sentence
    """

    hidden: list[State]
    feed: torch.Tensor | None
    memory: torch.Tensor
    keys: torch.Tensor | None
    pad_mask: torch.Tensor
    summary: torch.Tensor
    group: int = 1

    def select(self, rows: torch.Tensor, sources: torch.Tensor | None = None) -> DecoderState:
        """Keep the hypothesis rows ``rows`` (in that order; e.g. ``[0, 0, 2]``) and the source
        sentences ``sources`` (None: all, unchanged). The result's row r must continue a
        hypothesis of its sentence ``r // group``: greedy search passes the same indices for
        both, beam search moves hypotheses between the beams of a sentence and drops finished
        sentences."""
        pick = lambda t, index: None if t is None else t.index_select(0, index)  # noqa: E731
        source = (lambda t: t) if sources is None else (lambda t: pick(t, sources))
        return DecoderState(
            hidden=[tuple(pick(t, rows) for t in layer) for layer in self.hidden],
            feed=pick(self.feed, rows),
            memory=source(self.memory),
            keys=source(self.keys),
            pad_mask=source(self.pad_mask),
            summary=source(self.summary),
            group=self.group,
        )

    def repeat(self, times: int) -> DecoderState:
        """Every hypothesis row ``times`` times in a row (a beam of identical hypotheses), the
        source sentences shared."""
        copy = lambda t: None if t is None else t.repeat_interleave(times, dim=0)  # noqa: E731
        return replace(
            self,
            hidden=[tuple(copy(t) for t in layer) for layer in self.hidden],
            feed=copy(self.feed),
            group=self.group * times,
        )

    def summary_rows(self) -> torch.Tensor:
        """(rows, memory_size) the sentence vector of every hypothesis row."""
        return self.summary if self.group == 1 else self.summary.repeat_interleave(self.group, 0)
