"""Will the model fit? Parameter memory estimated from the config, before building the model.

    check_model_fits(config.model, src_vocab_size, tgt_vocab_size, training=True)

The model is built on PyTorch's ``meta`` device, where tensors have shapes but no storage,
so the count is exact for whatever ``build_model`` makes, costs no memory, and needs no
formula kept in step with the model code. The memory a job needs is

    bytes = parameters × 4 (fp32) × copies,   copies = 4 when training (weights, gradients,
                                                Adam's two moments), 2 when loading a run
                                                (the checkpoint's tensors and the model's)

which is a lower bound (activations come on top). It is compared with the memory available
now: ``MemAvailable`` of ``/proc/meminfo`` (Linux), else ``os.sysconf`` free pages, or the free
memory of the CUDA device. Over it, :class:`ConfigError` gives the figure and the config keys
that make the count large, instead of an out-of-memory traceback later.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace

import torch

from softalign.config import ModelConfig
from softalign.errors import ConfigError

BYTES_PER_PARAMETER = 4  # fp32 master weights
TRAINING_COPIES = 4  # weights, gradients, Adam's exp_avg and exp_avg_sq
LOADING_COPIES = 2  # the checkpoint's tensors and the model's parameters


def parameter_shapes(
    config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int
) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape, by name, of the model ``build_model`` would make."""
    from softalign.model.seq2seq import build_model

    with torch.device("meta"):
        model = build_model(config, src_vocab_size, tgt_vocab_size, initialize=False)
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes of memory available now on ``device`` (None when unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _gb(size: int) -> str:
    return f"{size / 1e9:,.1f} GB"


def parameter_count(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> int:
    """The number of parameters of the model ``build_model`` would make."""
    return sum(map(_numel, parameter_shapes(config, src_vocab_size, tgt_vocab_size).values()))


def size_keys(
    config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int, share: float = 0.5
) -> list[str]:
    """The sizes behind the parameter count, largest effect first: ``key=value`` for each
    model key (or vocabulary) whose reduction to 1 would remove at least ``share`` of it."""
    count = parameter_count(config, src_vocab_size, tgt_vocab_size)
    effects: dict[str, int] = {}
    for key, value in asdict(config).items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 1:
            continue
        try:
            smaller = parameter_count(replace(config, **{key: 1}), src_vocab_size, tgt_vocab_size)
        except (ValueError, RuntimeError):  # a size the model cannot be built with
            continue
        effects[f"model.{key}={value}"] = count - smaller
    effects[f"source vocabulary={src_vocab_size}"] = count - parameter_count(
        config, 1, tgt_vocab_size
    )
    effects[f"target vocabulary={tgt_vocab_size}"] = count - parameter_count(
        config, src_vocab_size, 1
    )
    ranked = sorted(effects, key=effects.__getitem__, reverse=True)
    return [key for key in ranked if effects[key] >= share * count]


def check_model_fits(
    config: ModelConfig,
    src_vocab_size: int,
    tgt_vocab_size: int,
    *,
    training: bool,
    device: torch.device | str = "cpu",
    available: int | None = None,
) -> int:
    """Raise :class:`ConfigError` when the parameters cannot fit; return the bytes needed.

    ``available`` (bytes) defaults to :func:`available_memory` of ``device``."""
    count = parameter_count(config, src_vocab_size, tgt_vocab_size)
    copies = TRAINING_COPIES if training else LOADING_COPIES
    needed = count * BYTES_PER_PARAMETER * copies
    available = available_memory(device) if available is None else available
    if available is None or needed <= available:
        return needed
    keys = ", ".join(size_keys(config, src_vocab_size, tgt_vocab_size)) or "the model sizes"
    purpose = "training (weights, gradients, Adam state)" if training else "loading the run"
    raise ConfigError(
        f"the model has {count:,} parameters: {_gb(needed)} for {purpose}, more than the "
        f"{_gb(available)} of memory available; reduce {keys}"
    )


def _numel(shape: tuple[int, ...]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size
