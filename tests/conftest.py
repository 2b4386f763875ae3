"""Shared fixtures: the real data location and a tiny trained run (seconds on a CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import tiny_config

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SOFTALIGN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "multi30k" / "train.en.gz").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set SOFTALIGN_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run directory trained for 200 steps on synthetic reversal (shared, do not modify)."""
    from softalign.train.loop import train

    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    train(tiny_config(), run_dir, progress=False)
    return run_dir
