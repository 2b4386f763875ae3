"""Checkpoint averaging: the element-wise mean of the weights of several checkpoints of a run.

    θ̄ = (1/N) Σ_k θ_k          for every floating-point tensor θ (in float64, cast back)

Averaging the last checkpoints of a run smooths the noise of the final SGD steps, usually for
a small BLEU gain at no training cost (as ``onmt_average_models`` and fairseq's
``average_checkpoints.py``). The result is a normal run directory (``config.yaml``, the
vocabularies, one checkpoint named after the newest step averaged) that ``translate``,
``evaluate`` and ``serve`` load like any other; it carries no optimizer state, so it cannot
be resumed.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from softalign import checkpoint as ckpt
from softalign.config import load_config
from softalign.data.dataset import vocab_files
from softalign.errors import CheckpointError, SoftalignError

AVERAGED_DIR = "averaged"  # RUN/averaged: the end-of-run average (train/final_average.py)


def current_average(run_dir: Path) -> Path | None:
    """``RUN/averaged`` when it averages up to the run's latest checkpoint, else None (no
    average, or a stale one: from before a resume whose end wrote none)."""
    averaged = run_dir / AVERAGED_DIR
    latest = ckpt.latest_checkpoint(run_dir)
    average = ckpt.latest_checkpoint(averaged) if averaged.is_dir() else None
    if latest is None or average is None or average.name != latest.name:
        return None
    return averaged


def select_checkpoints(
    run_dir: Path, last: int | None = None, steps: Sequence[str] | None = None
) -> list[Path]:
    """The checkpoints to average: the newest ``last`` ones, or those of ``steps``."""
    if (last is None) == (steps is None):
        raise SoftalignError("average: give --last N or --steps A,B,... (one of them)")
    if steps is not None:
        paths = [ckpt.resolve_checkpoint(run_dir, step) for step in steps]
        if len(set(paths)) != len(paths):
            raise SoftalignError("average: --steps names a checkpoint twice")
        return paths
    found = ckpt.list_checkpoints(run_dir)
    if last < 1:
        raise SoftalignError("average: --last must be at least 1")
    if len(found) < last:
        raise CheckpointError(f"{run_dir}: has {len(found)} checkpoint(s), --last asks for {last}")
    return found[-last:]


def average_tensors(checkpoints: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of every floating-point tensor over ``checkpoints`` (accumulated in float64,
    returned in its own dtype); other tensors (``output_ids``) must be equal and are kept."""
    first = checkpoints[0]
    for index, tensors in enumerate(checkpoints[1:], start=1):
        if tensors.keys() != first.keys() or any(tensors[k].shape != first[k].shape for k in first):
            raise CheckpointError(f"checkpoint {index + 1}: different tensors from the first")
    result = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            total = torch.zeros(tensor.shape, dtype=torch.float64)
            for tensors in checkpoints:
                total += tensors[name].double()
            result[name] = (total / len(checkpoints)).to(tensor.dtype)
        else:
            if any(not tensors[name].equal(tensor) for tensors in checkpoints):
                raise CheckpointError(f"'{name}' differs between the checkpoints")
            result[name] = tensor.clone()
    return result


def average_run(run_dir: str | Path, output_dir: str | Path, paths: Sequence[Path]) -> Path:
    """Write ``output_dir``: the run's config and vocabularies and one checkpoint holding the
    mean weights of ``paths``. Returns the checkpoint's directory."""
    run_dir, output_dir = Path(run_dir), Path(output_dir)
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise SoftalignError(f"{output_dir}: exists and is not empty")
    tensors = []
    for path in paths:
        state = ckpt.read_state(path)
        tensors.append(ckpt.load_tensors(path, "model.safetensors", state))
    return save_average(run_dir, output_dir, paths, average_tensors(tensors))


def save_average(
    run_dir: Path, output_dir: Path, paths: Sequence[Path], mean: dict[str, torch.Tensor]
) -> Path:
    """Write ``mean``, the average of the checkpoints ``paths`` of ``run_dir``, as the run
    directory ``output_dir`` (see :func:`average_run`). Returns the checkpoint's directory."""
    config = load_config(run_dir / "config.yaml")
    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "config.yaml", output_dir / "config.yaml")
    for vocab in vocab_files(run_dir, config.data.vocab.joint):
        if not vocab.is_file():
            raise CheckpointError(f"{vocab}: vocabulary not found")
        shutil.copyfile(vocab, output_dir / vocab.name)
    newest = max(int(ckpt.read_state(path)["step"]) for path in paths)
    state = {"averaged_from": [str(path.resolve()) for path in paths]}
    return ckpt.save_checkpoint(output_dir, newest, mean, {}, state)
