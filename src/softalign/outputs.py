"""User-visible output files: checked before the work starts, written whole or not at all.

    check_output(args.output, inputs=[args.src, args.ref])   # before decoding anything
    with atomic_output(args.output) as out:                  # a temporary file beside it,
        out.write(text)                                      # renamed over PATH at the end

Before any work, an output that is one of the inputs (compared as files, through links), a
directory, or a file in a directory that is missing or not writable is a one-line
:class:`SoftalignError`. A regular file is written to a temporary file in its own directory
and renamed onto its name when complete (``os.replace`` is atomic on POSIX): an error or an
interrupt leaves the previous file as it was and no partial one. A device (``/dev/null``,
``/dev/full``, a terminal, a FIFO) is written in place, and ``"-"`` is standard output,
written as the caller goes. Every ``OSError`` while writing (``ENOSPC`` on a full disk,
``/dev/full``) becomes a one-line :class:`SoftalignError`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from softalign.errors import SoftalignError

STDIO = "-"  # stdin for an input, stdout for an output


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(
    path: str | Path, *, inputs: Iterable[str | Path | None] = (), what: str = "output"
) -> Path:
    """Refuse, before any work, an output that cannot be written or would overwrite an input.

    ``inputs`` are the command's input paths (``None`` and ``"-"`` are skipped). Returns the
    output path."""
    path = Path(path)
    for source in inputs:
        if source is not None and str(source) != STDIO and _same_file(path, Path(source)):
            raise SoftalignError(
                f"{path}: the {what} file is the input {source}: write to another file"
            )
    if path.is_dir():
        raise SoftalignError(f"{path}: is a directory, expected a file to write the {what}")
    if path.exists() and not path.is_file():
        return path  # a device or a FIFO: written in place
    directory = path.resolve().parent
    if not directory.is_dir():
        raise SoftalignError(f"{path}: cannot write the {what}: directory {path.parent} not found")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise SoftalignError(
            f"{path}: cannot write the {what}: directory {path.parent} is not writable"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise SoftalignError(f"{path}: cannot write the {what}: file is not writable")
    return path


def write_error(path: str | Path, exc: OSError) -> SoftalignError:
    """The one-line error for a failed write to ``path``."""
    return SoftalignError(f"{path}: cannot write: {exc.strerror or exc}")


def _ours(exc: OSError, path: Path, *files: Path) -> OSError | SoftalignError:
    """``exc`` as a write error of ``path`` if it came from writing ``files`` (an error of the
    handle has no file name); any other file's error, or a broken pipe, unchanged."""
    if isinstance(exc, BrokenPipeError):
        return exc
    if exc.filename is not None and exc.filename not in {str(f) for f in files}:
        return exc
    return write_error(path, exc)


def _is_regular_or_missing(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True


def _temporary_beside(target: Path) -> tuple[Path, int]:
    """A new file next to ``target`` (same directory, so the rename stays on one file system),
    with ``target``'s permissions if it exists, else the umask's."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666  # os.open applies the umask
    while True:
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_output(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """A file handle for ``path``: a temporary file renamed onto ``path`` when the block ends
    without an exception (discarded otherwise); a device is written in place.

    Any ``OSError`` (opening, writing, closing, renaming) is raised as a one-line
    :class:`SoftalignError` naming ``path``."""
    path = Path(path)
    target = Path(os.path.realpath(path))  # through a link: replace the file, keep the link
    mode, encoding = ("wb", None) if binary else ("w", "utf-8")
    if not _is_regular_or_missing(target):
        try:
            with open(target, mode, encoding=encoding) as handle:
                yield handle
        except OSError as exc:
            raise _ours(exc, path, target) from None
        return
    try:
        temp, fd = _temporary_beside(target)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with open(fd, mode, encoding=encoding) as handle:
            yield handle
        os.replace(temp, target)
    except OSError as exc:
        raise _ours(exc, path, target, temp) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as out:
        out.write(text)


@contextlib.contextmanager
def stdout_output() -> Iterator[IO]:
    """Standard output, flushed at the end; a failed write (other than a closed pipe) is a
    one-line :class:`SoftalignError`, and later writes (the interpreter's own flush at exit)
    go to ``/dev/null`` instead of printing a second error."""
    try:
        yield sys.stdout
        sys.stdout.flush()
    except OSError as exc:
        error = _ours(exc, Path("<stdout>"))
        if isinstance(error, SoftalignError):
            _discard_stdout()
        raise error from None


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's StringIO)
        pass


def open_output(path: str | Path) -> contextlib.AbstractContextManager[IO]:
    """:func:`stdout_output` for ``"-"``, else :func:`atomic_output` (text)."""
    return stdout_output() if str(path) == STDIO else atomic_output(path)
