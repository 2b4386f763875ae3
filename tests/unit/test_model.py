"""The model: teacher forcing agrees with step-by-step decoding; every variant trains."""

import pytest
import torch

from softalign.config import ModelConfig
from softalign.data.vocab import BOS_ID
from softalign.model.seq2seq import build_model


def small(**overrides):
    base = dict(
        embedding_size=16,
        encoder_hidden=8,
        encoder_layers=2,
        decoder_hidden=16,
        attention_size=8,
        output_size=16,
        dropout=0.0,
    )
    base.update(overrides)
    return build_model(ModelConfig(**base), 30, 25)


def batch():
    torch.manual_seed(0)
    src = torch.randint(4, 30, (3, 6))
    lengths = torch.tensor([6, 4, 2])
    src[torch.arange(6) >= lengths.unsqueeze(1)] = 0
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), torch.randint(4, 25, (3, 4))], dim=1)
    return src, lengths, tgt_in


VARIANTS = [
    {"attention": a, "rnn_type": r, "input_feeding": f}
    for a in ("additive", "dot", "scaled_dot", "general", "none")
    for r in ("gru", "lstm")
    for f in (True, False)
] + [
    {"decoder_layers": 2},
    {"bidirectional": False, "attention": "general"},
    {"bridge": False},
    {"tie_embeddings": True},
]


@pytest.mark.parametrize(
    "variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items())
)
def test_teacher_forcing_equals_step_by_step(variant):
    torch.manual_seed(1)
    model = small(**variant).eval()
    src, lengths, tgt_in = batch()
    with torch.no_grad():
        attentional, attention = model(src, lengths, tgt_in)
        state = model.start(src, lengths)
        for t in range(tgt_in.size(1)):
            log_probs, weights, state = model.step(tgt_in[:, t], state)
            expected = torch.log_softmax(model.logits(attentional[:, t]), dim=-1)
            assert torch.allclose(log_probs, expected, atol=1e-5)
            if attention is not None:
                assert torch.allclose(weights, attention[:, t], atol=1e-6)
    if variant.get("attention", "additive") == "none":
        assert attention is None
    else:
        assert attention.shape == (3, tgt_in.size(1), src.size(1))
        assert torch.all(attention[2, :, 2:] == 0)  # padding of the short sentence


@pytest.mark.parametrize(
    "variant", VARIANTS[::3], ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items())
)
def test_every_variant_learns_a_fixed_batch(variant):
    torch.manual_seed(2)
    model = small(**variant)
    src, lengths, tgt_in = batch()
    target = torch.randint(4, 25, tgt_in.shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        attentional, _ = model(src, lengths, tgt_in)
        loss = torch.nn.functional.cross_entropy(
            model.logits(attentional).flatten(0, 1), target.flatten()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5  # ln(25) = 3.2 at the start


def test_tied_embeddings_share_one_tensor():
    model = small(tie_embeddings=True)
    assert model.generator.weight is model.decoder.embedding.weight


def test_none_attention_feeds_the_fixed_summary_every_step():
    model = small(attention="none").eval()
    src, lengths, tgt_in = batch()
    state = model.start(src, lengths)
    assert state.keys is None and state.feed is None
    assert state.summary.shape == (3, 16)  # 2 directions x 8
