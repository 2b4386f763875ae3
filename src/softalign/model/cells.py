"""Recurrent cells of the decoder, one step at a time.

A cell takes its input already projected, ``x = W x_t + b`` (``input_proj``), so that a caller
may compute that part however it likes (the decoder joins the word and the fed vector first).
Equations (PyTorch's gate order)::

    GRU:  r = σ(x_r + U_r h + b_hr)      z = σ(x_z + U_z h + b_hz)
          n = tanh(x_n + r ⊙ (U_n h + b_hn))      h' = (1 - z) ⊙ n + z ⊙ h
    LSTM: i, f, g, o = σ, σ, tanh, σ of (x + U h)
          c' = f ⊙ c + i ⊙ g      h' = o ⊙ tanh(c')
"""

from __future__ import annotations

import torch
from torch import nn

from softalign.model.state import State


class GRUCell(nn.Module):
    gates = 3

    def __init__(self, *, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = nn.Linear(input_size, 3 * hidden_size)  # W, b_ih
        self.hidden_proj = nn.Linear(hidden_size, 3 * hidden_size)  # U, b_hh

    def step(self, x_proj: torch.Tensor, state: State) -> State:
        """x_proj: (batch, 3·hidden) from ``input_proj``; state (h,) -> (h',), (batch, hidden)."""
        (h,) = state
        x_r, x_z, x_n = x_proj.chunk(3, dim=-1)
        h_r, h_z, h_n = self.hidden_proj(h).chunk(3, dim=-1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return (candidate + update * (h - candidate),)  # (1 - z) ⊙ n + z ⊙ h


class LSTMCell(nn.Module):
    gates = 4

    def __init__(self, *, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = nn.Linear(input_size, 4 * hidden_size)  # W, b
        self.hidden_proj = nn.Linear(hidden_size, 4 * hidden_size, bias=False)  # U

    def step(self, x_proj: torch.Tensor, state: State) -> State:
        """x_proj: (batch, 4·hidden); state (h, c) -> (h', c'), each (batch, hidden)."""
        h, c = state
        i, f, g, o = (x_proj + self.hidden_proj(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


CELLS: dict[str, type[GRUCell] | type[LSTMCell]] = {"gru": GRUCell, "lstm": LSTMCell}
