"""Recurrent decoder with soft attention, input feeding and a deep output layer.

At output step t, with previous target word y_{t-1} and previous attentional vector h̃_{t-1}::

    s_t = RNN(s_{t-1}, [E y_{t-1} ; h̃_{t-1}])         # input feeding (Luong et al. 2015)
    c_t = Σ_j α_tj h_j,  α_t = softmax_j(score(s_t, h_j))  # soft attention over the source
    h̃_t = tanh(W_o [s_t ; c_t] + V_o E y_{t-1} + b_o)   # deep output layer
    p(y_t | y_<t, x) = softmax(W_y h̃_t)                # in Seq2Seq (generator)

With ``attention="none"`` (the RNNenc baseline of Cho et al. 2014) the context is the encoder's
fixed summary ``c`` at every step and it is fed to the RNN instead of h̃_{t-1}:
``s_t = RNN(s_{t-1}, [E y_{t-1} ; c])``. The initial state is the bridge
``s_0 = tanh(W_b c)`` (Bahdanau et al.: ``tanh(W_s ←h_1)``), or zeros without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from softalign.data.vocab import PAD_ID
from softalign.fast.dropout import Dropout
from softalign.fast.low_precision import ShapeStableLinear
from softalign.fast.step_weights import (
    RecurrentLinear,
    StepWeight,
    one_weight_gradient_per_sequence,
)
from softalign.model.attention import ATTENTIONS
from softalign.model.cells import CELLS, State


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


class AttentionDecoder(nn.Module):
    def __init__(
        self,
        *,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        rnn_type: str,
        attention: str,
        attention_size: int,
        memory_size: int,
        input_feeding: bool,
        bridge: bool,
        output_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn_type = rnn_type
        self.output_size = output_size
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID)
        self.dropout = Dropout(dropout)
        if attention == "none":
            self.attention, self.feed_size = None, memory_size
        else:
            self.attention = ATTENTIONS[attention](
                query_size=hidden_size, key_size=memory_size, hidden_size=attention_size
            )
            self.feed_size = output_size if input_feeding else 0
        self.input_feeding = input_feeding and self.attention is not None
        cell = CELLS[rnn_type]
        self.cells = nn.ModuleList(
            cell(
                input_size=(embedding_size + self.feed_size) if i == 0 else hidden_size,
                hidden_size=hidden_size,
            )
            for i in range(num_layers)
        )
        self.embedding_size = embedding_size
        self.bridge = nn.Linear(memory_size, num_layers * hidden_size) if bridge else None
        self.output_state = RecurrentLinear(hidden_size + memory_size, output_size, bias=False)
        self.output_embedding = ShapeStableLinear(embedding_size, output_size)  # V_o, b_o

    # ------------------------------------------------------------------ state
    def init_state(
        self, memory: torch.Tensor, summary: torch.Tensor, pad_mask: torch.Tensor
    ) -> DecoderState:
        """The state before the first output word."""
        batch = memory.size(0)
        if self.bridge is not None:
            h0 = torch.tanh(self.bridge(summary)).view(batch, self.num_layers, self.hidden_size)
            tops = [h0[:, i].contiguous() for i in range(self.num_layers)]
        else:
            tops = [memory.new_zeros(batch, self.hidden_size) for _ in range(self.num_layers)]
        hidden: list[State] = [
            (h, torch.zeros_like(h)) if self.rnn_type == "lstm" else (h,) for h in tops
        ]
        return DecoderState(
            hidden=hidden,
            feed=memory.new_zeros(batch, self.output_size) if self.input_feeding else None,
            memory=memory,
            keys=self.attention.project_keys(memory) if self.attention is not None else None,
            pad_mask=pad_mask,
            summary=summary,
        )

    # ------------------------------------------------------------------ steps
    def _embed(
        self, tokens: torch.Tensor, fed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first layer's input projection and the deep output's ``V_o E y + b_o`` for
        ``tokens``. Without ``fed`` only the word's part of the projection (teacher forcing
        projects all words at once and adds the fed vector's part step by step); with it,
        one product over ``[E y ; fed]`` with the whole weight (a decoding step)."""
        embedded = self.dropout(self.embedding(tokens))
        first = self.cells[0].input_proj
        if fed is not None:
            gates = first.joined(embedded, fed)
        elif self.feed_size:
            gates = F.linear(embedded, first.weight[:, : self.embedding_size], first.bias)
        else:
            gates = first(embedded)
        return gates, self.output_embedding(embedded)

    def _feed_weight(self) -> StepWeight:
        """The first layer's input weight for the fed vector (h̃_{t-1} or c), opened once per
        sequence: its gradient is one product over all steps."""
        return StepWeight(self.cells[0].input_proj.weight[:, self.embedding_size :])

    def _fed(self, state: DecoderState) -> torch.Tensor:
        """What the first layer reads besides the word: h̃_{t-1}, or c without attention."""
        return state.feed if self.input_feeding else state.summary_rows()

    def _step(
        self,
        gates: torch.Tensor,
        output_embedded: torch.Tensor,
        state: DecoderState,
        feed_weight: StepWeight | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """``gates``: the first layer's input projection of the word, plus that of the fed
        vector when ``feed_weight`` is None."""
        if self.feed_size and feed_weight is not None:
            gates = gates + feed_weight(self._fed(state))
        hidden: list[State] = []
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                gates = cell.input_proj(self.dropout(hidden[-1][0]))
            hidden.append(cell.step(gates, state.hidden[layer]))
        top = hidden[-1][0]  # s_t (batch, hidden)
        if self.attention is None:
            context, weights = state.summary_rows(), None
        else:
            context, weights = self.attention(top, state.keys, state.memory, state.pad_mask)
        attentional = torch.tanh(
            self.output_state.joined(top, context) + output_embedded
        )  # h̃_t (batch, output_size)
        feed = attentional if self.input_feeding else None
        return attentional, weights, replace(state, hidden=hidden, feed=feed)

    def step(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """One step for tokens (batch,): attentional vector (batch, output_size),
        attention weights (batch, src_len) or None, and the next state."""
        gates, output_embedded = self._embed(tokens, self._fed(state) if self.feed_size else None)
        return self._step(gates, output_embedded, state, None)

    def forward(
        self, tgt_in: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing over tgt_in (batch, tgt_len).

        Returns attentional vectors (batch, tgt_len, output_size) and attention weights
        (batch, tgt_len, src_len), or None without attention.
        """
        gates, output_embedded = self._embed(tgt_in)  # (batch, tgt_len, ...)
        outputs, weights = [], []
        with one_weight_gradient_per_sequence(self):
            feed_weight = self._feed_weight()
            # unbind, not gates[:, t]: one slice per step would zero-fill and add a full
            # (batch, tgt_len, ...) gradient at every step; unbind's backward is one stack
            for gates_t, embedded_t in zip(gates.unbind(1), output_embedded.unbind(1), strict=True):
                attentional, alpha, state = self._step(gates_t, embedded_t, state, feed_weight)
                outputs.append(attentional)
                weights.append(alpha)
        attention = None if self.attention is None else torch.stack(weights, dim=1)
        return torch.stack(outputs, dim=1), attention
