"""Pharaoh word alignments: one line per sentence pair, links ``i-j`` (source i, target j).

Gold files may also mark possible-only links as ``ipj`` (Hansards/NAACL 2003 convention).
Positions are 0-indexed by default; ``one_index=True`` reads and writes 1-indexed positions.
Every malformed link is a :class:`~softalign.errors.DataError` naming the file, line and link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from softalign.data.corpus import iter_lines
from softalign.errors import DataError
from softalign.outputs import atomic_output

Link = tuple[int, int]  # (source position, target position), 0-indexed

_LINK = re.compile(r"^(\d+)([-pP])(\d+)$")


@dataclass(frozen=True)
class Alignment:
    """The links of one sentence pair: ``sure`` ⊆ ``possible`` (a sure link is also possible)."""

    sure: frozenset[Link] = field(default_factory=frozenset)
    possible: frozenset[Link] = field(default_factory=frozenset)


def parse_line(line: str, one_index: bool = False, where: str = "<string>") -> Alignment:
    """Parse ``"0-0 1p2 3-1"``; ``where`` (``file:line``) prefixes any error message."""
    sure: set[Link] = set()
    possible: set[Link] = set()
    offset = 1 if one_index else 0
    for token in line.split():
        match = _LINK.match(token)
        if match is None:
            raise DataError(
                f"{where}: bad link '{token}': expected i-j (sure) or ipj (possible), "
                "with non-negative integer positions"
            )
        i, j = int(match.group(1)) - offset, int(match.group(3)) - offset
        if i < 0 or j < 0:
            raise DataError(f"{where}: bad link '{token}': position 0 in a 1-indexed file")
        possible.add((i, j))
        if match.group(2) == "-":
            sure.add((i, j))
    return Alignment(frozenset(sure), frozenset(possible))


def read_alignments(path: str | Path, one_index: bool = False) -> list[Alignment]:
    """All lines of a Pharaoh file (an empty line is a sentence without links)."""
    return [
        parse_line(line, one_index, where=f"{path}:{number}")
        for number, line in enumerate(iter_lines(path), start=1)
    ]


def format_links(links: Iterable[Link], one_index: bool = False) -> str:
    """``"0-0 1-2"``: links sorted by source then target position."""
    offset = 1 if one_index else 0
    return " ".join(f"{i + offset}-{j + offset}" for i, j in sorted(links))


def write_alignments(
    path: str | Path, alignments: Iterable[Iterable[Link]], one_index: bool = False
) -> None:
    with atomic_output(path) as out:
        for links in alignments:
            out.write(format_links(links, one_index) + "\n")
