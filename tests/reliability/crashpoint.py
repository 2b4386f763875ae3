"""Run the softalign CLI and SIGKILL it at a chosen moment of a checkpoint write.

    python tests/reliability/crashpoint.py POINT N train ...

``POINT`` names a moment inside :mod:`softalign.checkpoint` (see ``POINTS``); the
process kills itself (``SIGKILL``: no cleanup, no ``finally``) the ``N``-th time it gets
there. ``POINT`` ``none`` runs the command normally. Used by ``test_faults.py`` to show that
no moment of a checkpoint write leaves a run that cannot be resumed exactly.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import safetensors.torch

from softalign import checkpoint as ckpt
from softalign import cli
from softalign.data import vocab


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def on_nth_call(module, name: str, n: int, when: str) -> None:
    """Replace ``module.name`` so that its ``n``-th call dies ``before`` or ``after`` it ran."""
    original = getattr(module, name)
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n and when == "before":
            die()
        result = original(*args, **kwargs)
        if calls == n:
            die()
        return result

    setattr(module, name, wrapper)


def half_written_tensor_file(n: int) -> None:
    """The ``n``-th safetensors file is cut in half, then the process dies."""
    original = safetensors.torch.save_file
    calls = 0

    def wrapper(tensors, filename, *args, **kwargs):
        nonlocal calls
        calls += 1
        original(tensors, filename, *args, **kwargs)
        if calls == n:
            size = os.path.getsize(filename)
            os.truncate(filename, size // 2)
            die()

    ckpt.save_file = wrapper


def half_deleted_checkpoint(n: int) -> None:
    """The ``n``-th deletion of a checkpoint directory removes its weights, then dies."""
    original = shutil.rmtree
    calls = 0

    def wrapper(path, *args, **kwargs):
        nonlocal calls
        path = Path(path)
        if (path / "state.json").is_file() and (path / "model.safetensors").is_file():
            calls += 1
            if calls == n:
                (path / "model.safetensors").unlink()
                die()
        return original(path, *args, **kwargs)

    shutil.rmtree = wrapper


def signal_in_vocabulary_training(n: int, sig: signal.Signals) -> None:
    """The ``n``-th SentencePiece training gets ``sig`` (a real signal to this process) while
    it reads its sentences."""
    trainer = vocab.spm.SentencePieceTrainer
    original, calls = trainer.train, 0

    def sentences_then_signal(sentences):
        for index, sentence in enumerate(sentences):
            if index == 100:
                os.kill(os.getpid(), sig)
            yield sentence

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n:
            kwargs["sentence_iterator"] = sentences_then_signal(kwargs["sentence_iterator"])
        return original(*args, **kwargs)

    trainer.train = wrapper


POINTS = {
    "none": lambda n: None,
    # weights written into the temporary directory, optimizer state not yet
    "after-model-file": lambda n: on_nth_call(ckpt, "_save_tensors", 2 * n - 1, "after"),
    "half-written-file": half_written_tensor_file,
    # both tensor files complete, state.json (or best.json) not yet written
    "before-json-write": lambda n: on_nth_call(ckpt, "write_json_atomic", n, "before"),
    # the temporary directory complete, not yet renamed into place
    "before-rename": lambda n: on_nth_call(ckpt, "_fsync_dir", 2 * n - 1, "before"),
    # renamed into place, older checkpoints not yet pruned
    "after-rename": lambda n: on_nth_call(ckpt, "_fsync_dir", 2 * n, "after"),
    "during-delete": half_deleted_checkpoint,
    "before-best-json": lambda n: on_nth_call(ckpt, "mark_best", n, "before"),
    # not a kill: SIGINT / SIGTERM while the vocabulary is trained
    "sigint-in-vocab": lambda n: signal_in_vocabulary_training(n, signal.SIGINT),
    "sigterm-in-vocab": lambda n: signal_in_vocabulary_training(n, signal.SIGTERM),
}


def main() -> int:
    point, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    POINTS[point](n)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
