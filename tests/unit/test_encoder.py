"""The CPU encoder (padded batch, backward direction reversed within each length) computes what
PyTorch's packed-sequence recurrence computes, values and gradients."""

import pytest
import torch

from softalign.data.vocab import PAD_ID
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


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padded_recurrence_equals_the_packed_one(rnn_type, bidirectional):
    encoder, src, lengths = _encoder_and_batch(rnn_type, bidirectional)
    memory, summary = encoder(src, lengths)
    packed_memory, packed_summary = encoder._packed(encoder.embedding(src), lengths)
    assert memory.shape == packed_memory.shape == (5, 7, encoder.output_size)
    assert torch.allclose(memory, packed_memory, atol=1e-6)
    assert torch.allclose(summary, packed_summary, atol=1e-6)
    assert bool((memory[torch.arange(7) >= lengths.unsqueeze(1)] == 0).all())

    weights = torch.randn_like(memory)
    params = list(encoder.parameters())
    grads = torch.autograd.grad((memory * weights).sum() + summary.pow(2).sum(), params)
    packed_memory, packed_summary = encoder._packed(encoder.embedding(src), lengths)
    packed_loss = (packed_memory * weights).sum() + packed_summary.pow(2).sum()
    packed_grads = torch.autograd.grad(packed_loss, params)
    for mine, reference in zip(grads, packed_grads, strict=True):
        assert torch.allclose(mine, reference, atol=1e-5)


def test_pads_never_reach_a_real_position():
    """Changing what stands in the padding changes nothing at real positions."""
    encoder, src, lengths = _encoder_and_batch("gru", True)
    encoder.embedding.padding_idx = None  # let pads carry a non-zero vector
    memory, summary = encoder(src, lengths)
    other = src.clone()
    other[other == PAD_ID] = 9
    other_memory, other_summary = encoder(other, lengths)
    assert torch.allclose(memory, other_memory, atol=1e-6)
    assert torch.allclose(summary, other_summary, atol=1e-6)
