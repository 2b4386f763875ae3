"""Input lines in batches: as they arrive from a pipe or terminal, in fixed chunks from a file.

    batches, live = input_batches("-", limit=2000)
    for batch in batches:          # live: each batch is every line that has arrived, so the
        translate(batch)           # first translation is out before the next line is typed

A regular file (or standard input redirected from one) is read in chunks of ``limit`` lines,
which keeps batching efficient. A pipe, a terminal or a FIFO is *live*: a batch ends as soon
as no further whole line is waiting (``select`` with a zero timeout on the descriptor), so
each line is translated when it arrives, and lines that arrive together are batched together.
Lines are checked as in :func:`softalign.data.corpus.iter_lines` (UTF-8, no NUL byte).
"""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from softalign.data.corpus import decode_line, iter_lines
from softalign.errors import DataError

READ_SIZE = 1 << 16


class ArrivingLines:
    """The lines of a file descriptor, read as they arrive (never waiting for more than one).

    :meth:`line_waiting` says, without blocking, whether the next line can be had now."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.pending = bytearray()
        self.eof = False

    def line_waiting(self) -> bool:
        if self.eof or b"\n" in self.pending:
            return True
        try:
            readable, _, _ = select.select([self.fd], [], [], 0)
        except (OSError, ValueError):  # no select on this descriptor: one line at a time
            return False
        return bool(readable)

    def __iter__(self) -> Iterator[str]:
        line_no = 0
        while True:
            end = self.pending.find(b"\n")
            if end < 0 and not self.eof:
                self._read()
                continue
            if end < 0:  # end of input: the last line may lack its newline
                if self.pending:
                    yield decode_line(bytes(self.pending), self.name, line_no + 1)
                return
            line_no += 1
            raw = bytes(self.pending[: end + 1])
            del self.pending[: end + 1]
            yield decode_line(raw, self.name, line_no)

    def _read(self) -> None:
        try:
            chunk = os.read(self.fd, READ_SIZE)
        except OSError as exc:
            raise DataError(f"{self.name}: cannot read: {exc.strerror or exc}") from None
        if chunk:
            self.pending += chunk
        else:
            self.eof = True


def arrived_batches(lines: ArrivingLines, limit: int) -> Iterator[list[str]]:
    """Batches of the lines that have arrived: a batch ends when no whole line is waiting,
    or at ``limit`` lines."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= limit or not lines.line_waiting():
            yield batch
            batch = []
    if batch:
        yield batch


def chunks(lines: Iterator[str], limit: int) -> Iterator[list[str]]:
    """Consecutive batches of ``limit`` lines (the last may be shorter)."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= limit:
            yield batch
            batch = []
    if batch:
        yield batch


def is_live(path: str | Path) -> bool:
    """True for standard input or a path that is not a regular file (pipe, terminal, FIFO)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode if str(path) == "-" else os.stat(path).st_mode
    except (OSError, ValueError, AttributeError):  # no such file: iter_lines says so
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def input_batches(path: str | Path, limit: int) -> tuple[Iterator[list[str]], bool]:
    """Batches of the lines of ``path`` (``"-"``: standard input) and whether they are live."""
    if not is_live(path):
        return chunks(iter_lines(path), limit), False
    if str(path) == "-":
        return arrived_batches(ArrivingLines(sys.stdin.fileno(), "<stdin>"), limit), True
    return _fifo_batches(Path(path), limit), True


def _fifo_batches(path: Path, limit: int) -> Iterator[list[str]]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        yield from arrived_batches(ArrivingLines(fd, str(path)), limit)
    finally:
        os.close(fd)
