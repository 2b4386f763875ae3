"""Weights packed once for CPU products: same products, packed only inside the block and again
when the weights change."""

import pytest
import torch
import torch.nn.functional as F
from tests.helpers import tiny_model

from softalign import capabilities
from softalign.data.batching import collate
from softalign.decoding.search import decode_ids
from softalign.fast import packed_weights
from softalign.fast.packed_weights import can_pack, packed_linear

PACKING = capabilities.cpu().onednn_packing
needs_packing = pytest.mark.skipif(
    not PACKING.works, reason=f"oneDNN does not pack bf16 weights on this CPU: {PACKING.detail}"
)


@needs_packing
@pytest.mark.parametrize("shape", [(1, 24), (7, 24), (3, 70, 24), (300, 24)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_packed_products_equal_plain_products(shape, with_bias):
    dtype = torch.bfloat16
    torch.manual_seed(0)
    layer = torch.nn.Linear(24, 40, bias=with_bias)
    x = torch.randn(*shape)
    bias = layer.bias
    with torch.no_grad(), packed_weights.packed_weights() as packs:
        packed = packed_linear(x, layer.weight, bias, dtype)
    plain = F.linear(x.to(dtype), layer.weight.to(dtype), None if bias is None else bias.to(dtype))
    assert len(packs) == 1 + with_bias  # it packed the weight (and cast the bias once)
    assert packed.shape == (*shape[:-1], 40) and packed.dtype == dtype
    assert torch.allclose(packed.float(), plain.float(), rtol=1e-2, atol=1e-2)


@needs_packing
def test_a_weight_is_packed_once_and_again_when_it_changes_in_place():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 5)
    x = torch.randn(4, 8)
    packs = {}
    with torch.no_grad():
        with packed_weights.packed_weights(packs):
            packed_linear(x, layer.weight, layer.bias, torch.bfloat16)
        first = next(iter(packs.values()))[2]
        with packed_weights.packed_weights(packs):  # the same dict: the copy is reused
            packed_linear(x, layer.weight, layer.bias, torch.bfloat16)
            assert next(iter(packs.values()))[2] is first
            layer.load_state_dict({"weight": torch.ones(5, 8), "bias": torch.zeros(5)})
            after = packed_linear(x, layer.weight, layer.bias, torch.bfloat16)
    assert torch.allclose(after.float(), x.sum(-1, keepdim=True).expand(4, 5), atol=5e-2)
    assert next(iter(packs.values()))[2] is not first


def test_nothing_is_packed_outside_the_block_or_with_gradients():
    layer = torch.nn.Linear(8, 5)
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert not can_pack(layer.weight, torch.bfloat16)  # no block open
    with packed_weights.packed_weights() as packs:
        assert not can_pack(layer.weight, torch.bfloat16)  # gradients on
        with torch.no_grad():
            assert not can_pack(layer.weight, torch.float32)  # fp32 stays with MKL
        out = packed_linear(x, layer.weight, layer.bias, torch.bfloat16)
        with torch.no_grad():
            assert not can_pack(layer.weight[:, :4], torch.bfloat16)  # a view, not a parameter
    assert out.requires_grad and not packs


@needs_packing
def test_a_search_after_a_fused_optimizer_step_reads_the_new_weights(monkeypatch):
    """A fused Adam step changes the parameters without moving their version counters: every
    search packs afresh (the packs live for one decode_ids call), so it sees the new weights."""
    model = tiny_model()
    torch.manual_seed(1)
    src = [torch.randint(4, 20, (n,)).tolist() for n in (7, 5, 3, 6)]

    def searches():
        packed = decode_ids(model, src, beam=2, max_length=10, precision="bf16")
        with monkeypatch.context() as patch:
            patch.setattr(packed_weights, "packing_available", lambda: False)
            plain = decode_ids(model, src, beam=2, max_length=10, precision="bf16")
        return packed, plain

    before, plain_before = searches()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5, fused=True)
    versions = [p._version for p in model.parameters()]
    batch = collate(list(range(len(src))), src)  # the sources as their own targets
    attentional, _ = model(batch.src, batch.src_lengths, batch.src)
    model.loss(attentional.flatten(0, 1), batch.src.flatten()).backward()
    optimizer.step()
    assert [p._version for p in model.parameters()] == versions  # what makes this a hazard
    after, plain_after = searches()
    for found, plain in [(before, plain_before), (after, plain_after)]:
        assert [h[0].tokens for h in found] == [h[0].tokens for h in plain]
        assert [h[0].score for h in found] == pytest.approx([h[0].score for h in plain], abs=1e-2)
    assert [h[0].score for h in after] != pytest.approx([h[0].score for h in before], abs=0.1)


def test_without_packing_products_are_plain_and_nothing_is_packed(monkeypatch):
    """Where oneDNN cannot pack (an AVX2-only CPU, or oneDNN capped to AVX2), ``packed_linear``
    is the plain bf16 product: same values, and the packs stay empty."""
    monkeypatch.setattr(packed_weights, "packing_available", lambda: False)
    torch.manual_seed(0)
    layer = torch.nn.Linear(24, 40)
    x = torch.randn(7, 24)
    with torch.no_grad(), packed_weights.packed_weights() as packs:
        assert not can_pack(layer.weight, torch.bfloat16)
        out = packed_linear(x, layer.weight, layer.bias, torch.bfloat16)
    plain = F.linear(x.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16())
    assert not packs and out.dtype == torch.bfloat16 and torch.equal(out, plain)


def test_packing_is_used_exactly_where_the_probe_says_it_works():
    assert packed_weights.packing_available() == PACKING.works
    layer = torch.nn.Linear(8, 5)
    with torch.no_grad(), packed_weights.packed_weights():
        assert can_pack(layer.weight, torch.bfloat16) == PACKING.works
