"""Recurrent encoder: embeddings and a (bi)directional GRU/LSTM over packed sequences.

For source ids ``x_1..x_n`` it returns one vector per position (the annotations
``h_j = [→h_j ; ←h_j]`` of Bahdanau et al.) and a sentence summary: the last layer's final
forward state and final backward state (which has read the whole sentence from the right),
concatenated -- the fixed-length vector of the RNNenc baseline::

    →h_j = RNN(→h_{j-1}, E x_j)      ←h_j = RNN(←h_{j+1}, E x_j)      summary = [→h_n ; ←h_1]

The batch is packed (``pack_padded_sequence``), so padding never reaches a state and each
sentence's final states are read at its own length.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from softalign.data.vocab import PAD_ID

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
        self.dropout = nn.Dropout(dropout)
        self.rnn = RNNS[rnn_type](
            embedding_size,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # between layers
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
        packed = pack_padded_sequence(
            embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))
        h_n = final[0] if isinstance(final, tuple) else final  # (layers·dirs, batch, hidden)
        return memory, torch.cat(list(h_n[-self.directions :]), dim=-1)
