"""Recurrent encoder: embeddings and a (bi)directional GRU/LSTM over packed sequences.

For source ids ``x_1..x_n`` it returns one vector per position (the annotations
``h_j = [→h_j ; ←h_j]`` of Bahdanau et al.) and a sentence summary: the last layer's final
forward state and final backward state (which has read the whole sentence from the right),
concatenated -- the fixed-length vector of the RNNenc baseline.

The recurrence runs over the padded batch, one layer and direction at a time, with the
parameters of one ``nn.GRU``/``nn.LSTM`` module (so checkpoints name them as PyTorch does).
Padding only ever comes *after* a sentence's words: the forward direction reads the batch as
it is, the backward direction reads every sentence reversed within its own length
(``x'_t = x_{n-1-t}`` for t < n), so pads never reach a real position's state, and the final
states are read at position n-1. On the CPU this is what PyTorch's recurrent kernels do fastest:
a packed sequence's per-step slices cost a zero-filled full-size gradient each in backward
(B = 150, 14 positions, fwd+bwd: 175 → 159 ms fp32, 142 → 116 ms bf16 for the whole 2-layer
bidirectional GRU). A GRU's steps run on softalign's C kernels where they could be built
(``model/gru_layer.py``: the gates in one pass per step, one weight-gradient product per layer):
92 → 55 ms bf16, 133 → 107 ms fp32 for the same batch. On a GPU, where cuDNN runs a packed
sequence in one call, the encoder packs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from softalign.data.vocab import PAD_ID
from softalign.fast.dropout import Dropout, dropout
from softalign.fast.gru_layer import gru_layer
from softalign.fast.native import available as native_available

RNNS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RNNEncoder(nn.Module):
    def __init__(
        self,
        *,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        rnn_type: str,
        dropout: float,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID)
        self.dropout = Dropout(dropout)
        self.rnn = RNNS[rnn_type](
            embedding_size,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """src: (batch, src_len), src_lengths: (batch,).

        Returns memory (batch, src_len, output_size), zero at padding, and
        summary (batch, output_size).
        """
        embedded = self.dropout(self.embedding(src))  # (batch, src_len, emb)
        if src.device.type != "cpu":  # cuDNN runs packed sequences in one fused call
            return self._packed(embedded, src_lengths)
        lengths = src_lengths.to(src.device)
        positions = torch.arange(src.size(1), device=src.device)
        real = positions < lengths.unsqueeze(1)  # (batch, src_len)
        # reversal within each length (an involution; pads stay where they are)
        reverse = torch.where(real, lengths.unsqueeze(1) - 1 - positions, positions)
        last = (lengths - 1).view(-1, 1, 1)
        layer_input = embedded
        for layer in range(self.rnn.num_layers):
            if layer > 0:
                layer_input = dropout(layer_input, self.rnn.dropout, self.training)
            outputs, finals = [], []
            for direction in range(self.directions):
                x = layer_input if direction == 0 else _take(layer_input, reverse)
                out = self._run(x, layer, direction)  # (batch, src_len, hidden)
                finals.append(out.gather(1, last.expand(-1, 1, out.size(-1))).squeeze(1))
                outputs.append(out if direction == 0 else _take(out, reverse))
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        memory = layer_input.masked_fill(~real.unsqueeze(-1), 0.0)
        return memory, torch.cat(finals, dim=-1)

    def _packed(
        self, embedded: torch.Tensor, src_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same through ``self.rnn`` over a packed sequence (GPUs)."""
        packed = pack_padded_sequence(
            embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=embedded.size(1))
        h_n = final[0] if isinstance(final, tuple) else final  # (layers*dirs, batch, hidden)
        return memory, torch.cat(list(h_n[-self.directions :]), dim=-1)

    def _run(self, x: torch.Tensor, layer: int, direction: int) -> torch.Tensor:
        """One layer and direction of ``self.rnn`` over (batch, src_len, in), from zeros."""
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        params = [getattr(self.rnn, f"{name}{suffix}") for name in _PARAMS]
        if isinstance(self.rnn, nn.GRU) and native_available(x):
            return gru_layer(x, *params)
        state = x.new_zeros(1, x.size(0), self.rnn.hidden_size)
        if isinstance(self.rnn, nn.LSTM):
            out, _, _ = torch.lstm(
                x, (state, state), params, True, 1, 0.0, self.training, False, True
            )
        else:
            out, _ = torch.gru(x, state, params, True, 1, 0.0, self.training, False, True)
        return out


_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _take(sequence: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """sequence[b, index[b, t]] for (batch, len, d) and (batch, len) index."""
    return sequence.gather(1, index.unsqueeze(-1).expand(-1, -1, sequence.size(-1)))
