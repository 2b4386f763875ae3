"""Ctrl-C and SIGTERM during training, and the exit status that tells scripts about them.

A signal during start-up (data, vocabularies, model) raises
:class:`~softalign.errors.Interrupted`, and a new run removes what it had written
(:func:`remove_new_files`); during the loop it asks for a checkpoint and a stop after the
current step. Either way the command exits 128 + the signal (130 SIGINT, 143 SIGTERM), so
``softalign train ... && softalign evaluate ...`` stops there.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from softalign.errors import Interrupted
from softalign.train.session import TrainState

log = logging.getLogger("softalign")


class StopFlag:
    """SIGINT/SIGTERM: while ``raising`` (start-up: data, vocabularies, model) they raise
    :class:`~softalign.errors.Interrupted`; once the loop runs they ask it to checkpoint and
    stop after the current step."""

    def __init__(self, raising: bool = False) -> None:
        self.requested = ""
        self.signum = 0
        self.raising = raising
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested, self.signum = signal.Signals(signum).name, signum
        if self.raising:
            raise Interrupted(signum)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def exit_status(state: TrainState) -> int:
    """0 for a run that ended by its limits; 128 + the signal (130 SIGINT, 143 SIGTERM) for an
    interrupted one (checkpointed); 3 when non-finite losses stopped it."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if state.stopped == f"interrupted by {sig.name}":
            return 128 + sig
    if state.stopped.startswith("interrupted by"):  # another rank got the signal
        return 128 + signal.SIGINT
    return 3 if "non-finite" in state.stopped else 0


def remove_new_files(run_dir: Path, before: set[str] | None) -> None:
    """Delete what an interrupted start wrote into ``run_dir`` (all of it if it is new)."""
    for handler in list(log.handlers):  # train.log must be closed before it is deleted
        if getattr(handler, "_softalign", False):
            handler.close()
            log.removeHandler(handler)
    if before is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in set(os.listdir(run_dir)) - before:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
