"""The training loop: loss falls, resume equals straight training, checkpoints are sound."""

import json
import re
import time

import pytest
import torch
from safetensors.torch import load_file
from tests.helpers import tiny_config

from softalign import checkpoint as ckpt
from softalign.errors import CheckpointError, SoftalignError
from softalign.train.inputs import describe_vocab
from softalign.train.loop import resume, train


def weights(run_dir):
    path = ckpt.latest_checkpoint(run_dir)
    return load_file(str(path / "model.safetensors"))


def test_n_steps_plus_resume_plus_n_steps_equals_2n_straight(tmp_path):
    config = tiny_config(**{"training.valid_every": 15, "training.checkpoint_every": 15})
    train(config, tmp_path / "straight", max_steps=60, progress=False)
    train(config, tmp_path / "resumed", max_steps=30, progress=False)
    state = resume(tmp_path / "resumed", max_steps=60, progress=False)
    assert state.step == 60
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    log = (tmp_path / "resumed" / "train.log").read_text()
    assert log.count("vocabulary: training SentencePiece") == 1  # the first start only
    assert log.count("vocabulary: loading the run's vocabularies") == 1  # the resume


def test_word_dropout_changes_training_and_resumes_exactly(tmp_path):
    config = tiny_config(**{"training.word_dropout": 0.3, "training.checkpoint_every": 10})
    train(config, tmp_path / "straight", max_steps=20, progress=False)
    train(config, tmp_path / "resumed", max_steps=10, progress=False)
    resume(tmp_path / "resumed", max_steps=20, progress=False)
    plain = tiny_config(**{"training.checkpoint_every": 10})
    train(plain, tmp_path / "plain", max_steps=20, progress=False)
    a, b, c = (weights(tmp_path / run) for run in ("straight", "resumed", "plain"))
    assert all(torch.equal(a[name], b[name]) for name in a)  # its draws resume too
    assert not all(torch.equal(a[name], c[name]) for name in a)


def test_start_up_says_what_it_does_before_step_0(tiny_run):
    """Reading (with the pair counts), the vocabulary, the model: each logged as it starts."""
    lines = (tiny_run / "train.log").read_text().splitlines()
    messages = [line.split(" ", 1)[1] for line in lines]  # without the time stamp
    expected = [
        "reading data: synthetic:reverse?min=3&max=12&n=3000",
        "read ",
        "vocabulary: training SentencePiece (unigram, 60 pieces, joint) on the training text",
        "building the model: GRU encoder-decoder, additive attention, ",
        "model: ",
    ]
    found = [next(i for i, m in enumerate(messages) if m.startswith(e)) for e in expected]
    assert found == sorted(found) and found[0] == 0, messages[:8]
    read = messages[found[1]]
    assert re.fullmatch(r"read [\d,]+ training pairs and [\d,]+ validation pairs in [\d.]+ s", read)
    first_step = next(i for i, m in enumerate(messages) if m.startswith("step "))
    assert found[-1] < first_step


def test_the_vocabulary_line_names_where_the_vocabulary_comes_from():
    def line(resume=False, is_main=True, **overrides):
        return describe_vocab(tiny_config(**overrides).data, resume, is_main)

    assert line().startswith("training SentencePiece (unigram, 60 pieces, joint)")
    assert line(resume=True) == line(is_main=False) == "loading the run's vocabularies"
    assert line(**{"data.binarized": "bin"}) == "copying the vocabularies of bin"
    assert line(**{"data.vocab.type": "none"}).startswith("word lists of pre-segmented text")


def test_validation_loss_falls_and_metrics_are_logged(tiny_run):
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if "valid_loss" in r]
    assert len(valid) == 2
    assert valid[-1]["valid_loss"] < valid[0]["valid_loss"]
    train_records = [r for r in records if "train_loss" in r]
    assert all(r["tokens_per_s"] > 0 for r in train_records)
    assert (tiny_run / "config.yaml").is_file() and (tiny_run / "best.json").is_file()


def test_checkpoints_are_pruned_but_best_is_kept(tmp_path):
    config = tiny_config(
        **{
            "training.checkpoint_every": 10,
            "training.valid_every": 10,
            "training.keep_checkpoints": 2,
        }
    )
    train(config, tmp_path / "r", max_steps=50, progress=False)
    names = [p.name for p in ckpt.list_checkpoints(tmp_path / "r")]
    best = ckpt.best_checkpoint(tmp_path / "r").name
    assert names[-2:] == ["step-00000040", "step-00000050"]
    assert best in names and len(names) <= 3


def test_corrupted_checkpoint_is_detected_by_checksum(tmp_path):
    train(tiny_config(), tmp_path / "r", max_steps=10, progress=False)
    path = ckpt.latest_checkpoint(tmp_path / "r")
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    state = ckpt.read_state(path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        ckpt.load_tensors(path, "model.safetensors", state)


def test_half_written_checkpoint_is_never_listed(tmp_path):
    root = tmp_path / "checkpoints"
    (root / ".tmp-step-00000100-123").mkdir(parents=True)
    (root / "step-00000200").mkdir()  # no state.json: incomplete
    assert ckpt.list_checkpoints(tmp_path) == []


def test_new_run_refuses_a_directory_that_holds_a_run(tiny_run):
    with pytest.raises(SoftalignError, match="use --resume"):
        train(tiny_config(), tiny_run, progress=False)


def test_time_budget_stops_training(tmp_path):
    config = tiny_config(**{"training.max_minutes": 0.02, "training.max_steps": 100000})
    state = train(config, tmp_path / "r", progress=False)
    assert "time budget" in state.stopped
    assert state.step < 100000


def test_checkpoint_writing_counts_in_the_time_budget(tmp_path, monkeypatch):
    """0.5 s per checkpoint, one every step, a 3-second budget: the clock sees the writing,
    so the run stops after a handful of steps, not after 3 s of steps alone."""
    write = ckpt.save_checkpoint

    def slow_write(*args, **kwargs):
        time.sleep(0.5)
        return write(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", slow_write)
    config = tiny_config(
        **{
            "training.max_minutes": 0.05,
            "training.max_steps": 100000,
            "training.checkpoint_every": 1,
            "training.keep_checkpoints": 1,
        }
    )
    state = train(config, tmp_path / "r", progress=False)
    assert "time budget" in state.stopped
    assert state.step <= 7  # each step costs at least the 0.5 s write
    assert state.elapsed_seconds >= 0.5 * state.step


def test_tied_embeddings_train_checkpoint_and_load(tmp_path):
    from softalign.translator import Translator

    config = tiny_config(**{"model.tie_embeddings": True, "model.output_size": 32})
    train(config, tmp_path / "r", max_steps=20, progress=False)
    translator = Translator.load(tmp_path / "r")
    model = translator.model
    assert model.generator.weight is model.decoder.embedding.weight
    saved = weights(tmp_path / "r")
    assert torch.equal(saved["generator.weight"], saved["decoder.embedding.weight"])
