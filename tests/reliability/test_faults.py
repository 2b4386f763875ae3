"""Faults during training: kill -9 at any moment, Ctrl-C/SIGTERM, NaN losses, a full disk.

The kill tests run the real command line in a subprocess (``crashpoint.py`` kills it at a
named moment of a checkpoint write, or a timer kills it at a random moment), resume it, and
compare the final weights with those of a run that was never interrupted.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from tests.helpers import tiny_config
from tests.reliability.clicheck import error_line, run_cli, softalign

from softalign import checkpoint as ckpt
from softalign.config import save_config
from softalign.train import distributed, loop
from softalign.train.loop import resume, train

STEPS = 40
KILL_RUN = {  # checkpoints every 10 steps, validation (and best.json) every 20, keep 2
    "training.max_steps": STEPS,
    "training.checkpoint_every": 10,
    "training.valid_every": 20,
    "training.keep_checkpoints": 2,
}


def continue_args(config: Path, run: Path) -> list[str]:
    """Resume the run from its last checkpoint, or start it again when it has none."""
    if ckpt.list_checkpoints(run):
        return ["train", "--resume", str(run), "--no-progress"]
    return ["train", str(config), "-o", str(run), "--no-progress"]


def final_weights(run: Path) -> tuple[int, dict[str, torch.Tensor]]:
    path = ckpt.latest_checkpoint(run)
    state = ckpt.read_state(path)
    return state["step"], ckpt.load_tensors(path, "model.safetensors", state)


def assert_every_checkpoint_loads(run: Path) -> None:
    """Everything that looks like a checkpoint is complete and passes its checksums."""
    for path in ckpt.list_checkpoints(run):
        state = ckpt.read_state(path)
        ckpt.load_tensors(path, "model.safetensors", state)
        ckpt.load_tensors(path, "optimizer.safetensors", state)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [name for name in a if not torch.equal(a[name], b[name])]
    assert not differ, f"weights differ: {differ}"


@pytest.fixture(scope="module")
def kill_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "tiny.yaml"
    save_config(tiny_config(**KILL_RUN), path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, torch.Tensor]:
    """Final weights of the kill-test run trained straight through (in this process)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(tiny_config(**KILL_RUN), run, progress=False)
    step, weights = final_weights(run)
    assert step == STEPS
    return weights


def kill_at_then_resume(point: str, n: int, config: Path, run: Path) -> None:
    crashed = softalign(*continue_args(config, run), point=point, n=n)
    _, err = crashed.communicate(timeout=600)
    assert crashed.returncode == -signal.SIGKILL, f"did not die at {point} #{n}: {err[-2000:]}"
    assert_every_checkpoint_loads(run)
    last = ckpt.latest_checkpoint(run)
    resumed = softalign(*continue_args(config, run))
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    if last is not None:  # it went on from the last complete checkpoint
        assert f"resumed from {last} (step {int(last.name[5:])})" in err


FAST_POINTS = [("half-written-file", 3), ("during-delete", 1)]
SLOW_POINTS = [
    ("after-model-file", 2),
    ("before-json-write", 2),
    ("before-rename", 2),
    ("after-rename", 3),
    ("during-delete", 2),
    ("before-best-json", 1),
]


@pytest.mark.parametrize(
    ("point", "n"),
    FAST_POINTS + [pytest.param(*p, marks=pytest.mark.slow) for p in SLOW_POINTS],
)
def test_kill_during_checkpoint_write_then_resume_gives_uninterrupted_weights(
    point, n, kill_config, uninterrupted, tmp_path
):
    run = tmp_path / "run"
    kill_at_then_resume(point, n, kill_config, run)
    assert_every_checkpoint_loads(run)
    step, weights = final_weights(run)
    assert step == STEPS
    assert_same_weights(weights, uninterrupted)
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def reached_step(run: Path, step: int, process: subprocess.Popen, timeout: float = 600) -> bool:
    """Wait until the run has a checkpoint at ``step`` or later; False if the process ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if any(int(p.name[5:]) >= step for p in ckpt.list_checkpoints(run)):
            return True
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint at step {step} after {timeout:.0f} s")


@pytest.mark.slow
def test_kill_at_random_moments_then_resume_gives_uninterrupted_weights(
    kill_config, uninterrupted, tmp_path
):
    """Kill -9 at random moments: one during start-up, then one shortly after each of the
    checkpoints at steps 10, 20 and 30 appears (a random delay, so it lands in a step, a
    validation or the next write). Moments follow the run's progress, not the wall clock,
    so a fast machine cannot finish the run before the kills."""
    run, rng, kills = tmp_path / "run", random.Random(9), 0
    process = softalign(*continue_args(kill_config, run))
    time.sleep(rng.uniform(0.0, 0.5))
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        assert_every_checkpoint_loads(run)
    for target in (10, 20, 30):
        process = softalign(*continue_args(kill_config, run))
        if not reached_step(run, target, process):
            break
        time.sleep(rng.uniform(0.0, 0.05))
        if process.poll() is not None:  # finished before the kill: not a kill
            break
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        assert_every_checkpoint_loads(run)
        kills += 1
    process = softalign(*continue_args(kill_config, run))
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    step, weights = final_weights(run)
    assert kills == 3 and step == STEPS
    assert_same_weights(weights, uninterrupted)


# ------------------------------------------------------------------- Ctrl-C and SIGTERM


SIGNALS = pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)


@SIGNALS
def test_stop_signal_writes_a_final_checkpoint_then_exits_128_plus_the_signal(
    sig, status, tmp_path
):
    """``train ... && evaluate ...`` must not go on after Ctrl-C: exit 130 / 143, saved."""
    config = tmp_path / "long.yaml"
    save_config(
        tiny_config(
            **{
                "training.max_steps": 100_000,
                "training.checkpoint_every": 100_000,
                "training.valid_every": 100_000,
            }
        ),
        config,
    )
    run = tmp_path / "run"
    process = softalign("train", str(config), "-o", str(run), "--no-progress")
    deadline = time.monotonic() + 600  # generous: a busy machine
    while not (run / "metrics.jsonl").is_file():  # a step has been logged: it is training
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(sig)
    _, err = process.communicate(timeout=600)
    assert process.returncode == status, err[-2000:]
    assert f"interrupted by {sig.name}" in err
    step, _ = final_weights(run)
    assert f"stopped at step {step}: interrupted by {sig.name}" in err
    assert step >= 20
    assert_every_checkpoint_loads(run)


@SIGNALS
def test_stop_signal_during_vocabulary_training_leaves_no_half_made_run(sig, status, tmp_path):
    """A signal while the second of two vocabularies is trained (the first one is written):
    exit 130 / 143 and no run directory, not spm.* and train.log without config.yaml."""
    config = tmp_path / "two-vocabs.yaml"
    save_config(tiny_config(**{"data.vocab.joint": False}), config)
    run = tmp_path / "run"
    point = "sigint-in-vocab" if sig == signal.SIGINT else "sigterm-in-vocab"
    process = softalign("train", str(config), "-o", str(run), "--no-progress", point=point, n=2)
    _, err = process.communicate(timeout=600)
    assert process.returncode == status, err[-2000:]
    assert "Traceback" not in err
    assert f"interrupted by {sig.name}" in err
    assert not run.exists(), sorted(p.name for p in run.iterdir())


def test_stop_signal_during_vocabulary_training_keeps_what_was_there_before(tmp_path):
    config = tmp_path / "two-vocabs.yaml"
    save_config(tiny_config(**{"data.vocab.joint": False}), config)
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    process = softalign(
        "train", str(config), "-o", str(run), "--no-progress", point="sigint-in-vocab", n=2
    )
    _, err = process.communicate(timeout=600)
    assert process.returncode == 130, err[-2000:]
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------- non-finite losses


def nan_loss_on(calls: set[int] | None, after: int | None = None):
    """A ``batch_loss`` whose loss is NaN on the given calls (or every call after ``after``)."""
    original, count = distributed.batch_loss, 0

    def batch_loss(model, batch, label_smoothing=0.0):
        nonlocal count
        count += 1
        loss, tokens = original(model, batch, label_smoothing)
        if (calls and count in calls) or (after is not None and count > after):
            loss = loss * float("nan")
        return loss, tokens

    return batch_loss


def all_finite(weights: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in weights.values())


def test_isolated_nonfinite_losses_are_skipped_and_counted(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed, "batch_loss", nan_loss_on({3, 4, 9}))
    state = train(tiny_config(**{"training.max_steps": 20}), tmp_path / "run", progress=False)
    assert state.step == 20 and state.nonfinite_total == 3 and state.nonfinite_in_row == 0
    assert state.stopped == "reached 20 steps"
    assert all_finite(final_weights(tmp_path / "run")[1])


def test_nonfinite_losses_in_a_row_stop_training_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed, "batch_loss", nan_loss_on(None, after=12))
    config = tiny_config(**{"training.max_nonfinite_steps": 3, "training.checkpoint_every": 5})
    path = tmp_path / "nan.yaml"
    save_config(config, path)
    code, _, stderr = run_cli("train", path, "-o", tmp_path / "run", "--no-progress")
    assert code == 3
    assert "3 non-finite losses in a row: check the learning rate and data" in stderr
    step, weights = final_weights(tmp_path / "run")
    assert step == 12 and all_finite(weights)  # the last good step, nothing from the NaN steps


def nan_gradient_after(after: int):
    """A ``batch_loss`` whose loss stays finite but whose gradient is NaN after ``after`` calls.

    ``0 * sqrt(u)`` at ``u = 0`` has the value 0 and the gradient ``0 * inf = nan``.
    """
    original, count = distributed.batch_loss, 0

    def batch_loss(model, batch, label_smoothing=0.0):
        nonlocal count
        count += 1
        loss, tokens = original(model, batch, label_smoothing)
        if count > after:
            weight = next(model.parameters()).sum()
            loss = loss + 0.0 * torch.sqrt(weight - weight.detach())
        return loss, tokens

    return batch_loss


def test_nonfinite_gradient_is_skipped_like_a_nonfinite_loss(monkeypatch, tmp_path):
    monkeypatch.setattr(distributed, "batch_loss", nan_gradient_after(6))
    config = tiny_config(**{"training.max_nonfinite_steps": 2, "training.max_steps": 20})
    state = train(config, tmp_path / "run", progress=False)
    assert state.step == 6 and "non-finite" in state.stopped
    assert all_finite(final_weights(tmp_path / "run")[1])


# -------------------------------------------------------------------------- disk full


def fail_on_call(function, n: int, error: OSError):
    count = 0

    def wrapper(*args, **kwargs):
        nonlocal count
        count += 1
        if count >= n:
            raise error
        return function(*args, **kwargs)

    return wrapper


ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_during_checkpoint_is_a_clear_error_and_keeps_earlier_ones(monkeypatch, tmp_path):
    config, run = tmp_path / "c.yaml", tmp_path / "run"
    save_config(tiny_config(**{"training.checkpoint_every": 10, "training.max_steps": 30}), config)
    # calls 1-2 write step 10 (weights, optimizer); the weights of step 20 hit a full disk
    monkeypatch.setattr(ckpt, "save_file", fail_on_call(ckpt.save_file, 3, ENOSPC))
    code, _, stderr = run_cli("train", str(config), "-o", str(run), "--no-progress")
    line = error_line(stderr)
    assert code == 2
    assert "step-00000020: cannot write checkpoint (No space left on device)" in line
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000010"]
    assert_every_checkpoint_loads(run)
    monkeypatch.undo()  # space freed: the run resumes from step 10
    assert resume(run, progress=False).step == 30


def test_disk_full_writing_best_pointer_is_a_clear_error(monkeypatch, tmp_path):
    config, run = tmp_path / "c.yaml", tmp_path / "run"
    save_config(tiny_config(**{"training.valid_every": 10, "training.max_steps": 10}), config)
    original = ckpt.write_json_atomic

    def write_json_atomic(data, path):
        if path.name == "best.json":
            raise ENOSPC
        return original(data, path)

    monkeypatch.setattr(ckpt, "write_json_atomic", write_json_atomic)
    code, _, stderr = run_cli("train", str(config), "-o", str(run), "--no-progress")
    assert code == 2 and "best.json" in error_line(stderr)
    assert_every_checkpoint_loads(run)


def test_unwritable_run_directory_is_a_clear_error(tmp_path):
    config = tmp_path / "c.yaml"
    save_config(tiny_config(), config)
    (tmp_path / "file").write_text("not a directory\n")
    code, _, stderr = run_cli("train", str(config), "-o", str(tmp_path / "file" / "run"))
    assert code == 2 and "cannot write" in error_line(stderr)


def test_permission_denied_run_directory_is_a_clear_error(monkeypatch, tmp_path):
    config = tmp_path / "c.yaml"
    save_config(tiny_config(), config)
    denied = OSError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr(Path, "mkdir", fail_on_call(Path.mkdir, 1, denied))
    code, _, stderr = run_cli("train", str(config), "-o", str(tmp_path / "run"))
    assert code == 2 and "Permission denied" in error_line(stderr)


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 1 MiB file system (tmpfs); skipped where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        for handler in list(loop.log.handlers):  # train.log on the mount keeps it busy
            if str(getattr(handler, "baseFilename", "")).startswith(str(mount)):
                handler.close()
                loop.log.removeHandler(handler)
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_really_full_disk_is_a_clear_error_and_keeps_earlier_checkpoints(tiny_filesystem, tmp_path):
    # one checkpoint (weights and Adam moments) takes ~0.75 MB: the second cannot fit
    config, run = tmp_path / "c.yaml", tiny_filesystem / "run"
    save_config(
        tiny_config(
            **{
                "training.checkpoint_every": 5,
                "training.max_steps": 15,
                "training.valid_every": 100,
            }
        ),
        config,
    )
    code, _, stderr = run_cli("train", str(config), "-o", str(run), "--no-progress")
    assert code == 2 and "No space left on device" in error_line(stderr)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-00000005"]
    assert_every_checkpoint_loads(run)
