"""Checks of the search options a user gives (beam, nbest, length penalty), in one place.

The command line (``translate``, ``evaluate``, ``attention``, ``compare``) checks the options
before it loads the model; :meth:`Translator.translate` checks them again once the run's
defaults are filled in. The server has its own, configurable, limits (``serve --max-beam``).

==================  =================================================================
``beam``            an integer in [1, :data:`MAX_BEAM`] (1 = greedy search)
``nbest``           an integer in [1, beam]: never silently reduced to the beam
``length_penalty``  GNMT's alpha, a finite number >= 0 (0 = none), as ``decoding.length_penalty``
==================  =================================================================

:data:`MAX_BEAM` is far above any useful beam for NMT (quality peaks around 5-10 and falls
beyond, Koehn & Knowles 2017), and keeps a typing slip (``--beam 100000``) from running for
minutes on a few lines.
"""

from __future__ import annotations

import math

from softalign.errors import SoftalignError

MAX_BEAM = 100


class SearchOptionError(SoftalignError, ValueError):
    """A beam, n-best or length-penalty value out of range (a ValueError for API callers)."""


def check_search_options(
    beam: int | None,
    nbest: int = 1,
    length_penalty: float | None = None,
    *,
    max_beam: int | None = MAX_BEAM,
    beam_source: str = "",
) -> None:
    """Raise :class:`SearchOptionError` naming the option at fault.

    ``beam=None`` (the run's default, not known yet) skips the checks that need it;
    ``max_beam=None`` checks no upper bound; ``beam_source`` says where the beam came from in
    the nbest message (e.g. ``"the run's decoding.beam"``)."""
    if beam is not None:
        if not isinstance(beam, int) or isinstance(beam, bool):
            raise SearchOptionError(f"beam must be an integer, got {beam!r}")
        if beam < 1:
            raise SearchOptionError(f"beam must be at least 1 (1 = greedy), got {beam}")
        if max_beam is not None and beam > max_beam:
            raise SearchOptionError(f"beam must be at most {max_beam}, got {beam}")
    if not isinstance(nbest, int) or isinstance(nbest, bool) or nbest < 1:
        raise SearchOptionError(f"nbest must be an integer of at least 1, got {nbest!r}")
    if beam is not None and nbest > beam:
        where = f" ({beam_source})" if beam_source else ""
        raise SearchOptionError(
            f"nbest {nbest} is more than the beam {beam}{where}: raise the beam to at least {nbest}"
        )
    if length_penalty is not None and not (
        isinstance(length_penalty, (int, float)) and math.isfinite(length_penalty)
    ):
        raise SearchOptionError(f"length penalty must be a finite number, got {length_penalty!r}")
    if length_penalty is not None and length_penalty < 0:
        raise SearchOptionError(f"length penalty must be >= 0 (0 = none), got {length_penalty}")
