"""Fixtures shared by the reliability tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def run(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny trained run, free to break."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy
