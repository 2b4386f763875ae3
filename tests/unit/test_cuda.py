"""The CUDA paths: training in fp32, bf16 and fp16 on a GPU, resuming with the loss scale,
the same model and translations as on the CPU, the chunked generator loss and the
per-sequence weight gradients on the GPU, and bf16/fp16 decoding.

Skipped where no CUDA device is present (CI); ``benchmarks/gpu_check.sh`` runs them on a GPU
machine. NCCL needs two GPUs for a process group of two and is not covered here.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from tests.helpers import tiny_config

from softalign import checkpoint as ckpt
from softalign.data.synthetic import WORDS, generate
from softalign.loss import corpus_loss
from softalign.train.loop import resume, train
from softalign.translator import Translator

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (benchmarks/gpu_check.sh runs these on a GPU machine)",
)


def _train_losses(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["train_loss"] for x in lines if "train_loss" in x]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_lowers_the_loss_with_fp32_weights(tmp_path, precision):
    config = tiny_config(**{"training.precision": precision, "training.device": "cuda"})
    train(config, tmp_path / "run", max_steps=120, progress=False)
    losses = _train_losses(tmp_path / "run")
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0] - 0.1
    latest = ckpt.latest_checkpoint(tmp_path / "run")
    state = ckpt.read_state(latest)
    weights = ckpt.load_tensors(latest, "model.safetensors", state)
    assert all(t.dtype == torch.float32 for t in weights.values() if t.is_floating_point())
    scaler = state["precision"]
    assert (precision == "fp16") == bool(scaler)  # only fp16 keeps a loss scale
    if precision == "fp16":
        assert scaler["scale"] > 0


def test_fp16_run_resumes_with_its_loss_scale(tmp_path):
    config = tiny_config(**{"training.precision": "fp16", "training.device": "cuda"})
    train(config, tmp_path / "run", max_steps=100, progress=False)
    saved = ckpt.read_state(ckpt.latest_checkpoint(tmp_path / "run"))["precision"]
    resume(tmp_path / "run", max_steps=200, progress=False)
    latest = ckpt.latest_checkpoint(tmp_path / "run")
    assert latest.name == "step-00000200"
    resumed = ckpt.read_state(latest)["precision"]
    # the scale went on from the saved one (it only halves on overflow, doubles every 2000)
    assert saved["scale"] / 2**4 <= resumed["scale"] <= saved["scale"] * 2


def test_model_on_cuda_gives_the_cpu_loss(tiny_run):
    on_cpu = Translator.load(tiny_run, device="cpu")
    on_gpu = Translator.load(tiny_run, device="cuda")
    pairs = generate("reverse", 200, 3, 12, len(WORDS), seed=7)
    src = on_cpu.src_vocab.encode(pairs.src)
    tgt = on_cpu.tgt_vocab.encode(pairs.tgt)
    cpu_loss, _ = corpus_loss(on_cpu.model, src, tgt, 600, torch.device("cpu"))
    gpu_loss, _ = corpus_loss(on_gpu.model, src, tgt, 600, on_gpu.device)
    assert on_gpu.device.type == "cuda"
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)


def test_beam_search_on_cuda_finds_the_cpu_translations(tiny_run):
    sources = generate("reverse", 60, 3, 12, len(WORDS), seed=11).src
    on_cpu = Translator.load(tiny_run, device="cpu").translate(sources, beam=3)
    on_gpu = Translator.load(tiny_run, device="cuda").translate(sources, beam=3)
    same = sum(a.text == b.text for a, b in zip(on_cpu, on_gpu, strict=True))
    # float sums differ in their last bits between devices: a near-tie may break either way
    assert same >= len(sources) - 2
    assert all(
        a.score == pytest.approx(b.score, abs=1e-3)
        for a, b in zip(on_cpu, on_gpu, strict=True)
        if a.text == b.text
    )


@pytest.mark.parametrize("autocast", [None, torch.bfloat16, torch.float16])
def test_generator_loss_on_cuda_equals_cross_entropy(autocast):
    import torch.nn.functional as F

    from softalign.fast.generator_loss import generator_cross_entropy

    def run(fused):
        torch.manual_seed(0)
        generator = torch.nn.Linear(64, 500).cuda()
        x = torch.randn(300, 64, device="cuda", requires_grad=True)
        target = torch.randint(0, 500, (300,), device="cuda")
        with torch.autocast("cuda", dtype=autocast or torch.float32, enabled=bool(autocast)):
            if fused:
                loss = generator_cross_entropy(x, generator, target, 0.1, chunk_rows=128)
            else:
                logits = generator(x).float()
                loss = F.cross_entropy(logits, target, label_smoothing=0.1, reduction="sum")
        loss.backward()
        return [loss.detach(), x.grad, generator.weight.grad, generator.bias.grad]

    tolerance = 1e-4 if autocast is None else 0.02
    for got, expected in zip(run(True), run(False), strict=True):
        assert got.dtype == torch.float32
        scale = float(expected.abs().max())
        assert torch.allclose(got, expected, rtol=tolerance, atol=tolerance * scale)


def test_decoder_gradients_on_cuda_equal_the_cpu_ones():
    """One weight-gradient product per sequence (step_weights) on the GPU."""
    from tests.unit.test_model import batch, small

    torch.manual_seed(1)
    model = small()
    grads = {}
    for device in ("cpu", "cuda"):
        model.zero_grad()
        model.to(device)
        src, lengths, tgt_in = batch()
        attentional, _ = model(src.to(device), lengths, tgt_in.to(device))
        model.logits(attentional).log_softmax(-1)[..., 5].sum().backward()
        grads[device] = {n: p.grad.cpu() for n, p in model.named_parameters() if p.grad is not None}
    for name, expected in grads["cpu"].items():
        assert torch.allclose(grads["cuda"][name], expected, atol=1e-4), name


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_decoding_on_cuda_keeps_the_fp32_quality(tiny_run, precision):
    from softalign.metrics import score_corpus

    translator = Translator.load(tiny_run, device="cuda")
    pairs = generate("reverse", 60, 3, 12, len(WORDS), seed=11)
    full = translator.translate(pairs.src, beam=3)
    translator.config = translator.config.replace(**{"decoding.precision": precision})
    low = translator.translate(pairs.src, beam=3)
    # the tiny model has near-ties that a low-precision product breaks either way: compare
    # the quality against the references, not the strings
    full_bleu = score_corpus([t.text for t in full], pairs.tgt).bleu
    low_bleu = score_corpus([t.text for t in low], pairs.tgt).bleu
    assert low_bleu >= full_bleu - 3.0, (low_bleu, full_bleu)
