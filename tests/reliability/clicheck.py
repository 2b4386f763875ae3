"""Running the command line in tests: in this process (fast) or as a real subprocess."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from softalign import cli

REPO = Path(__file__).resolve().parents[2]
CRASHPOINT = Path(__file__).with_name("crashpoint.py")


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    """``softalign ARGS`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def error_line(stderr: str) -> str:
    """The one ``softalign: error:`` line of ``stderr``; fails on a traceback or more lines."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if line.startswith("softalign: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d ")  # training's own progress log, also on stderr


def fails_cleanly(*args: str | Path) -> str:
    """Run ``softalign ARGS``; assert exit status 2 and a one-line error; return that line.

    Besides the error, stderr may hold only the timestamped lines training logs as it starts.
    """
    code, _, stderr = run_cli(*args)
    line = error_line(stderr)
    assert code == 2, stderr
    others = [x for x in stderr.splitlines() if x.strip() and x != line]
    assert all(LOG_LINE.match(x) for x in others), stderr
    return line


def low_priority() -> None:
    """Run child processes niced, so that tests do not starve other work on the machine."""
    os.nice(max(0, 15 - os.nice(0)))


def softalign(*args: str | Path, point: str | None = None, n: int = 1, **kwargs):
    """Start ``softalign ARGS`` as a subprocess (dying at crash ``point``, if given)."""
    command = [sys.executable]
    command += [str(CRASHPOINT), point, str(n)] if point else ["-m", "softalign"]
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    options = dict(
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=low_priority,
    )
    return subprocess.Popen([*command, *map(str, args)], **{**options, **kwargs})
