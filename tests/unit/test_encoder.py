"""Padding never reaches a real position, in the reference encoder (packed sequences) and in the
fast one (padded batch, backward direction reversed within each length; it equals the
reference: tests/unit/test_backend.py)."""

import pytest
import torch

from softalign.data.vocab import PAD_ID
from softalign.fast.modules import FastEncoder
from softalign.model.encoder import RNNEncoder


def _encoder_and_batch(rnn_type: str, bidirectional: bool, layers: int = 2):
    torch.manual_seed(0)
    encoder = RNNEncoder(
        vocab_size=30,
        embedding_size=8,
        hidden_size=6,
        num_layers=layers,
        bidirectional=bidirectional,
        rnn_type=rnn_type,
        dropout=0.0,
    )
    lengths = torch.tensor([7, 3, 5, 1, 6])
    src = torch.randint(4, 30, (5, 7))
    src[torch.arange(7) >= lengths.unsqueeze(1)] = PAD_ID
    return encoder, src, lengths


@pytest.mark.parametrize("fast", [False, True])
def test_pads_never_reach_a_real_position(fast):
    """Changing what stands in the padding changes nothing at real positions."""
    encoder, src, lengths = _encoder_and_batch("gru", True)
    if fast:
        encoder.__class__ = FastEncoder
    encoder.embedding.padding_idx = None  # let pads carry a non-zero vector
    memory, summary = encoder(src, lengths)
    other = src.clone()
    other[other == PAD_ID] = 9
    other_memory, other_summary = encoder(other, lengths)
    assert torch.allclose(memory, other_memory, atol=1e-6)
    assert torch.allclose(summary, other_summary, atol=1e-6)
