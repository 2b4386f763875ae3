"""One GRU layer over a padded batch with softalign's C kernels for the gates (CPU).

For x (batch, T, in) and the parameters of one ``nn.GRU`` layer and direction::

    X = W_ih x + b_ih                      # one product over all steps
    g_t = U h_{t-1}                        # one product per step (zero at t = 0)
    h_t = gru_gates(X_t, g_t, b_hh, h_{t-1})   # one pass, ``native/gru.c``

and backward, from the last step to the first, one kernel pass and one product per step::

    ∂X_t, ∂g_t = gates' backward(∂h_t)      ∂h_{t-1} = (∂h_t ⊙ z_t) + ∂g_t U
    ∂U = Σ_t ∂g_tᵀ h_{t-1}  (one product over all steps)        ∂b_hh = Σ_t ∂g_t

Under bf16 autocast the products (``U h``, ``∂g U``, ``∂U``) run in bf16 and the gates in
fp32, as PyTorch's autocast does it. The state starts at zero, as the encoder needs.
"""

from __future__ import annotations

import torch

from softalign.fast.low_precision import autocast_dtype, padding_rows, shape_stable_linear
from softalign.fast.native import calls
from softalign.fast.packed_weights import can_pack, packed_linear


def gru_layer(
    x: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor | None,
    bias_hh: torch.Tensor | None,
) -> torch.Tensor:
    """(batch, T, in) -> (batch, T, hidden) fp32 states, from a zero state."""
    low = autocast_dtype(x) == torch.bfloat16
    projected = _rows(shape_stable_linear(x, weight_ih, bias_ih)).contiguous()  # X: (B, T, 3·H)
    if torch.is_grad_enabled() and (projected.requires_grad or weight_hh.requires_grad):
        return _GRULayer.apply(projected, weight_hh, bias_hh, low)
    return _forward(projected, weight_hh, bias_hh, low, keep=False)[0]


def _forward(
    projected: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_hh: torch.Tensor | None,
    low: bool,
    keep: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """States (batch, T, hidden); when ``keep``: the gates [r, z, n, q] (T, batch, 4·hidden)
    and the product inputs h_{t-1} (T, batch, hidden) for backward; and U in product dtype
    (None when decoding read it packed)."""
    batch, steps, gates = projected.shape
    hidden = gates // 3
    dtype = torch.bfloat16 if low else torch.float32
    bias = None if bias_hh is None else bias_hh.detach().float().contiguous()
    states = projected.new_empty(batch, steps, hidden, dtype=torch.float32)
    saved = states.new_empty(steps, batch, 4 * hidden) if keep else None
    # decoding: the products' rows padded with zeros to few shapes (see padding_rows)
    rows = batch + (0 if keep else padding_rows(batch, low))
    make = projected.new_empty if rows == batch else projected.new_zeros
    inputs = make(steps, rows, hidden, dtype=dtype)  # h_{t-1} (and padding); [0] unused
    recurrent = projected.new_zeros(rows, gates, dtype=dtype)  # g_t = U h_{t-1}
    packed = not keep and can_pack(weight_hh, dtype)  # decoding: U packed once (see module)
    weight = None if packed else weight_hh.detach().to(dtype)  # U: (3·hidden, hidden)
    for t in range(steps):
        if t > 0 and packed:
            recurrent = packed_linear(inputs[t], weight_hh, None, dtype)
        elif t > 0:
            torch.mm(inputs[t], weight.t(), out=recurrent)
        calls.gru_forward_step(
            projected[:, t],
            recurrent[:batch],
            bias,
            states[:, t - 1] if t > 0 else None,
            states[:, t],
            copy=inputs[t + 1][:batch] if t + 1 < steps else None,
            saved=None if saved is None else saved[t],
        )
    return states, saved, inputs, weight


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, projected, weight_hh, bias_hh, low: bool):
        with torch.autocast("cpu", enabled=False):
            states, saved, inputs, weight = _forward(projected, weight_hh, bias_hh, low, True)
        ctx.save_for_backward(states)
        ctx.saved, ctx.inputs, ctx.weight = saved, inputs, weight
        ctx.has_bias, ctx.x_dtype = bias_hh is not None, projected.dtype
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_states):
        (states,) = ctx.saved_tensors
        with torch.autocast("cpu", enabled=False):
            return _backward(ctx, states, grad_states.float().contiguous())


def _backward(ctx, states: torch.Tensor, grad_states: torch.Tensor):
    batch, steps, hidden = states.shape
    gates, weight = 3 * hidden, ctx.weight  # U in the products' dtype
    dtype = weight.dtype
    grad_projected = states.new_empty(batch, steps, gates, dtype=ctx.x_dtype)
    grad_recurrent = states.new_empty(steps, batch, gates, dtype=dtype)  # ∂g_t
    carry = states.new_empty(batch, hidden)  # ∂h_t ⊙ z_t, sent to step t - 1
    through_u = states.new_empty(batch, hidden, dtype=dtype)  # ∂g_t U
    grad_bias = states.new_zeros(gates)
    for t in reversed(range(steps)):
        later = t + 1 < steps
        calls.gru_backward_step(
            grad_states[:, t],
            carry if later else None,
            through_u if later else None,
            ctx.saved[t],
            states[:, t - 1] if t > 0 else None,
            carry,
            grad_projected[:, t],
            grad_recurrent[t],
            grad_bias,
        )
        if t > 0:
            torch.mm(grad_recurrent[t], weight, out=through_u)
    grad_weight = None
    if ctx.needs_input_grad[1]:
        if steps > 1:  # h_0 = 0 contributes nothing
            flat_grads = grad_recurrent[1:].view(-1, gates)
            flat_inputs = ctx.inputs[1:].view(-1, hidden)
            grad_weight = flat_grads.t().mm(flat_inputs).float()
        else:
            grad_weight = states.new_zeros(gates, hidden)
    ctx.saved = ctx.inputs = None
    return grad_projected, grad_weight, grad_bias if ctx.has_bias else None, None


def gru_cell_step(x_proj: torch.Tensor, h_proj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One step of a GRU cell with its gates in one kernel pass (CPU; see ``native/gru.c``).

    x_proj: (rows, 3·hidden) ``W x + b_ih``; h_proj: (rows, 3·hidden) ``U h + b_hh``, each fp32
    or bf16; h: (rows, hidden). Returns h' (rows, hidden) fp32. Under autograd, backward is one
    kernel pass too and returns gradients in the inputs' dtypes.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x_proj, h_proj, h)):
        return _GRUStep.apply(x_proj, h_proj, h)
    return _step_forward(x_proj, h_proj, h.float(), None)


def _rows(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` with contiguous rows (a row stride is fine), fp32 or bf16."""
    if tensor.dtype not in (torch.float32, torch.bfloat16):
        tensor = tensor.float()
    return tensor if tensor.stride(-1) == 1 else tensor.contiguous()


def _step_forward(x_proj, h_proj, h, saved):
    x_proj, h_proj, h = _rows(x_proj), _rows(h_proj).contiguous(), _rows(h)
    rows, hidden = h.shape
    out = h.new_empty(rows, hidden, dtype=torch.float32)
    calls.gru_forward_step(x_proj, h_proj, None, h, out, saved=saved)
    return out


class _GRUStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, h_proj, h):
        h = h.float()
        saved = h.new_empty(h.size(0), 4 * h.size(1))
        out = _step_forward(x_proj, h_proj, h, saved)
        ctx.save_for_backward(h, saved)
        ctx.dtypes = x_proj.dtype, h_proj.dtype
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        h, saved = ctx.saved_tensors
        h = _rows(h)
        grad_out = grad_out.float().contiguous()
        rows, hidden = h.shape
        x_dtype, h_proj_dtype = (d if d == torch.bfloat16 else torch.float32 for d in ctx.dtypes)
        grad_x = h.new_empty(rows, 3 * hidden, dtype=x_dtype)
        grad_h_proj = h.new_empty(rows, 3 * hidden, dtype=h_proj_dtype)
        grad_h = h.new_empty(rows, hidden)
        calls.gru_backward_step(grad_out, None, None, saved, h, grad_h, grad_x, grad_h_proj)
        return grad_x, grad_h_proj, grad_h
