"""Resume: what it may change in the configuration, damaged checkpoints, and metrics.jsonl.

Every test resumes a private copy of one short run (20 steps, checkpoints at 10 and 20)
through the command line, in this process.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from tests.helpers import tiny_config
from tests.reliability.clicheck import fails_cleanly, run_cli

from softalign import checkpoint as ckpt
from softalign.train.loop import train

SHORT = {
    "training.max_steps": 20,
    "training.checkpoint_every": 10,
    "training.valid_every": 10,
    "training.log_every": 5,
    "training.keep_checkpoints": 3,
}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("short") / "run"
    train(tiny_config(**SHORT), run, progress=False)
    return run


@pytest.fixture
def run(short_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(short_run, copy)
    return copy


def resume(run: Path, *extra: str, steps: int = 30) -> tuple[int, str, str]:
    return run_cli("train", "--resume", run, "--no-progress", "--max-steps", str(steps), *extra)


def edit_config(run: Path, section: str, key: str, value) -> None:
    path = run / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    raw[section][key] = value
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def metric_rows(run: Path, key: str) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if key in row]


# ------------------------------------------------------------------ configuration changes


@pytest.mark.parametrize(
    "change",
    ["model.dropout=0.5", "data.corpus=synthetic:reverse?min=3&max=12&n=4000", "training.seed=7"],
)
def test_resume_refuses_a_set_that_changes_data_vocabulary_or_model_keys(change, run):
    line = fails_cleanly("train", "--resume", run, "--no-progress", "--set", change)
    assert change.partition("=")[0] in line and "cannot change" in line
    assert ckpt.latest_checkpoint(run).name == "step-00000020"  # nothing trained


def test_resume_refuses_an_edited_config_whose_data_or_model_keys_differ(run):
    edit_config(run, "data", "corpus", "synthetic:reverse?min=3&max=12&n=4000")
    edit_config(run, "model", "attention_size", 16)
    line = fails_cleanly("train", "--resume", run, "--no-progress")
    assert "config.yaml" in line and "data.corpus, model.attention_size" in line


def test_resume_refuses_an_optimisation_key_edited_by_hand_naming_the_set(run):
    edit_config(run, "training", "lr", 0.5)
    line = fails_cleanly("train", "--resume", run, "--no-progress")
    assert "training.lr edited by hand" in line and "--set training.lr=0.5" in line


def test_resume_with_set_lr_applies_logs_and_writes_it_back(run):
    code, _, err = resume(run, "--set", "training.lr=0.0005")
    assert code == 0, err
    assert "training.lr 0.001 -> 0.0005" in err
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["lr"] == 0.0005
    assert {row["lr"] for row in metric_rows(run, "lr") if row["step"] > 20} == {0.0005}
    code, _, err = resume(run, steps=40)  # a plain resume goes on with the new setting
    assert code == 0, err
    assert {row["lr"] for row in metric_rows(run, "lr") if row["step"] > 30} == {0.0005}
    assert not list(run.glob(".config.yaml*")), "temporary file left behind"


def test_a_hand_edit_confirmed_by_the_same_set_is_accepted(run):
    edit_config(run, "training", "lr", 0.0005)
    code, _, err = resume(run, "--set", "training.lr=0.0005")
    assert code == 0, err
    assert "training.lr 0.001 -> 0.0005" in err


def test_a_checkpoint_without_a_stored_config_still_resumes_and_takes_a_set(run):
    """Checkpoints written before configs were stored: only --set is checked."""
    for path in (run / "checkpoints").glob("step-*/state.json"):
        state = json.loads(path.read_text())
        del state["config"]
        path.write_text(json.dumps(state))
    code, _, err = resume(run, "--set", "training.lr=0.0005")
    assert code == 0, err
    assert "training.lr 0.001 -> 0.0005" in err
    assert "model.dropout" in fails_cleanly(
        "train", "--resume", run, "--no-progress", "--set", "model.dropout=0.3"
    )


def test_resume_with_a_set_to_the_same_value_is_no_change(run):
    before = (run / "config.yaml").read_text()
    code, _, err = resume(run, "--set", "model.dropout=0.0")
    assert code == 0, err
    assert (run / "config.yaml").read_text() == before


# ------------------------------------------------------------------- damaged checkpoints


def test_resume_after_a_corrupt_newest_checkpoint_falls_back_to_the_newest_intact(run):
    newest = run / "checkpoints" / "step-00000020" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    code, _, err = resume(run)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "skipping damaged checkpoint" in line]
    assert len(warnings) == 1 and "step-00000020" in warnings[0]
    assert "resuming from step-00000010 instead" in warnings[0]
    assert "(step 10)" in err
    assert ckpt.read_state(ckpt.latest_checkpoint(run))["step"] == 30


def test_resume_with_every_checkpoint_corrupt_is_a_one_line_error(run):
    for path in (run / "checkpoints").glob("step-*/state.json"):
        path.write_text("{")
    assert "corrupt checkpoint state" in fails_cleanly("train", "--resume", run, "--no-progress")


# ----------------------------------------------------------------------- metrics.jsonl


def test_metrics_have_no_duplicate_steps_after_a_kill_and_resume(run):
    """A run killed after logging past its last checkpoint (step 20 deleted: as if killed
    before writing it), with a torn last line, then resumed: every step is logged once."""
    shutil.rmtree(run / "checkpoints" / "step-00000020")
    (run / "best.json").unlink()
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 21, "train_lo')
    code, _, err = resume(run)
    assert code == 0, err
    for key in ("train_loss", "valid_loss"):
        steps = [row["step"] for row in metric_rows(run, key)]
        assert steps == sorted(set(steps)), f"{key} rows: {steps}"
    assert [row["step"] for row in metric_rows(run, "valid_loss")] == [10, 20, 30]
