"""The fast backend computes what the reference model computes: every swapped piece, values and
gradients, whole models under teacher forcing, translations, and checkpoints both ways."""

import copy

import pytest
import torch
from tests.unit.test_model import VARIANTS, batch, small

from softalign import checkpoint as ckpt
from softalign.backend import apply_backend, choose_backend
from softalign.data.vocab import PAD_ID
from softalign.decoding.search import decode_ids
from softalign.errors import SoftalignError
from softalign.fast import accelerate, is_accelerated
from softalign.fast.modules import FastAdditiveAttention, FastEncoder, FastGRUCell
from softalign.model.attention import AdditiveAttention
from softalign.model.decoder import GRUCell
from softalign.model.encoder import RNNEncoder


def _assert_close_grads(fast_params, ref_params, atol=1e-5):
    for (name, fast), (_, ref) in zip(fast_params, ref_params, strict=True):
        assert (fast.grad is None) == (ref.grad is None), name
        if ref.grad is not None:
            assert torch.allclose(fast.grad, ref.grad, atol=atol), name


def _loss_and_grads(model, label_smoothing=0.1):
    src, lengths, tgt_in = batch()
    attentional, attention = model(src, lengths, tgt_in)
    target = torch.randint(4, 25, tgt_in.shape, generator=torch.Generator().manual_seed(3))
    real = torch.ones_like(target, dtype=torch.bool)
    real[2, 3:] = False
    loss = model.loss(attentional[real], target[real], label_smoothing)
    model.zero_grad()
    loss.backward()
    return loss.detach(), attentional.detach(), attention


@pytest.mark.parametrize(
    "variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items())
)
def test_fast_model_equals_reference_values_and_gradients(variant):
    torch.manual_seed(1)
    reference = small(**variant)
    fast = accelerate(copy.deepcopy(reference))
    assert is_accelerated(fast) and not is_accelerated(reference)
    ref_loss, ref_out, ref_attention = _loss_and_grads(reference)
    fast_loss, fast_out, fast_attention = _loss_and_grads(fast)
    assert torch.allclose(fast_out, ref_out, atol=1e-5)
    assert torch.allclose(fast_loss, ref_loss, rtol=1e-5)
    if ref_attention is not None:
        assert torch.allclose(fast_attention, ref_attention, atol=1e-5)
    _assert_close_grads(list(fast.named_parameters()), list(reference.named_parameters()))


@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("attention", ["additive", "general", "none"])
def test_fast_model_translates_as_the_reference_does(beam, attention):
    torch.manual_seed(2)
    reference = small(attention=attention, rnn_type="gru").eval()
    fast = accelerate(copy.deepcopy(reference))
    sources = [[int(t) for t in torch.randint(4, 30, (n,))] for n in (3, 7, 1, 12, 5, 9)]
    options = dict(beam=beam, nbest=beam, max_length=15, attention=attention != "none")
    expected = decode_ids(reference, sources, **options)
    got = decode_ids(fast, sources, **options)
    for mine, theirs in zip(got, expected, strict=True):
        assert [h.tokens for h in mine] == [h.tokens for h in theirs]
        for h, r in zip(mine, theirs, strict=True):
            assert h.score == pytest.approx(r.score, abs=1e-4)
            if r.attention is not None:
                assert torch.allclose(h.attention, r.attention, atol=1e-5)


def test_checkpoints_move_between_backends(tmp_path):
    torch.manual_seed(3)
    fast = accelerate(small())
    reference = small()
    assert fast.state_dict().keys() == reference.state_dict().keys()
    path = ckpt.save_checkpoint(tmp_path, 7, fast.state_dict(), {}, {"train": {}})
    tensors = ckpt.load_tensors(path, "model.safetensors", ckpt.read_state(path))
    ckpt.load_weights(reference, tensors, path)
    for name, tensor in fast.state_dict().items():
        assert torch.equal(reference.state_dict()[name], tensor), name


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_fast_encoder_equals_the_packed_reference(rnn_type, bidirectional):
    torch.manual_seed(0)
    reference = RNNEncoder(
        vocab_size=30,
        embedding_size=8,
        hidden_size=6,
        num_layers=2,
        bidirectional=bidirectional,
        rnn_type=rnn_type,
        dropout=0.0,
    )
    fast = copy.deepcopy(reference)
    fast.__class__ = FastEncoder
    lengths = torch.tensor([7, 3, 5, 1, 6])
    src = torch.randint(4, 30, (5, 7))
    src[torch.arange(7) >= lengths.unsqueeze(1)] = PAD_ID
    weights = torch.randn(5, 7, reference.output_size)
    results = []
    for encoder in (reference, fast):
        memory, summary = encoder(src, lengths)
        ((memory * weights).sum() + summary.pow(2).sum()).backward()
        results.append((memory, summary))
    (ref_memory, ref_summary), (memory, summary) = results
    assert torch.allclose(memory, ref_memory, atol=1e-6)
    assert torch.allclose(summary, ref_summary, atol=1e-6)
    assert bool((memory[torch.arange(7) >= lengths.unsqueeze(1)] == 0).all())
    _assert_close_grads(list(fast.named_parameters()), list(reference.named_parameters()))


def test_fast_gru_cell_and_additive_attention_equal_the_reference():
    torch.manual_seed(4)
    cell = GRUCell(input_size=8, hidden_size=6)
    attention = AdditiveAttention(query_size=6, key_size=4, hidden_size=5)
    fast_cell, fast_attention = copy.deepcopy(cell), copy.deepcopy(attention)
    fast_cell.__class__, fast_attention.__class__ = FastGRUCell, FastAdditiveAttention
    x, h = torch.randn(6, 8), torch.randn(6, 6, requires_grad=True)
    memory = torch.randn(3, 5, 4, requires_grad=True)
    pad_mask = torch.zeros(3, 5, dtype=torch.bool)
    pad_mask[1, 3:] = True

    def run(c, a):
        (h2,) = c.step(c.input_proj(x), (h,))
        context, weights = a(h2, a.project_keys(memory), memory, pad_mask)  # group 2
        grads = torch.autograd.grad(context.pow(2).sum(), [h, memory, *c.parameters()])
        return [h2, context, weights, *grads]

    for got, expected in zip(run(fast_cell, fast_attention), run(cell, attention), strict=True):
        assert torch.allclose(got, expected, atol=1e-5)
    with torch.no_grad():  # decoding: the kernel or the in-cache chunks
        keys = attention.project_keys(memory)
        query = torch.randn(3, 4, 6)
        assert torch.allclose(
            fast_attention.score(query, keys), attention.score(query, keys), atol=1e-5
        )


def test_without_kernels_the_fast_backend_falls_back_to_the_same_values(monkeypatch):
    torch.manual_seed(5)
    reference = small()
    fast = accelerate(copy.deepcopy(reference))
    monkeypatch.setattr("softalign.fast.modules.native_available", lambda _: False)
    monkeypatch.setattr("softalign.fast.generator_loss.kernels", lambda: None)
    monkeypatch.setattr("softalign.fast.best_words.kernels", lambda: None)
    ref_loss, ref_out, _ = _loss_and_grads(reference)
    fast_loss, fast_out, _ = _loss_and_grads(fast)
    assert torch.allclose(fast_out, ref_out, atol=1e-5)
    assert torch.allclose(fast_loss, ref_loss, rtol=1e-5)
    _assert_close_grads(list(fast.named_parameters()), list(reference.named_parameters()))


def test_auto_picks_fast_on_the_cpu_and_the_reference_elsewhere():
    assert choose_backend("auto", "cpu") == "fast"
    assert choose_backend("auto", torch.device("cuda")) == "reference"
    assert choose_backend("reference", "cpu") == "reference"
    with pytest.raises(SoftalignError, match="CPU only"):
        choose_backend("fast", torch.device("cuda"))
    with pytest.raises(SoftalignError, match="unknown backend"):
        choose_backend("turbo", "cpu")
    model = small()
    assert apply_backend(model, "reference", "cpu") is model and not is_accelerated(model)
    assert is_accelerated(apply_backend(model, "auto", "cpu"))


def test_the_fast_backend_without_kernels_says_why_once(monkeypatch, caplog):
    monkeypatch.setattr("softalign.fast.native.unavailable_reason", lambda: "no C compiler found")
    monkeypatch.setattr("softalign.backend._warned", set())
    with caplog.at_level("WARNING", logger="softalign"):
        apply_backend(small(), "fast", "cpu")
        apply_backend(small(), "fast", "cpu")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "no C compiler found" in lines[0] and "slower" in lines[0]
