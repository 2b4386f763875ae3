"""Mixed precision: ``training.precision`` is fp32, bf16 or fp16.

bf16 and fp16 run the forward pass under :func:`torch.autocast` (matrix multiplies in the
low precision; the loss is still computed in fp32, see ``loss.py``); the weights and the
optimizer stay fp32. fp16's narrow range needs loss scaling: a :class:`torch.amp.GradScaler`
multiplies the loss by S before backward, divides the gradients by S before clipping, and
halves S (skipping the step) when a gradient overflowed, so fp16 is CUDA-only here. bf16 has
fp32's range and needs no scaler; it runs on CUDA and, where PyTorch supports it, on the CPU.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from softalign.errors import SoftalignError

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """Matrix products in ``precision`` (bf16/fp16) under autocast; softmax stays fp32."""
    dtype = PRECISIONS[precision]
    if precision == "fp16" and device.type != "cuda":
        raise SoftalignError("decoding.precision fp16 needs a CUDA device (use bf16 on CPU)")
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class Precision:
    """Autocast for the forward pass, and loss scaling around backward and the step."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise SoftalignError(f"training.precision: unknown precision {name!r}")
        if name == "fp16" and device.type != "cuda":
            raise SoftalignError("training.precision fp16 needs a CUDA device (use bf16 on CPU)")
        self.name = name
        self.device_type = device.type
        self.dtype = PRECISIONS[name]
        self.scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients back to their true size (before clipping them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def skip(self) -> None:
        """A step skipped for a non-finite gradient: the scaler lowers its scale."""
        if self.scaler is not None:
            self.scaler.update()

    def overflow_is_expected(self) -> bool:
        """Whether a non-finite gradient is fp16 overflow that a smaller scale can cure
        (as opposed to a real divergence): the scale has not yet fallen below 1."""
        return self.scaler is not None and self.scaler.get_scale() >= 1.0

    def state_dict(self) -> dict[str, Any]:
        """JSON-able scaler state (empty without a scaler)."""
        if self.scaler is None:
            return {}
        return {k: float(v) for k, v in self.scaler.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            state = dict(state)
            state["_growth_tracker"] = int(state.get("_growth_tracker", 0))
            state["growth_interval"] = int(state.get("growth_interval", 2000))
            self.scaler.load_state_dict(state)
