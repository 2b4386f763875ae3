"""Device selection: ``auto`` takes CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from softalign.errors import SoftalignError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SoftalignError(f"device '{name}' requested but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise SoftalignError(f"unknown device '{name}' (use cpu, cuda or cuda:N)") from None
