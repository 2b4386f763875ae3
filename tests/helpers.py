"""Helpers for tests: a tiny synthetic config that trains in seconds."""

from __future__ import annotations

from softalign.config import RunConfig, from_dict

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
