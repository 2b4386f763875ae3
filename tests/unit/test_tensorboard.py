"""training.tensorboard: the metrics.jsonl records, read back from TensorBoard's event files."""

import json

import pytest
from tests.helpers import tiny_config

from softalign.train.tensorboard import tag


def test_tags_group_train_and_valid_scalars():
    assert tag("train_loss") == "train/loss"
    assert tag("valid_bleu") == "valid/bleu"
    assert tag("lr") == "train/lr"


def test_event_files_hold_the_losses_of_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from softalign.train.loop import train

    config = tiny_config(
        **{
            "training.tensorboard": True,
            "training.max_steps": 40,
            "training.valid_every": 20,
            "training.checkpoint_every": 40,
        }
    )
    run = tmp_path / "run"
    train(config, run, progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = {r["step"]: r["train_loss"] for r in records if "train_loss" in r}
    valid = {r["step"]: r["valid_loss"] for r in records if "valid_loss" in r}
    assert sorted(expected) == [20, 40] and sorted(valid) == [20, 40]

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert {"train/loss", "train/lr", "valid/loss", "valid/bleu"} <= set(events.Tags()["scalars"])
    found = {e.step: e.value for e in events.Scalars("train/loss")}
    assert found == pytest.approx(expected, rel=1e-6)
    found = {e.step: e.value for e in events.Scalars("valid/loss")}
    assert found == pytest.approx(valid, rel=1e-6)


def test_without_the_option_no_event_files_are_written(tiny_run):
    assert not (tiny_run / "tb").exists()
