"""TensorBoard event files beside ``metrics.jsonl`` (``training.tensorboard: true``).

Every record the loop appends to ``metrics.jsonl`` is mirrored as scalars in ``RUN/tb``, at
its step, by PyTorch's own writer (``torch.utils.tensorboard``, which needs the
``tensorboard`` package: ``pip install 'softalign[tensorboard]'``). Keys ``train_*`` and
``valid_*`` become the tags ``train/*`` and ``valid/*``; ``lr``, ``tokens_per_s`` and
``epoch`` go under ``train/``. Look at a run with ``tensorboard --logdir RUN/tb``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from softalign.errors import ConfigError

SKIPPED = ("step", "elapsed_s")


def tag(key: str) -> str:
    """``train_loss`` -> ``train/loss``, ``valid_bleu`` -> ``valid/bleu``, ``lr`` ->
    ``train/lr``."""
    for section in ("train", "valid"):
        if key.startswith(section + "_"):
            return f"{section}/{key[len(section) + 1 :]}"
    return f"train/{key}"


class TensorBoardLog:
    """One event-file writer for a run; :meth:`write` takes the ``metrics.jsonl`` records."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        """``purge_step``: on resume, the first step trained again; TensorBoard hides the
        events a killed run wrote from there on (as ``metrics.jsonl`` drops its rows)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "config key 'training.tensorboard': needs the tensorboard package "
                "(pip install 'softalign[tensorboard]')"
            ) from None
        self.log_dir = log_dir
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        """Scalars of one record at ``record["step"]``, flushed (readable while training)."""
        step = int(record["step"])
        for key, value in record.items():
            if key in SKIPPED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(tag(key), value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
