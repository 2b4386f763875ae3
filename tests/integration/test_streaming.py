"""Streaming: a pipe or a terminal is translated line by line as lines arrive; a file in
chunks. The first translation of a pipe arrives before the second line is written."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.helpers import tiny_config

from softalign.config import save_config
from softalign.data.stream import ArrivingLines, arrived_batches, input_batches, is_live
from softalign.errors import DataError

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 300  # a generous bound on a loaded machine: without streaming, the wait is forever


def read_line(fd: int, timeout: float) -> bytes | None:
    """One line from ``fd`` (unbuffered), or None if it does not come within ``timeout``."""
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        byte = os.read(fd, 1)
        if not byte:
            return None
        line += byte
    return line


def test_first_translation_of_a_pipe_comes_before_the_second_line_is_written(tiny_run):
    process = subprocess.Popen(
        [sys.executable, "-m", "softalign", "translate", str(tiny_run), "--beam", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        cwd=REPO,
        env=dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                filter(None, [os.environ.get("PYTHONPATH"), str(REPO / "src")])
            ),
        ),
    )
    try:
        process.stdin.write(b"ba be bi\n")
        first = read_line(process.stdout.fileno(), WAIT_S)
        assert first is not None, "no translation before the second line was written"
        process.stdin.write(b"ko ku\n")
        second = read_line(process.stdout.fileno(), WAIT_S)
        assert second is not None, "no translation of the second line before the end of input"
        process.stdin.close()
        rest = process.stdout.read()
        assert process.wait(timeout=WAIT_S) == 0, process.stderr.read()
    finally:
        process.kill()
    assert rest == b""  # one output line per input line, each written as it came


def collect_next(iterator, timeout: float) -> list[str] | None:
    """``next(iterator)`` in a thread; None if it does not return within ``timeout``."""
    box: list = []
    thread = threading.Thread(target=lambda: box.append(next(iterator)), daemon=True)
    thread.start()
    thread.join(timeout)
    return box[0] if box else None


def test_a_batch_is_the_lines_that_have_arrived():
    read_fd, write_fd = os.pipe()
    try:
        batches = arrived_batches(ArrivingLines(read_fd, "<pipe>"), limit=100)
        os.write(write_fd, b"one\ntwo\nthree\n")
        assert collect_next(batches, WAIT_S) == ["one", "two", "three"]
        os.write(write_fd, b"four\nfi")  # a line and half of the next
        assert collect_next(batches, WAIT_S) == ["four"]
        os.write(write_fd, b"ve\nsix\n")
        os.close(write_fd)
        write_fd = -1
        assert list(batches) == [["five", "six"]]
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def test_a_batch_stops_at_the_limit_and_the_last_line_may_lack_a_newline():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"a\nb\nc\nd\ne")
    os.close(write_fd)
    try:
        assert list(arrived_batches(ArrivingLines(read_fd, "<pipe>"), limit=2)) == [
            ["a", "b"],
            ["c", "d"],
            ["e"],
        ]
    finally:
        os.close(read_fd)


def test_arriving_lines_are_checked_like_a_file():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"ba de\nko \xff lu\n")
    os.close(write_fd)
    try:
        with pytest.raises(DataError, match=r"<pipe>:2: invalid UTF-8 at byte 3"):
            list(ArrivingLines(read_fd, "<pipe>"))
    finally:
        os.close(read_fd)


def test_a_file_is_read_in_chunks_and_is_not_live(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line {i}\n" for i in range(5)), encoding="utf-8")
    batches, live = input_batches(path, limit=2)
    assert not live
    assert [len(b) for b in batches] == [2, 2, 1]


def test_a_fifo_is_live(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert is_live(fifo) and not is_live(tmp_path / "missing")


def stderr_of(args: list[str], terminal: bool) -> bytes:
    """What ``softalign ARGS`` writes on stderr: a pseudo-terminal of 100 columns, or a pipe."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO / "src")])),
    )
    command = [sys.executable, "-m", "softalign", *args]
    if not terminal:
        return subprocess.run(command, capture_output=True, cwd=REPO, env=env, timeout=600).stderr
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, stderr=slave, stdout=subprocess.DEVNULL, cwd=REPO, env=env)
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    assert process.wait(timeout=600) == 0
    return data


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals here")
def test_a_progress_bar_only_when_stderr_is_a_terminal(tiny_run, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("ba be bi\nko ku\n" * 50, encoding="utf-8")
    args = ["translate", str(tiny_run), "-i", str(source), "-o", str(tmp_path / "out.txt")]
    assert b"/100 [" in stderr_of(args, terminal=True)  # tqdm's "n/total [elapsed"
    assert stderr_of(args, terminal=False) == b""
    evaluate = ["evaluate", str(tiny_run), "--src", str(source), "--ref", str(source)]
    assert b"/100 [" in stderr_of(evaluate, terminal=True)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals here")
def test_preprocess_and_align_show_progress_only_on_a_terminal(tiny_run, tmp_path):
    source, target = tmp_path / "train.src", tmp_path / "train.tgt"
    source.write_text("ba be bi\nko ku\n" * 50, encoding="utf-8")
    target.write_text("bi be ba\nku ko\n" * 50, encoding="utf-8")
    sides = ("train_src", "train_tgt", "valid_src", "valid_tgt")
    names = ("train.src", "train.tgt", "train.src", "train.tgt")
    config = tiny_config(
        **{"data.corpus": "", "data.dir": str(tmp_path), "data.vocab.size": 20},
        **{f"data.{key}": name for key, name in zip(sides, names, strict=True)},
    )
    save_config(config, tmp_path / "c.yaml")
    preprocess = ["preprocess", str(tmp_path / "c.yaml")]
    shown = stderr_of([*preprocess, "-o", str(tmp_path / "bin1")], terminal=True)
    assert b"training the SentencePiece vocabularies" in shown
    assert b"encoding: " in shown and b"/100 [" in shown
    assert stderr_of([*preprocess, "-o", str(tmp_path / "bin2")], terminal=False) == b""

    align = ["align", str(tiny_run), "--src", str(source), "--tgt", str(target)]
    assert b"/100 [" in stderr_of([*align, "-o", str(tmp_path / "a1")], terminal=True)
    assert stderr_of([*align, "-o", str(tmp_path / "a2")], terminal=False) == b""
    reverse = [*align, "--reverse-run", str(tiny_run), "-o", str(tmp_path / "a3")]
    assert b"/200 [" in stderr_of(reverse, terminal=True)  # both directions
