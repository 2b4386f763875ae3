"""Self-describing, atomic checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint is a directory ``RUN/checkpoints/step-00001200/`` holding

- ``model.safetensors``      the weights
- ``optimizer.safetensors``  the optimizer's tensors (Adam moments) and the RNG states
- ``state.json``             step, data position, optimizer hyper-parameters, schedule,
                             early-stopping state, and the SHA-256 of both tensor files

It is written into a temporary sibling directory, flushed to disk, then renamed into place,
so a crash never leaves a half-written ``step-*`` directory; a checkpoint being replaced or
pruned is renamed out of the way before it is deleted, so a crash never leaves a half-deleted
one either, and the next save removes what a killed writer left behind. The checksums catch a
file damaged afterwards. Nothing is ever unpickled: loading a run needs only safetensors and
JSON.
``RUN/best.json`` names the best checkpoint (replaced atomically); pruning keeps it. The name
must be a ``step-NNNNNNNN`` of ``RUN/checkpoints``: any other (``../../x``, an absolute path)
is refused. Checkpoints are written and pruned only inside the run directory: a
``checkpoints/`` that is a symbolic link (or resolves) elsewhere is refused, so pruning can
never delete files in a foreign folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from softalign.errors import CheckpointError

FORMAT_VERSION = 1
STEP_DIR = re.compile(r"^step-(\d{8})$")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write tensors; ones sharing memory (tied embeddings) are stored as separate copies,
    since safetensors refuses shared storage (loading copies the same values into both)."""
    seen: set[int] = set()
    plain = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().contiguous().cpu()
        pointer = tensor.untyped_storage().data_ptr()
        plain[name] = tensor.clone() if pointer in seen else tensor
        seen.add(pointer)
    save_file(plain, str(path))
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _remove(path: Path, replacement: Path | None = None) -> None:
    """Delete a checkpoint directory, first renamed out of sight (never seen half-deleted);
    ``replacement`` takes its name in between."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.rename(path, trash)
    if replacement is not None:
        os.rename(replacement, path)
    shutil.rmtree(trash, ignore_errors=True)


def _remove_leftovers(root: Path) -> None:
    """Temporary directories of a writer that was killed (``.tmp-*``, ``.trash-*``)."""
    for path in root.iterdir():
        if path.name.startswith((".tmp-step-", ".trash-step-")):
            shutil.rmtree(path, ignore_errors=True)


def write_json_atomic(data: dict[str, Any], path: Path) -> None:
    """Write JSON to ``path`` via a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def checkpoint_root(run_dir: Path) -> Path:
    """``run_dir/checkpoints``, refused unless it lies inside the run directory (not a
    symbolic link, and resolving within it): only there may checkpoints be written or pruned."""
    root = run_dir / "checkpoints"
    resolved, inside = root.resolve(), run_dir.resolve()
    if root.is_symlink() or (root.exists() and resolved.parent != inside):
        raise CheckpointError(
            f"{root}: a symbolic link to {resolved}; checkpoints are written and pruned only "
            "in a real directory inside the run directory"
        )
    return root


def save_checkpoint(
    run_dir: Path,
    step: int,
    model_tensors: dict[str, torch.Tensor],
    extra_tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> Path:
    """Atomically write checkpoint ``step`` and return its directory."""
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    try:
        _remove_leftovers(root)
        tmp.mkdir()
        _save_tensors(model_tensors, tmp / "model.safetensors")
        _save_tensors(extra_tensors, tmp / "optimizer.safetensors")
        meta = dict(
            state,
            format_version=FORMAT_VERSION,
            step=step,
            checksums={
                "model.safetensors": sha256(tmp / "model.safetensors"),
                "optimizer.safetensors": sha256(tmp / "optimizer.safetensors"),
            },
        )
        write_json_atomic(meta, tmp / "state.json")
        _fsync_dir(tmp)
        if final.exists():  # the same step saved again
            _remove(final, replacement=tmp)
        else:
            os.rename(tmp, final)
        _fsync_dir(root)
    except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(
            f"{final}: cannot write checkpoint ({getattr(exc, 'strerror', None) or exc}); "
            "earlier checkpoints are intact"
        ) from None
    return final


def read_state(directory: Path) -> dict[str, Any]:
    """The checkpoint's ``state.json``, validated."""
    path = directory / "state.json"
    if not path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint (no state.json)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint state ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("checksums"), dict):
        raise CheckpointError(f"{path}: corrupt checkpoint state (no checksums)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state.get('format_version')!r} is not supported "
            f"(this softalign reads format {FORMAT_VERSION})"
        )
    return state


def load_tensors(directory: Path, name: str, state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Load one tensor file of a checkpoint after verifying its checksum."""
    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    expected = state["checksums"].get(name)
    if expected is None:
        raise CheckpointError(f"{directory / 'state.json'}: no checksum for {name}")
    if sha256(path) != expected:
        raise CheckpointError(f"{path}: checksum mismatch (file truncated or corrupted)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file ({exc})") from None


@dataclass
class Loaded:
    """A checkpoint read whole and verified: its state and both tensor files."""

    path: Path
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    extra: dict[str, torch.Tensor]  # optimizer tensors and RNG states


def load_newest_intact(run_dir: Path, warn: Callable[[str], None]) -> Loaded | None:
    """The newest checkpoint that reads and passes its checksums (None: there is none).

    Damaged newer ones are skipped, and ``warn`` gets one line naming them and the one used;
    when every checkpoint is damaged, the newest one's error is raised.
    """
    damaged: list[tuple[Path, CheckpointError]] = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            state = read_state(path)
            model = load_tensors(path, "model.safetensors", state)
            extra = load_tensors(path, "optimizer.safetensors", state)
        except CheckpointError as exc:
            damaged.append((path, exc))
            continue
        if damaged:
            names = ", ".join(p.name for p, _ in damaged)
            warn(
                f"warning: skipping damaged checkpoint {names} ({damaged[0][1]}); "
                f"resuming from {path.name} instead"
            )
        return Loaded(path, state, model, extra)
    if damaged:
        raise damaged[0][1]
    return None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if STEP_DIR.match(p.name) and not p.is_symlink() and (p / "state.json").is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def best_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``best.json`` names, if any; a name that is not a ``step-NNNNNNNN`` of
    ``run_dir/checkpoints`` (a path, ``..``) is refused."""
    pointer = run_dir / "best.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise CheckpointError(f"{pointer}: corrupt") from None
    if not isinstance(name, str) or not STEP_DIR.match(name):
        raise CheckpointError(
            f"{pointer}: 'checkpoint' must name a step-NNNNNNNN directory of "
            f"{run_dir / 'checkpoints'}, got {name!r}"
        )
    path = run_dir / "checkpoints" / name
    return path if (path / "state.json").is_file() else None


def resolve_checkpoint(run_dir: Path, spec: str | Path | None = None) -> Path:
    """The checkpoint directory ``spec`` names in ``run_dir``.

    ``None`` means the best checkpoint, else the latest, else ``run_dir`` itself when it is an
    exported model (weights and ``state.json`` at its top). ``"best"`` and ``"latest"`` mean
    those; an integer is a training step (``1200`` -> ``checkpoints/step-00001200``); anything
    else is a path, taken as given or, when that does not exist, inside ``run_dir/checkpoints``.
    Raises :class:`CheckpointError` (one line) when nothing matches.
    """
    run_dir = Path(run_dir)
    if spec is None or str(spec) == "":
        found = best_checkpoint(run_dir) or latest_checkpoint(run_dir)
        if found is None and (run_dir / "state.json").is_file():
            found = run_dir  # an exported model: softalign export
        if found is None:
            raise CheckpointError(f"{run_dir}: no checkpoint found")
        return found
    text = str(spec)
    if text == "best":
        found = best_checkpoint(run_dir)
        if found is None:
            raise CheckpointError(f"{run_dir}: no best checkpoint (no best.json: never validated)")
        return found
    if text == "latest":
        found = latest_checkpoint(run_dir)
        if found is None:
            raise CheckpointError(f"{run_dir}: no checkpoint found")
        return found
    if text.isdigit():
        path = run_dir / "checkpoints" / f"step-{int(text):08d}"
        if not (path / "state.json").is_file():
            steps = [int(STEP_DIR.match(p.name).group(1)) for p in list_checkpoints(run_dir)]
            have = ", ".join(map(str, steps)) or "none"
            raise CheckpointError(f"{run_dir}: no checkpoint of step {int(text)} (steps: {have})")
        return path
    for path in (Path(text), run_dir / "checkpoints" / text):
        if (path / "state.json").is_file():
            return path
    raise CheckpointError(
        f"{text}: not a checkpoint (use a step number, best, latest or a checkpoint directory)"
    )


def mark_best(run_dir: Path, checkpoint: Path, metrics: dict[str, Any]) -> None:
    try:
        write_json_atomic({"checkpoint": checkpoint.name, **metrics}, run_dir / "best.json")
    except OSError as exc:
        raise CheckpointError(
            f"{run_dir / 'best.json'}: cannot write ({exc.strerror or exc})"
        ) from None


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, never the best one (and nothing outside
    the run directory: see :func:`checkpoint_root`)."""
    checkpoint_root(run_dir)
    best = best_checkpoint(run_dir)
    for path in list_checkpoints(run_dir)[:-keep]:
        if best is None or path.name != best.name:
            _remove(path)


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: Path) -> None:
    """Load weights strictly; a different architecture is an error naming what differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: different architecture: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"{where}: different architecture: '{name}' has shape {tuple(tensor.shape)}, "
                f"the config builds {tuple(own[name].shape)}"
            )
    model.load_state_dict(tensors)
