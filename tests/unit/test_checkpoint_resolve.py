"""--checkpoint STEP|best|latest|PATH: which checkpoint directory each spelling names."""

import json

import pytest

from softalign.checkpoint import resolve_checkpoint
from softalign.errors import CheckpointError


def fake_run(tmp_path, steps, best=None):
    run = tmp_path / "run"
    for step in steps:
        path = run / "checkpoints" / f"step-{step:08d}"
        path.mkdir(parents=True)
        (path / "state.json").write_text("{}")
    if best is not None:
        (run / "best.json").write_text(json.dumps({"checkpoint": f"step-{best:08d}"}))
    return run


def test_default_is_best_then_latest(tmp_path):
    run = fake_run(tmp_path, [100, 200, 300], best=200)
    assert resolve_checkpoint(run).name == "step-00000200"
    (run / "best.json").unlink()
    assert resolve_checkpoint(run).name == "step-00000300"


def test_best_latest_and_step_numbers(tmp_path):
    run = fake_run(tmp_path, [100, 200, 300], best=200)
    assert resolve_checkpoint(run, "best").name == "step-00000200"
    assert resolve_checkpoint(run, "latest").name == "step-00000300"
    assert resolve_checkpoint(run, "100").name == "step-00000100"
    assert resolve_checkpoint(run, 100).name == "step-00000100"


def test_paths_as_given_or_inside_the_runs_checkpoints(tmp_path):
    run = fake_run(tmp_path, [100, 200])
    full = run / "checkpoints" / "step-00000100"
    assert resolve_checkpoint(run, full) == full
    assert resolve_checkpoint(run, str(full)) == full
    assert resolve_checkpoint(run, "step-00000100") == full


def test_an_exported_model_is_its_own_checkpoint(tmp_path):
    (tmp_path / "state.json").write_text("{}")
    assert resolve_checkpoint(tmp_path) == tmp_path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("150", "no checkpoint of step 150 (steps: 100, 200)"),
        ("best", "no best checkpoint"),
        ("nowhere/step-9", "nowhere/step-9: not a checkpoint (use a step number, best, latest"),
    ],
)
def test_unknown_checkpoints_are_one_line_errors(tmp_path, spec, message):
    run = fake_run(tmp_path, [100, 200])
    with pytest.raises(CheckpointError) as caught:
        resolve_checkpoint(run, spec)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_run_without_checkpoints_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        resolve_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        resolve_checkpoint(tmp_path, "latest")
