"""Attention equations against hand computation; masking; weights form a distribution."""

import math

import pytest
import torch

from softalign.model.attention import (
    AdditiveAttention,
    DotAttention,
    GeneralAttention,
    ScaledDotAttention,
)


def _keys_and_mask():
    values = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (1, 3, 2), last is padding
    pad_mask = torch.tensor([[False, False, True]])
    return values, pad_mask


def test_dot_attention_matches_hand_computation():
    values, pad_mask = _keys_and_mask()
    query = torch.tensor([[2.0, 1.0]])
    context, weights = DotAttention(query_size=2, key_size=2)(query, values, values, pad_mask)
    # scores 2 and 1 -> softmax
    e2, e1 = math.exp(2), math.exp(1)
    expected = torch.tensor([[e2 / (e2 + e1), e1 / (e2 + e1), 0.0]])
    assert torch.allclose(weights, expected, atol=1e-6)
    assert torch.allclose(context, torch.tensor([[expected[0, 0], expected[0, 1]]]), atol=1e-6)


def test_scaled_dot_divides_by_sqrt_of_key_size():
    values, pad_mask = _keys_and_mask()
    query = torch.tensor([[2.0, 1.0]])
    _, weights = ScaledDotAttention(query_size=2, key_size=2)(query, values, values, pad_mask)
    a, b = math.exp(2 / math.sqrt(2)), math.exp(1 / math.sqrt(2))
    assert torch.allclose(weights[0, :2], torch.tensor([a / (a + b), b / (a + b)]), atol=1e-6)


def test_general_attention_is_query_times_w_times_key_over_sqrt_d():
    values, pad_mask = _keys_and_mask()
    attention = GeneralAttention(query_size=2, key_size=2)
    with torch.no_grad():
        attention.key_proj.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # swaps
    query = torch.tensor([[3.0, 0.0]])
    keys = attention.project_keys(values)
    _, weights = attention(query, keys, values, pad_mask)
    # s·W h / sqrt(2): h1=(1,0) -> W h1=(0,1) -> 0 ; h2=(0,1) -> (1,0) -> 3 / sqrt(2)
    a, b = math.exp(0), math.exp(3 / math.sqrt(2))
    assert torch.allclose(weights[0, :2], torch.tensor([a / (a + b), b / (a + b)]), atol=1e-6)


def test_additive_attention_matches_v_tanh_ws_plus_uh():
    torch.manual_seed(0)
    attention = AdditiveAttention(query_size=3, key_size=2, hidden_size=4)
    values, pad_mask = _keys_and_mask()
    query = torch.randn(1, 3)
    keys = attention.project_keys(values)
    _, weights = attention(query, keys, values, pad_mask)
    W, U, b, v = (
        attention.query_proj.weight,
        attention.key_proj.weight,
        attention.key_proj.bias,
        attention.energy.weight[0],
    )
    with torch.no_grad():
        scores = [float(v @ torch.tanh(W @ query[0] + U @ values[0, j] + b)) for j in range(2)]
    expected = torch.softmax(torch.tensor(scores), dim=0)
    assert torch.allclose(weights[0, :2], expected, atol=1e-5)


@pytest.mark.parametrize(
    "cls", [AdditiveAttention, DotAttention, ScaledDotAttention, GeneralAttention]
)
def test_padding_gets_zero_attention_and_weights_sum_to_one(cls):
    torch.manual_seed(1)
    attention = cls(query_size=8, key_size=8, hidden_size=8)
    values = torch.randn(4, 6, 8)
    lengths = torch.tensor([6, 3, 1, 5])
    pad_mask = torch.arange(6).unsqueeze(0) >= lengths.unsqueeze(1)  # True at padding
    values = values.masked_fill(pad_mask.unsqueeze(-1), 100.0)  # huge padding would dominate
    context, weights = attention(
        torch.randn(4, 8), attention.project_keys(values), values, pad_mask
    )
    assert torch.allclose(weights.sum(-1), torch.ones(4), atol=1e-6)
    assert torch.all(weights[pad_mask] == 0)
    assert torch.all(weights >= 0)
    assert context.abs().max() < 50  # padding values never leak into the context


def test_pad_mask_polarity_true_means_padding():
    values = torch.eye(3).unsqueeze(0)
    only_first = torch.tensor([[False, True, True]])
    _, weights = DotAttention(query_size=3, key_size=3)(
        torch.ones(1, 3), values, values, only_first
    )
    assert torch.allclose(weights, torch.tensor([[1.0, 0.0, 0.0]]))


@pytest.mark.parametrize(
    "cls", [AdditiveAttention, DotAttention, ScaledDotAttention, GeneralAttention]
)
def test_grouped_queries_share_their_sentence_as_if_it_were_copied(cls):
    """A beam's K hypotheses read one copy of their source: the same context and weights as
    with the source repeated for every hypothesis row."""
    torch.manual_seed(2)
    attention = cls(query_size=8, key_size=8, hidden_size=8)
    values = torch.randn(3, 5, 8)
    pad_mask = torch.arange(5) >= torch.tensor([5, 2, 4]).unsqueeze(1)
    queries = torch.randn(3 * 4, 8)  # 4 hypotheses per sentence, sentence-major
    with torch.no_grad():
        grouped = attention(queries, attention.project_keys(values), values, pad_mask)
        copied_values = values.repeat_interleave(4, 0)
        copied = attention(
            queries,
            attention.project_keys(copied_values),
            copied_values,
            pad_mask.repeat_interleave(4, 0),
        )
    for mine, reference in zip(grouped, copied, strict=True):
        assert mine.shape == reference.shape
        assert torch.allclose(mine, reference, atol=1e-6)


def test_additive_scores_in_cache_sized_chunks_equal_the_differentiable_path():
    torch.manual_seed(3)
    attention = AdditiveAttention(query_size=6, key_size=4, hidden_size=8)
    attention.ENERGY_CHUNK = 2 * 3 * 8  # two sentences of 3 hypotheses × 1 position per chunk
    keys = attention.project_keys(torch.randn(5, 7, 4)).detach()
    queries = torch.randn(5, 3, 6)
    reference = attention.score(queries, keys)  # gradients on: one pass, no chunks
    assert reference.requires_grad
    with torch.no_grad():
        chunked = attention.score(queries, keys)
    assert chunked.shape == (5, 3, 7)
    assert torch.allclose(chunked, reference.detach(), atol=1e-6)
