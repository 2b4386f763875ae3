"""Weights applied at every step of a recurrence, with one weight-gradient product per sequence.

Autograd gives a weight ``W`` used at each of the T decoder steps (``y_t = W x_t + b``) T small
products ``g_tᵀ x_t`` (inner dimension: the batch), each added into a fresh full-size buffer.
Their sum is one large product over all steps::

    ∂L/∂W = Σ_t g_tᵀ x_t = Gᵀ X,    ∂L/∂b = Σ_t g_t,    X = [x_1; …; x_T],  G = [g_1; …; g_T]

with ``g_t = ∂L/∂y_t``. :class:`StepWeight` opens ``(W, b)`` for one sequence: each step's
backward only computes the input gradient ``g_t W`` and records ``(x_t, g_t)``; the weight's
gradient is computed once, when autograd reaches the node that opened it. Every step depends on
that node (through a scalar token), so autograd runs it after all of them.

:class:`RecurrentLinear` is an ``nn.Linear`` (same parameters, same state dict) that uses this
inside :func:`one_weight_gradient_per_sequence`, and is a plain ``nn.Linear`` elsewhere (no
gradient, e.g. decoding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from softalign.fast.low_precision import ShapeStableLinear, autocast_dtype, padding_rows


class _Tape:
    """The (x_t, g_t) pairs of one opened weight, and its low-precision copy under autocast."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight
        self.inputs: list[torch.Tensor] = []  # x_t in step order
        self.grads: dict[int, torch.Tensor] = {}  # step -> g_t (backward visits steps in reverse)
        self._casts: dict[torch.dtype, torch.Tensor] = {weight.dtype: weight.detach()}

    def weight_as(self, dtype: torch.dtype) -> torch.Tensor:
        """W in ``dtype``, cast once per sequence (autocast would cast it at every step)."""
        if dtype not in self._casts:
            self._casts[dtype] = self.weight.detach().to(dtype)
        return self._casts[dtype]


class _Open(torch.autograd.Function):
    """token = open(W, b): its backward computes ∂L/∂W = Gᵀ X and ∂L/∂b = Σ g_t."""

    @staticmethod
    def forward(ctx, tape: _Tape, weight: torch.Tensor, bias: torch.Tensor | None):
        ctx.tape, ctx.has_bias = tape, bias is not None
        return weight.new_zeros(())

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, _token_grad):
        tape = ctx.tape
        if not tape.grads:
            return None, None, None
        steps = sorted(tape.grads)
        grad_list = [tape.grads[t] for t in steps]
        input_list = [tape.inputs[t].to(grad_list[0].dtype) for t in steps]
        rows = sum(g.size(0) for g in grad_list)
        pad = padding_rows(rows, low_precision=grad_list[0].dtype != tape.weight.dtype)
        if pad:
            grad_list.append(grad_list[0].new_zeros(pad, grad_list[0].size(1)))
            input_list.append(input_list[0].new_zeros(pad, input_list[0].size(1)))
        grads = torch.cat(grad_list)  # G: (steps·batch, out)
        inputs = torch.cat(input_list)  # X, the same rows
        tape.grads = {}
        weight_grad = grads.t().mm(inputs).to(tape.weight.dtype)
        bias_grad = grads.sum(0, dtype=tape.weight.dtype) if ctx.has_bias else None
        return None, weight_grad, bias_grad


class _Step(torch.autograd.Function):
    """y_t = W x_t + b whose backward returns only ∂L/∂x_t = g_t W and records g_t."""

    @staticmethod
    def forward(ctx, x, token, bias, tape: _Tape):
        dtype = autocast_dtype(x)
        if dtype is not None:
            x, bias = x.to(dtype), None if bias is None else bias.to(dtype)
        out = F.linear(x, tape.weight_as(x.dtype), bias)
        ctx.tape, ctx.index = tape, len(tape.inputs)
        tape.inputs.append(x.detach())
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        tape = ctx.tape
        tape.grads[ctx.index] = grad_out
        return grad_out.mm(tape.weight_as(grad_out.dtype)), None, None, None


class StepWeight:
    """``(W, b)`` opened for the steps of one sequence: ``step_weight(x_t) = W x_t + b``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self.weight, self.bias = weight, bias
        self.active = torch.is_grad_enabled() and (
            weight.requires_grad or (bias is not None and bias.requires_grad)
        )
        if self.active:
            self.tape = _Tape(weight)
            self.token = _Open.apply(self.tape, weight, bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return F.linear(x, self.weight, self.bias)
        rows = x.reshape(-1, x.size(-1))
        out = _Step.apply(rows, self.token, _detach(self.bias), self.tape)
        return out.view(*x.shape[:-1], out.size(-1))


def _detach(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach()


class RecurrentLinear(ShapeStableLinear):
    """``nn.Linear`` for a layer applied at every step of a recurrence (see the module doc)."""

    _opened: StepWeight | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._opened is not None and torch.is_grad_enabled():
            return self._opened(x)
        return super().forward(x)


@contextlib.contextmanager
def one_weight_gradient_per_sequence(module: nn.Module) -> Iterator[None]:
    """Within the block, every :class:`RecurrentLinear` in ``module`` computes its weight
    gradient with one product over all the steps it ran (when gradients are enabled)."""
    layers = [m for m in module.modules() if isinstance(m, RecurrentLinear)]
    for layer in layers:
        layer._opened = StepWeight(layer.weight, layer.bias) if torch.is_grad_enabled() else None
    try:
        yield
    finally:
        for layer in layers:
            layer._opened = None
