"""Build a model from a checkpoint of a run: the one loader behind ``Translator.load`` and a
resumed training run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from softalign import checkpoint as ckpt
from softalign.backend import apply_backend
from softalign.config import ModelConfig
from softalign.errors import CheckpointError
from softalign.model.seq2seq import Seq2Seq, build_model


def load_model(
    path: Path,
    config: ModelConfig,
    src_vocab_size: int,
    tgt_vocab_size: int,
    *,
    device: torch.device,
    backend: str = "auto",
    state: dict[str, Any] | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
) -> Seq2Seq:
    """The model of ``config`` with the weights of the checkpoint ``path`` (its ``state.json``
    and ``model.safetensors`` read again unless given), computed by ``backend`` on ``device``.

    The generator's output words (``output_ids``) come from the checkpoint itself."""
    state = ckpt.read_state(path) if state is None else state
    if tensors is None:
        tensors = ckpt.load_tensors(path, "model.safetensors", state)
    output_ids = tensors.get("output_ids")  # absent: the generator scores every id
    try:
        model = build_model(config, src_vocab_size, tgt_vocab_size, output_ids, initialize=False)
    except ValueError as exc:
        raise CheckpointError(f"{path}: output_ids: {exc}") from None
    ckpt.load_weights(model, tensors, path)
    return apply_backend(model, backend, device).to(device)
