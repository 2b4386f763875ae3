"""Helpers for tests: a tiny synthetic config that trains in seconds."""

from __future__ import annotations

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


def tiny_model(attention: str = "additive", rnn_type: str = "gru") -> Seq2Seq:
    """A small untrained model (seed 0, 20 source and target ids, no dropout), in eval mode."""
    torch.manual_seed(0)
    config = ModelConfig(
        embedding_size=16,
        encoder_hidden=8,
        encoder_layers=1,
        decoder_hidden=16,
        attention=attention,
        attention_size=8,
        output_size=16,
        dropout=0.0,
        rnn_type=rnn_type,
    )
    return build_model(config, 20, 20).eval()


def needs_bf16_products():
    """Skip marker for tests that decode or train in bf16 on the CPU: they need oneDNN's bf16
    products to work here (probed once, see ``capabilities.py``); the reason says why not."""
    import pytest

    from softalign import capabilities

    probe = capabilities.cpu().onednn_bf16
    return pytest.mark.skipif(
        not probe.works, reason=f"bf16 products fail on this CPU: {probe.detail}"
    )
