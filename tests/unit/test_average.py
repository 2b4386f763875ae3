"""Checkpoint averaging: the mean of the weights, as a run directory translate can load."""

import pytest
import torch

from softalign import checkpoint as ckpt
from softalign.average import average_run, average_tensors, select_checkpoints
from softalign.errors import CheckpointError, SoftalignError
from softalign.translator import Translator


def test_floating_tensors_are_averaged_and_integer_ones_kept():
    a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([4, 5])}
    b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([4, 5])}
    mean = average_tensors([a, b])
    assert mean["w"].tolist() == [2.0, 4.0] and mean["w"].dtype == torch.float32
    assert mean["ids"].tolist() == [4, 5]


def test_checkpoints_of_different_models_are_refused():
    with pytest.raises(CheckpointError, match="different tensors"):
        average_tensors([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(CheckpointError, match="'ids' differs"):
        average_tensors([{"ids": torch.tensor([1])}, {"ids": torch.tensor([2])}])


def test_selection_by_last_or_steps(tiny_run):
    assert [p.name for p in select_checkpoints(tiny_run, last=1)] == ["step-00000200"]
    assert [p.name for p in select_checkpoints(tiny_run, steps=["100", "latest"])] == [
        "step-00000100",
        "step-00000200",
    ]
    with pytest.raises(CheckpointError, match="has 2 checkpoint"):
        select_checkpoints(tiny_run, last=5)
    with pytest.raises(SoftalignError, match="one of them"):
        select_checkpoints(tiny_run)


def test_averaged_run_holds_the_mean_and_translates(tiny_run, tmp_path):
    paths = select_checkpoints(tiny_run, last=2)
    written = average_run(tiny_run, tmp_path / "avg", paths)
    assert written.name == "step-00000200"
    loaded = [ckpt.load_tensors(p, "model.safetensors", ckpt.read_state(p)) for p in paths]
    mean = ckpt.load_tensors(written, "model.safetensors", ckpt.read_state(written))
    for name, tensor in mean.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (loaded[0][name] + loaded[1][name]) / 2)
    translator = Translator.load(tmp_path / "avg")
    assert translator.checkpoint == written
    [translation] = translator.translate(["ba be bi bo"], beam=2)
    assert translation.target_tokens  # the averaged model decodes


def test_an_averaged_run_cannot_be_resumed(tiny_run, tmp_path):
    from softalign.train.loop import resume

    average_run(tiny_run, tmp_path / "avg", select_checkpoints(tiny_run, last=2))
    with pytest.raises(CheckpointError, match="cannot be trained further"):
        resume(tmp_path / "avg", max_steps=210, progress=False)
