"""Mixed precision: ``training.precision`` and ``decoding.precision`` are fp32, bf16, fp16 or
auto; :func:`resolve_precision` turns a name into the one this device runs, in one place.

bf16 and fp16 run the forward pass under :func:`torch.autocast` (matrix multiplies in the
low precision; the loss is still computed in fp32, see ``loss.py``); the weights and the
optimizer stay fp32. fp16's narrow range needs loss scaling: a :class:`torch.amp.GradScaler`
multiplies the loss by S before backward, divides the gradients by S before clipping, and
halves S (skipping the step) when a gradient overflowed, so fp16 is CUDA-only here. bf16 has
fp32's range and needs no scaler; it runs on CUDA (compute capability 8.0+) and on a CPU whose
oneDNN computes bf16 products, fast only with hardware bf16 (AMX, AVX-512 BF16,
AVX-NE-CONVERT; see ``capabilities.py``). ``auto`` is the fastest that keeps quality here:
bf16 with hardware bf16 (CPU) or bf16 tensor cores (CUDA), else fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

import torch

from softalign import capabilities
from softalign.capabilities import CpuCapabilities
from softalign.config import PRECISIONS as NAMES  # fp32, bf16, fp16, auto
from softalign.errors import SoftalignError

log = logging.getLogger("softalign")

# what each name but auto computes in (None: no autocast)
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def resolve_precision(
    name: str,
    device: torch.device,
    key: str = "precision",
    cpu: CpuCapabilities | None = None,
) -> str:
    """The precision (fp32, bf16 or fp16) that ``name`` means on ``device``.

    ``auto``: bf16 on a CPU with hardware bf16 that oneDNN runs, or a CUDA device with bf16
    tensor cores; else fp32. A precision the device cannot run raises a one-line
    :class:`SoftalignError` starting with ``key``, naming what is missing and the
    alternative; bf16 on a CPU without hardware bf16 runs, with a warning (once) that it is
    slower than fp32. ``cpu``: the CPU's capabilities (default: this one's, probed once).
    """
    if name not in NAMES:
        raise SoftalignError(f"{key}: unknown precision {name!r} (use {', '.join(NAMES)})")
    if device.type == "cuda":
        return _resolve_cuda(name, device, key)
    if name == "fp16":
        raise SoftalignError(f"{key} fp16 needs a CUDA device (use bf16, fp32 or auto on CPU)")
    if name == "fp32" or device.type != "cpu":
        return "fp32"
    cpu = cpu or capabilities.cpu()
    if name == "auto":
        return "bf16" if cpu.bf16_hardware and cpu.onednn_bf16.works else "fp32"
    if not cpu.onednn_bf16.works:
        needs = (
            "the BF16 extension"
            if cpu.machine in ("aarch64", "arm64")
            else "AVX-512 BW/VL/DQ or AVX-NE-CONVERT"
        )
        raise SoftalignError(
            f"{key} bf16 needs a CPU with {needs} (this one: {cpu.isa}; the bf16 product "
            f"failed: {cpu.onednn_bf16.detail}); use fp32 or precision auto"
        )
    if not cpu.bf16_hardware:
        _warn_once(
            f"{key} bf16: this CPU ({cpu.isa}) has no hardware bf16 (AMX, AVX-512 BF16 or "
            "AVX-NE-CONVERT), so bf16 runs slower than fp32 here; precision auto picks fp32"
        )
    return "bf16"


def _resolve_cuda(name: str, device: torch.device, key: str) -> str:
    if name in ("fp32", "fp16"):
        return name
    gpu = capabilities.cuda_device(
        torch.cuda.current_device() if device.index is None else device.index
    )
    if name == "auto":
        return "bf16" if gpu.bf16 else "fp32"
    if not gpu.bf16:
        raise SoftalignError(
            f"{key} bf16 needs a CUDA device of compute capability 8.0 or later ({gpu.name} is "
            f"{gpu.capability[0]}.{gpu.capability[1]}); use fp32, fp16 or auto"
        )
    return "bf16"


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """Matrix products in ``precision`` (resolved: see :func:`resolve_precision`) under
    autocast; softmax stays fp32."""
    dtype = PRECISIONS[resolve_precision(precision, device, "decoding.precision")]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class Precision:
    """Autocast for the forward pass, and loss scaling around backward and the step, in the
    precision ``name`` resolves to on ``device``."""

    def __init__(self, name: str, device: torch.device) -> None:
        self.name = resolve_precision(name, device, "training.precision")  # fp32, bf16, fp16
        if name == "auto":
            log.info("training.precision auto: %s on this %s", self.name, device.type)
        self.device_type = device.type
        self.dtype = PRECISIONS[self.name]
        self.scaler = torch.amp.GradScaler("cuda") if self.name == "fp16" else None

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
