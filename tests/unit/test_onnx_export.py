"""ONNX export: ONNX Runtime reproduces the PyTorch model's greedy output and initial state."""

import json

import numpy as np
import pytest
import torch
from tests.helpers import tiny_model

from softalign.data.vocab import BOS_ID
from softalign.decoding.search import decode_ids
from softalign.export import export_run
from softalign.fast.native import kernels
from softalign.onnx_export import export_onnx, greedy, plain_pytorch
from softalign.translator import Translator

pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

TEXTS = ["ba be bi bo bu da", "ko ku", "ga ge gi go gu ka ke ki ko ku la le", "ma"]


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    model_dir = export_run(tiny_run, tmp_path_factory.mktemp("export") / "model", onnx=True)
    assert "decoder_step.onnx" in (model_dir / "README.md").read_text()
    return Translator.load(tiny_run, device="cpu"), model_dir / "onnx"


def test_onnx_greedy_equals_pytorch_greedy(exported):
    """Against the plain PyTorch computation the graphs hold: the C kernels round
    differently (by ~1e-7, see the next test), which could flip a near-tie of this barely
    trained model on another CPU."""
    translator, out = exported
    for ids in translator.src_vocab.encode(TEXTS):
        with plain_pytorch():
            [[expected]] = decode_ids(translator.model, [ids], beam=1, max_length_ratio=2.0)
        limit = min(200, 2 * len(ids) + 5)  # decode_ids's length limit (max_output_lengths)
        assert greedy(out, ids, limit) == expected.tokens


def test_onnx_step_log_probs_match_the_default_model(exported):
    translator, out = exported
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


def test_onnx_encoder_takes_padded_batches_of_any_length(exported):
    translator, out = exported
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


def test_the_kernels_come_back_after_export():
    before = kernels() is not None
    with plain_pytorch():
        assert kernels() is None
    assert (kernels() is not None) == before


@pytest.mark.parametrize(("attention", "rnn_type"), [("none", "gru"), ("dot", "lstm")])
def test_lstm_and_attentionless_models_export_too(tmp_path, attention, rnn_type):
    model = tiny_model(attention, rnn_type)
    out = export_onnx(model, tmp_path)
    for ids in ([5, 6, 7, 8, 9], [10, 11]):
        with plain_pytorch():
            [[expected]] = decode_ids(model, [ids], beam=1)
        assert greedy(out, ids, 2 * len(ids) + 5) == expected.tokens
