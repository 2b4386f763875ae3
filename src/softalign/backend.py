"""Which implementation computes the model: ``reference`` (plain PyTorch, every device) or
``fast`` (softalign's CPU backend, ``softalign/fast``); ``auto`` picks fast on the CPU and the
reference elsewhere (a GPU runs the reference's packed sequences in cuDNN).

:func:`apply_backend` is the one call that swaps the fast modules into a built model; the
weights and checkpoints are the same either way.
"""

from __future__ import annotations

import logging

import torch

from softalign.config import BACKENDS
from softalign.errors import SoftalignError
from softalign.model.seq2seq import Seq2Seq

log = logging.getLogger("softalign")

_warned: set[str] = set()


def choose_backend(name: str, device: torch.device | str) -> str:
    """``reference`` or ``fast`` for ``name`` (auto, reference, fast) on ``device``."""
    device = torch.device(device)
    if name not in BACKENDS:
        choices = ", ".join(BACKENDS)
        raise SoftalignError(f"backend: unknown backend {name!r} (use one of {choices})")
    if name == "auto":
        return "fast" if device.type == "cpu" else "reference"
    if name == "fast" and device.type != "cpu":
        raise SoftalignError(
            f"backend fast runs on the CPU only, not on {device}: use backend reference (or auto)"
        )
    return name


def apply_backend(model: Seq2Seq, name: str, device: torch.device | str) -> Seq2Seq:
    """``model`` computed by the backend ``name`` chooses on ``device`` (swapped in place).

    The fast backend without its C kernels still runs (PyTorch's operators where a kernel
    would be), and says once, in one line, why and what it costs."""
    if choose_backend(name, device) == "reference":
        return model
    from softalign.fast import accelerate
    from softalign.fast.native import unavailable_reason

    reason = unavailable_reason()
    if reason is not None and reason not in _warned:
        _warned.add(reason)
        log.warning(
            "softalign's C kernels are not in use (%s): the fast backend runs PyTorch's "
            "operators in their place, slower (benchmarks/backend_speed.py measures by how "
            "much on this machine)",
            reason,
        )
    return accelerate(model)
