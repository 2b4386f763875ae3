"""Learning-rate schedules: the plateau decay, and the budget schedules that end at min_lr
exactly at the deadline (by steps or by wall clock), resumed along the same curve."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from tests.helpers import tiny_config

from softalign import checkpoint as ckpt
from softalign.config import TrainingConfig
from softalign.errors import ConfigError
from softalign.train.loop import resume, train
from softalign.train.schedules import BudgetSchedule, PlateauSchedule, build_schedule


def budget(shape, **fields):
    config = TrainingConfig(**{"schedule": shape, "lr": 1e-3, "min_lr": 1e-5, **fields})
    return build_schedule(config)


def test_the_config_picks_the_schedule():
    assert isinstance(build_schedule(TrainingConfig()), PlateauSchedule)
    assert isinstance(budget("cosine"), BudgetSchedule)


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_budget_by_steps_warms_up_then_ends_at_min_lr(shape):
    schedule = budget(shape, warmup_steps=10, max_steps=100)
    assert schedule.lr(5) == pytest.approx(budget(shape, max_steps=100).lr(5) / 2)  # warming up
    curve = [schedule.lr(step) for step in range(10, 101)]
    assert all(a >= b for a, b in zip(curve, curve[1:], strict=False))  # then only down
    assert curve[-1] == pytest.approx(1e-5)
    assert schedule.lr(500) == pytest.approx(1e-5)  # past the end: stays at min_lr


def test_the_equations_in_the_docstring():
    cosine = budget("cosine", max_steps=100)
    linear = budget("linear", max_steps=100)
    for step in (0, 25, 50, 75, 100):
        p = step / 100
        half_cosine = (1 + math.cos(math.pi * p)) / 2
        assert cosine.lr(step) == pytest.approx(1e-5 + (1e-3 - 1e-5) * half_cosine)
        assert linear.lr(step) == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 - p))


def test_a_time_budget_decays_by_the_clock_whichever_limit_comes_first():
    schedule = budget("linear", max_steps=1000, max_minutes=2.0)
    # 60 of 120 seconds used at step 10: half the budget, although 1% of the steps
    assert schedule.progress(10, 60.0) == pytest.approx(0.5)
    assert schedule.lr(10, 60.0) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    # the step limit is nearer: it decides
    assert schedule.progress(900, 12.0) == pytest.approx(0.9)
    assert schedule.lr(2000, 500.0) == pytest.approx(1e-5)


def test_plateau_halves_after_patience_validations_without_improvement():
    schedule = PlateauSchedule.from_config(TrainingConfig(lr=1e-3, plateau_patience=1))
    for loss in (3.0, 2.0, 2.5, 2.6):
        schedule.on_validation(loss)
    assert schedule.lr(100) == pytest.approx(5e-4)
    budget("cosine").on_validation(9.0)  # ignored by the budget schedules


def test_an_unknown_schedule_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="training.schedule"):
        tiny_config(**{"training.schedule": "exponential"})


def logged_lrs(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["lr"] for r in map(json.loads, lines) if "lr" in r}


def test_training_follows_the_plan_and_resume_continues_it_exactly(tmp_path):
    config = tiny_config(
        **{
            "training.schedule": "linear",
            "training.max_steps": 40,
            "training.lr": 0.004,
            "training.min_lr": 0.0001,
            "training.log_every": 10,
            "training.valid_every": 20,
            "training.checkpoint_every": 20,
        }
    )
    train(config, tmp_path / "straight", progress=False)
    lrs = logged_lrs(tmp_path / "straight")
    for step, lr in lrs.items():  # the lr of step s is set with progress s / max_steps
        assert lr == pytest.approx(0.0001 + 0.0039 * (1 - step / 40)), step
    assert lrs[40] == pytest.approx(0.0001)
    train(config, tmp_path / "resumed", max_steps=20, progress=False)
    resume(tmp_path / "resumed", progress=False)
    assert logged_lrs(tmp_path / "resumed") == lrs
    a = load_file(str(ckpt.latest_checkpoint(tmp_path / "straight") / "model.safetensors"))
    b = load_file(str(ckpt.latest_checkpoint(tmp_path / "resumed") / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_the_end_of_a_run_averages_the_last_checkpoints_chosen_on_validation(tmp_path):
    from softalign.average import average_tensors
    from softalign.train.final_average import AVERAGED_DIR
    from softalign.translator import Translator

    config = tiny_config(
        **{
            "training.schedule": "cosine",
            "training.max_steps": 40,
            "training.checkpoint_every": 10,
            "training.valid_every": 20,
            "training.keep_checkpoints": 4,
            "training.average_last": 4,
        }
    )
    train(config, tmp_path / "run", progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    chosen = [r for r in records if "averaged_last" in r]
    assert len(chosen) == 1 and 1 <= chosen[0]["averaged_last"] <= 4
    k = chosen[0]["averaged_last"]
    # the averaged run holds the mean of the last k checkpoints, and loads like any run
    paths = ckpt.list_checkpoints(tmp_path / "run")[-k:]
    expected = average_tensors([load_file(str(p / "model.safetensors")) for p in paths])
    averaged = tmp_path / "run" / AVERAGED_DIR
    got = load_file(str(ckpt.latest_checkpoint(averaged) / "model.safetensors"))
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    translator = Translator.load(averaged, backend="reference")
    assert translator.translate(["a b c"])[0].text is not None


def test_average_last_needs_the_checkpoints_kept():
    with pytest.raises(ConfigError, match="training.average_last"):
        tiny_config(**{"training.average_last": 5, "training.keep_checkpoints": 2})
