"""ONNX export: ONNX Runtime reproduces the PyTorch model's greedy output and initial state.

The graphs hold the reference model (plain PyTorch); the default backend on the CPU (fast,
with its C kernels) computes the same function, to rounding."""

import json

import numpy as np
import pytest
import torch
from tests.helpers import tiny_model

from softalign.data.vocab import BOS_ID
from softalign.decoding.search import decode_ids
from softalign.export import export_run
from softalign.fast import accelerate
from softalign.onnx_export import export_onnx, greedy
from softalign.translator import Translator

pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

TEXTS = ["ba be bi bo bu da", "ko ku", "ga ge gi go gu ka ke ki ko ku la le", "ma"]


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    model_dir = export_run(tiny_run, tmp_path_factory.mktemp("export") / "model", onnx=True)
    assert "decoder_step.onnx" in (model_dir / "README.md").read_text()
    return model_dir / "onnx"


def test_onnx_greedy_equals_pytorch_greedy(tiny_run, exported):
    """Against the reference model, the computation the graphs hold: the fast backend's C
    kernels round differently (by ~1e-7, see the next test), which could flip a near-tie of
    this barely trained model on another CPU."""
    translator = Translator.load(tiny_run, device="cpu", backend="reference")
    for ids in translator.src_vocab.encode(TEXTS):
        [[expected]] = decode_ids(translator.model, [ids], beam=1, max_length_ratio=2.0)
        limit = min(200, 2 * len(ids) + 5)  # decode_ids's length limit (max_output_lengths)
        assert greedy(exported, ids, limit) == expected.tokens


def test_onnx_step_log_probs_match_the_default_model(tiny_run, exported):
    translator, out = Translator.load(tiny_run, device="cpu"), exported  # backend auto
    session = onnxruntime.InferenceSession(str(out / "decoder_step.onnx"))
    encoder = onnxruntime.InferenceSession(str(out / "encoder.onnx"))
    meta = json.loads((out / "onnx.json").read_text())
    reads = {i.name for i in session.get_inputs()}
    [ids] = translator.src_vocab.encode(TEXTS[:1])
    src, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
    state = dict(
        zip(
            meta["state"],
            encoder.run(None, {"src": src.numpy(), "src_lengths": lengths.numpy()}),
            strict=True,
        )
    )
    with torch.no_grad():
        reference = translator.model.start(src, lengths)
        token = BOS_ID
        for _ in range(8):  # follow the model's own greedy choices
            expected, _, reference = translator.model.step(torch.tensor([token]), reference)
            feeds = {n: v for n, v in state.items() if n in reads}
            found = dict(
                zip(
                    meta["outputs"],
                    session.run(None, {"tokens": np.array([token]), **feeds}),
                    strict=True,
                )
            )
            np.testing.assert_allclose(found["log_probs"], expected.numpy(), atol=1e-5)
            state.update({n: found[f"next_{n}"] for n in meta["updated"]})
            token = int(translator.model.output_words(expected.argmax(-1)))


def test_onnx_encoder_takes_padded_batches_of_any_length(tiny_run, exported):
    translator, out = Translator.load(tiny_run, device="cpu"), exported
    ids = translator.src_vocab.encode(TEXTS[:3])
    width = max(map(len, ids))
    src = torch.tensor([s + [0] * (width - len(s)) for s in ids])
    lengths = torch.tensor([len(s) for s in ids])
    session = onnxruntime.InferenceSession(str(out / "encoder.onnx"))
    memory = dict(
        zip(
            [o.name for o in session.get_outputs()],
            session.run(None, {"src": src.numpy(), "src_lengths": lengths.numpy()}),
            strict=True,
        )
    )["memory"]
    with torch.no_grad():
        expected = translator.model.start(src, lengths).memory
    np.testing.assert_allclose(memory, expected.numpy(), atol=1e-5)


def test_a_model_of_the_fast_backend_is_refused(tmp_path):
    with pytest.raises(ValueError, match="backend='reference'"):
        export_onnx(accelerate(tiny_model()), tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("attention", "rnn_type"), [("none", "gru"), ("dot", "lstm")])
def test_lstm_and_attentionless_models_export_too(tmp_path, attention, rnn_type):
    model = tiny_model(attention, rnn_type)
    out = export_onnx(model, tmp_path)
    for ids in ([5, 6, 7, 8, 9], [10, 11]):
        [[expected]] = decode_ids(model, [ids], beam=1)
        assert greedy(out, ids, 2 * len(ids) + 5) == expected.tokens
