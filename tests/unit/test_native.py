"""softalign's C kernels (GRU gates, additive attention scores) compute what PyTorch's operators
compute, values and gradients, and the library falls back to PyTorch when they cannot be
built."""

import pytest
import torch

from softalign.fast import gru_layer, native
from softalign.fast.additive_scores import additive_scores
from softalign.fast.best_words import best_words

needs_kernels = pytest.mark.skipif(
    native.kernels() is None, reason=f"no C kernels: {native.unavailable_reason()}"
)


def _gru(batch: int, steps: int, hidden: int):
    torch.manual_seed(0)
    rnn = torch.nn.GRU(16, hidden, batch_first=True)
    params = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0]
    x = torch.randn(batch, steps, 16, requires_grad=True)
    return x, params


def _torch_gru(x, params):
    state = x.new_zeros(1, x.size(0), params[1].size(1))
    return torch.gru(x, state, params, True, 1, 0.0, True, False, True)[0]


@needs_kernels
@pytest.mark.parametrize("batch,hidden", [(5, 6), (40, 512)])  # one thread; two (≥ 16k gates)
def test_layer_equals_torch_gru_values_and_gradients(batch, hidden):
    x, params = _gru(batch, 7, hidden)
    mine, reference = gru_layer.gru_layer(x, *params), _torch_gru(x, params)
    assert torch.allclose(mine, reference, atol=1e-6)
    weights = torch.randn_like(mine)
    grads = torch.autograd.grad((mine * weights).sum(), [x, *params])
    reference_grads = torch.autograd.grad((reference * weights).sum(), [x, *params])
    for got, expected in zip(grads, reference_grads, strict=True):
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)


@needs_kernels
def test_layer_under_bf16_autocast_stays_close_to_fp32():
    x, params = _gru(24, 6, 64)
    reference = _torch_gru(x, params)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mine = gru_layer.gru_layer(x, *params)
    assert mine.dtype == torch.float32  # the state stays fp32; only the products are bf16
    assert (mine - reference).abs().max() < 0.03
    (grad_x,) = torch.autograd.grad(mine.sum(), [x])
    (reference_grad_x,) = torch.autograd.grad(reference.sum(), [x])
    assert (grad_x - reference_grad_x).abs().max() < 0.05 * reference_grad_x.abs().max()


@needs_kernels
def test_layer_without_gradients_equals_the_one_with():
    x, params = _gru(9, 5, 32)
    with torch.no_grad():
        plain = gru_layer.gru_layer(x, *params)
    assert torch.equal(plain, gru_layer.gru_layer(x, *params).detach())
    # bf16 decoding pads the products' 9 rows to 16 (few oneDNN kernel shapes): same states
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            padded = gru_layer.gru_layer(x, *params)
        unpadded = gru_layer.gru_layer(x, *params).detach()
    assert torch.allclose(padded, unpadded, atol=1e-3)


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cell_step_equals_the_operator_by_operator_gates(dtype):
    """Strided input rows (one step of a (batch, T, 3H) tensor), gradients in input dtypes."""
    torch.manual_seed(0)
    rows, hidden = 40, 512
    steps = torch.randn(rows, 3, 3 * hidden).to(dtype).requires_grad_()
    h_proj = torch.randn(rows, 3 * hidden).to(dtype).requires_grad_()
    h = torch.randn(rows, hidden).to(dtype).requires_grad_()
    x_proj = steps.unbind(1)[1]

    def reference(x_proj, h_proj, h):
        x_r, x_z, x_n = x_proj.float().chunk(3, -1)
        h_r, h_z, h_n = h_proj.float().chunk(3, -1)
        reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return candidate + update * (h.float() - candidate)

    mine, expected = gru_layer.gru_cell_step(x_proj, h_proj, h), reference(x_proj, h_proj, h)
    assert torch.allclose(mine, expected, atol=1e-5)
    weights = torch.randn(rows, hidden)
    grads = torch.autograd.grad((mine * weights).sum(), [steps, h_proj, h])
    expected_grads = torch.autograd.grad((expected * weights).sum(), [steps, h_proj, h])
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    for got, want in zip(grads, expected_grads, strict=True):
        assert got.dtype == dtype
        assert (got.float() - want.float()).abs().max() <= tolerance * want.abs().max()


@needs_kernels
@pytest.mark.parametrize("sentences,group,positions,size", [(3, 1, 5, 7), (12, 5, 9, 512)])
def test_additive_scores_equal_v_tanh_q_plus_k(sentences, group, positions, size):
    torch.manual_seed(0)
    query = torch.randn(sentences, group, size, requires_grad=True)
    keys = torch.randn(sentences, positions, size, requires_grad=True)
    v = torch.randn(size, requires_grad=True)
    expected = torch.tanh(query.unsqueeze(2) + keys.unsqueeze(1)) @ v  # (n, group, S)
    mine = additive_scores(query, keys, v)
    assert mine.shape == (sentences, group, positions)
    assert torch.allclose(mine, expected, atol=1e-4)
    with torch.no_grad():  # the path that keeps no energies: same scores up to the compiler's
        # vectorisation of the two loops (gcc 13 on a Sapphire Rapids differs in the last bit)
        assert torch.allclose(additive_scores(query, keys, v), mine.detach(), rtol=1e-6, atol=1e-6)
    weights = torch.randn_like(mine)
    grads = torch.autograd.grad((mine * weights).sum(), [query, keys, v])
    expected_grads = torch.autograd.grad((expected * weights).sum(), [query, keys, v])
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


def test_switched_off_or_unbuildable_kernels_fall_back(monkeypatch, tmp_path):
    monkeypatch.setenv("SOFTALIGN_CACHE", str(tmp_path))
    native.kernels.cache_clear()
    try:
        monkeypatch.setenv("SOFTALIGN_NATIVE", "0")
        assert native.kernels() is None
        assert native.unavailable_reason() == "SOFTALIGN_NATIVE=0"
        native.kernels.cache_clear()
        monkeypatch.setenv("SOFTALIGN_NATIVE", "1")
        monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
        assert native.kernels() is None
        reason = native.unavailable_reason()
        assert reason.startswith("the C kernels did not build:") and "\n" not in reason
        assert not list(tmp_path.rglob("*.so"))
    finally:
        native.kernels.cache_clear()  # the next call builds (or finds) the real library


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("k", [1, 6])
def test_best_words_are_the_top_k_of_the_log_softmax(kernel, k, monkeypatch):
    if not kernel:
        monkeypatch.setattr("softalign.fast.best_words.kernels", lambda: None)
    elif native.kernels() is None:
        pytest.skip(f"no C kernels: {native.unavailable_reason()}")
    torch.manual_seed(0)
    logits = torch.randn(37, 300) * 3
    log_probs, columns = best_words(logits, k)
    expected, expected_columns = torch.log_softmax(logits, -1).topk(k, -1)
    assert torch.allclose(log_probs, expected, atol=1e-5)
    assert torch.equal(columns, expected_columns)
    # bf16 logits tie often: the values are the top k, each at the column it names
    low = logits.bfloat16()
    log_probs, columns = best_words(low, k)
    full = torch.log_softmax(low, -1, dtype=torch.float32)
    assert log_probs.dtype == torch.float32
    assert torch.allclose(log_probs, full.topk(k, -1).values, atol=1e-5)
    assert torch.allclose(full.gather(1, columns), log_probs, atol=1e-5)
    # a product's bias, added while the rows are read
    bias = torch.randn(300)
    log_probs, columns = best_words(logits, k, bias)
    expected, expected_columns = torch.log_softmax(logits + bias, -1).topk(k, -1)
    assert torch.allclose(log_probs, expected, atol=1e-5)
    assert torch.equal(columns, expected_columns)
    with pytest.raises(ValueError, match="k must be"):
        best_words(logits, 301)
