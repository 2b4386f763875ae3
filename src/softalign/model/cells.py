"""Recurrent cells that take a pre-computed input projection.

Under teacher forcing the decoder's input embeddings are known for every step, so their share
of the gate pre-activations ``W x + b`` is one large matrix multiply before the loop; each step
then only adds the recurrent part. Equations (PyTorch's gate order)::

    GRU:  r = σ(x_r + U_r h + b_hr)      z = σ(x_z + U_z h + b_hz)
          n = tanh(x_n + r ⊙ (U_n h + b_hn))      h' = (1 - z) ⊙ n + z ⊙ h
    LSTM: i, f, g, o = σ, σ, tanh, σ of (x + U h)
          c' = f ⊙ c + i ⊙ g      h' = o ⊙ tanh(c')

where ``x = W x_t + b`` is the input projection. Both projections are
:class:`~softalign.fast.step_weights.RecurrentLinear`: under teacher forcing their weight
gradients are one product over all steps.
"""

from __future__ import annotations

import torch
from torch import nn

from softalign.fast.gru_layer import gru_cell_step
from softalign.fast.native import available as native_available
from softalign.fast.step_weights import RecurrentLinear

State = tuple[torch.Tensor, ...]  # GRU: (h,); LSTM: (h, c); each (batch, hidden)


class GRUCell(nn.Module):
    gates = 3

    def __init__(self, *, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = RecurrentLinear(input_size, 3 * hidden_size)
        self.hidden_proj = RecurrentLinear(hidden_size, 3 * hidden_size)

    def step(self, x_proj: torch.Tensor, state: State) -> State:
        """x_proj: (batch, 3*hidden) from ``input_proj``; returns the new state."""
        (h,) = state
        h_proj = self.hidden_proj(h)
        if native_available(h):  # the same gates in one pass (C kernel)
            return (gru_cell_step(x_proj, h_proj, h),)
        x_r, x_z, x_n = x_proj.chunk(3, dim=-1)
        h_r, h_z, h_n = h_proj.chunk(3, dim=-1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return (candidate + update * (h - candidate),)


class LSTMCell(nn.Module):
    gates = 4

    def __init__(self, *, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = RecurrentLinear(input_size, 4 * hidden_size)
        self.hidden_proj = RecurrentLinear(hidden_size, 4 * hidden_size, bias=False)

    def step(self, x_proj: torch.Tensor, state: State) -> State:
        h, c = state
        i, f, g, o = (x_proj + self.hidden_proj(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


CELLS: dict[str, type[GRUCell] | type[LSTMCell]] = {"gru": GRUCell, "lstm": LSTMCell}
