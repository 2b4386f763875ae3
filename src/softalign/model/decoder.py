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

The decoder's recurrent cells run one step at a time and take their input already projected,
``x = W x_t + b`` (``input_proj``), so that a caller may compute that part however it likes (the
decoder joins the word and the fed vector first). Equations (PyTorch's gate order)::

    GRU:  r = σ(x_r + U_r h + b_hr)      z = σ(x_z + U_z h + b_hz)
          n = tanh(x_n + r ⊙ (U_n h + b_hn))      h' = (1 - z) ⊙ n + z ⊙ h
    LSTM: i, f, g, o = σ, σ, tanh, σ of (x + U h)
          c' = f ⊙ c + i ⊙ g      h' = o ⊙ tanh(c')
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from softalign.data.vocab import PAD_ID
from softalign.model.attention import ATTENTIONS
from softalign.model.state import DecoderState, State


class GRUCell(nn.Module):
    """r = σ(W_r x + U_r h + b_r), z = σ(W_z x + U_z h + b_z),
    n = tanh(W_n x + b_n + r ⊙ (U_n h + b'_n)), h' = (1 − z) ⊙ n + z ⊙ h (as ``nn.GRUCell``)."""

    gates = 3  # r, z, n: the rows of W and U are three blocks of ``hidden_size``

    def __init__(self, *, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = nn.Linear(input_size, self.gates * hidden_size)  # W, b_ih
        self.hidden_proj = nn.Linear(hidden_size, self.gates * hidden_size)  # U, b_hh

    def step(self, x_proj: torch.Tensor, state: State) -> State:
        """x_proj: (batch, 3·hidden) from ``input_proj``; state (h,) -> (h',), (batch, hidden)."""
        (h,) = state
        x_r, x_z, x_n = x_proj.chunk(3, dim=-1)
        h_r, h_z, h_n = self.hidden_proj(h).chunk(3, dim=-1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return (candidate + update * (h - candidate),)  # (1 - z) ⊙ n + z ⊙ h


class LSTMCell(nn.Module):
    """[i, f, g, o] = W x + U h + b, c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g), h' = σ(o) ⊙ tanh(c')."""

    gates = 4  # i, f, g, o

    def __init__(self, *, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = nn.Linear(input_size, self.gates * hidden_size)  # W, b
        self.hidden_proj = nn.Linear(hidden_size, self.gates * hidden_size, bias=False)  # U

    def step(self, x_proj: torch.Tensor, state: State) -> State:
        """x_proj: (batch, 4·hidden); state (h, c) -> (h', c'), each (batch, hidden)."""
        h, c = state
        i, f, g, o = (x_proj + self.hidden_proj(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


CELLS: dict[str, type[GRUCell] | type[LSTMCell]] = {"gru": GRUCell, "lstm": LSTMCell}


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
        self.embedding_size = embedding_size
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID)  # E
        self.dropout = nn.Dropout(dropout)
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
        self.bridge = nn.Linear(memory_size, num_layers * hidden_size) if bridge else None  # W_b
        self.output_state = nn.Linear(hidden_size + memory_size, output_size, bias=False)  # W_o
        self.output_embedding = nn.Linear(embedding_size, output_size)  # V_o, b_o

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

    def _fed(self, state: DecoderState) -> torch.Tensor:
        """What the first layer reads besides the word: h̃_{t-1}, or c without attention."""
        return state.feed if self.input_feeding else state.summary_rows()

    def step(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """One step for tokens (batch,): attentional vector h̃_t (batch, output_size),
        attention weights α_t (batch, src_len) or None, and the next state."""
        embedded = self.dropout(self.embedding(tokens))  # E y_{t-1}: (batch, emb)
        first = torch.cat([embedded, self._fed(state)], -1) if self.feed_size else embedded
        gates = self.cells[0].input_proj(first)  # W [E y_{t-1} ; h̃_{t-1}] + b
        return self._advance(gates, self.output_embedding(embedded), state)

    def _advance(
        self, gates: torch.Tensor, output_embedded: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None, DecoderState]:
        """The rest of a step, from the first layer's input projection ``gates`` and the deep
        output's ``V_o E y_{t-1} + b_o`` (``output_embedded``)."""
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
        attentional = torch.tanh(self._output_state(top, context) + output_embedded)  # h̃_t
        feed = attentional if self.input_feeding else None
        return attentional, weights, replace(state, hidden=hidden, feed=feed)

    def _output_state(self, top: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """W_o [s_t ; c_t]: (batch, output_size)."""
        return self.output_state(torch.cat([top, context], -1))

    def forward(
        self, tgt_in: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing over tgt_in (batch, tgt_len): :meth:`step` on every gold word.

        Returns attentional vectors (batch, tgt_len, output_size) and attention weights
        (batch, tgt_len, src_len), or None without attention.
        """
        outputs, weights = [], []
        for tokens in tgt_in.unbind(1):
            attentional, alpha, state = self.step(tokens, state)
            outputs.append(attentional)
            weights.append(alpha)
        attention = None if self.attention is None else torch.stack(weights, dim=1)
        return torch.stack(outputs, dim=1), attention
