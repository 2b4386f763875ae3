"""Helpers for tests: a tiny synthetic config that trains in seconds."""

from __future__ import annotations

import dataclasses

import torch

from softalign.config import ModelConfig, RunConfig, from_dict
from softalign.model.seq2seq import Seq2Seq, build_model

TINY = {
    "data": {"corpus": "synthetic:reverse?min=3&max=12&n=3000", "vocab": {"size": 60}},
    "model": {
        "embedding_size": 32,
        "encoder_hidden": 32,
        "encoder_layers": 1,
        "decoder_hidden": 64,
        "attention_size": 32,
        "output_size": 32,
        "dropout": 0.0,
    },
    "training": {
        "max_steps": 200,
        "valid_every": 100,
        "checkpoint_every": 100,
        "batch_tokens": 600,
        "log_every": 20,
        "threads": 1,
    },
    "decoding": {"beam": 3},
}


def tiny_config(**overrides) -> RunConfig:
    """The tiny synthetic config with dotted overrides (``**{"model.attention": "dot"}``)."""
    return from_dict(TINY).replace(**overrides)


# the smallest model worth testing: one encoder layer, no dropout
TINY_MODEL = ModelConfig(
    embedding_size=16,
    encoder_hidden=8,
    encoder_layers=1,
    decoder_hidden=16,
    attention_size=8,
    output_size=16,
    dropout=0.0,
)


def tiny_model(
    attention: str = "additive",
    rnn_type: str = "gru",
    *,
    seed: int = 0,
    output_ids: list[int] | None = None,
) -> Seq2Seq:
    """An untrained :data:`TINY_MODEL` (20 source and target ids; its generator over
    ``output_ids``, else all), in eval mode."""
    torch.manual_seed(seed)
    config = dataclasses.replace(TINY_MODEL, attention=attention, rnn_type=rnn_type)
    ids = None if output_ids is None else torch.tensor(output_ids)
    return build_model(config, 20, 20, ids).eval()


def needs_bf16_products():
    """Skip marker for tests that decode or train in bf16 on the CPU: they need oneDNN's bf16
    products to work here (probed once, see ``capabilities.py``); the reason says why not."""
    import pytest

    from softalign import capabilities

    probe = capabilities.cpu().onednn_bf16
    return pytest.mark.skipif(
        not probe.works, reason=f"bf16 products fail on this CPU: {probe.detail}"
    )
