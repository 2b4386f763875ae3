"""Read parallel text: plain or gzipped files, or a built-in corpus source.

A parallel corpus is two files with one sentence per line; line N of the source translates
line N of the target. Every problem a user can cause is a :class:`DataError` naming the file
(and line): missing, a directory, empty, truncated gzip, undecodable bytes, NUL bytes,
different line counts.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from softalign.errors import DataError


@dataclass(frozen=True)
class ParallelText:
    """Aligned source and target sentences of one split."""

    src: list[str]
    tgt: list[str]

    def __len__(self) -> int:
        return len(self.src)


def iter_lines(path: str | Path) -> Iterator[str]:
    """Yield the lines of a UTF-8 text file (``.gz`` read transparently), without newlines.

    ``"-"`` reads standard input, with the same checks. Raises DataError naming the file and
    line for anything that is not clean text.
    """
    stdin = str(path) == "-"
    path = Path("<stdin>" if stdin else path)
    if not stdin and not path.exists():
        raise DataError(f"{path}: file not found")
    if not stdin and path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file")
    opener = gzip.open if path.suffix == ".gz" else open
    line_no = 0
    try:
        with nullcontext(sys.stdin.buffer) if stdin else opener(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):  # noqa: B007
                yield decode_line(raw, path, line_no)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip after line {line_no}: {exc}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def decode_line(raw: bytes, path: str | Path, line_no: int) -> str:
    """One line of bytes as text without its newline; DataError for NUL bytes or bad UTF-8."""
    if b"\x00" in raw:
        raise DataError(f"{path}:{line_no}: contains a NUL byte (binary file?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"{path}:{line_no}"
        raise DataError(f"{where}: invalid UTF-8 at byte {exc.start} of the line") from None
    return text.rstrip("\r\n")


def read_lines(path: str | Path) -> list[str]:
    """All lines of a text file; an empty file is an error."""
    lines = list(iter_lines(path))
    if not lines:
        raise DataError(f"{path}: file is empty")
    return lines


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> ParallelText:
    """Read two line-aligned files; their line counts must agree."""
    src = read_lines(src_path)
    tgt = read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
            "parallel files must have the same number of lines"
        )
    return ParallelText(src, tgt)


@dataclass(frozen=True)
class FilterReport:
    kept: int
    empty: int
    too_long: int


def drop_empty_and_long(text: ParallelText, max_chars: int) -> tuple[ParallelText, FilterReport]:
    """Drop pairs with an empty side or a side longer than ``max_chars`` characters."""
    src, tgt, empty, too_long = [], [], 0, 0
    for s, t in zip(text.src, text.tgt, strict=True):
        s, t = s.strip(), t.strip()
        if not s or not t:
            empty += 1
        elif len(s) > max_chars or len(t) > max_chars:
            too_long += 1
        else:
            src.append(s)
            tgt.append(t)
    return ParallelText(src, tgt), FilterReport(len(src), empty, too_long)
