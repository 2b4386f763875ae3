"""User-facing errors.

Anything a user can cause (a bad file, a bad config key, a broken run directory) raises a
:class:`SoftalignError` whose message is one line naming the file, line or key at fault.
The command line prints that line and exits non-zero instead of showing a traceback.
"""

import signal


class SoftalignError(Exception):
    """An error caused by input, with a one-line message meant for the user."""


class ConfigError(SoftalignError):
    """A configuration key is unknown, has the wrong type or an impossible value."""


class DataError(SoftalignError):
    """A corpus file is missing, empty, undecodable or does not pair up."""


class CheckpointError(SoftalignError):
    """A run directory or checkpoint is missing, corrupt or incompatible."""


def require_texts(texts: object, call: str, name: str = "texts") -> None:
    """Raise TypeError unless ``texts`` is a sequence of ``str`` (not one string).

    A lone string would otherwise be taken as a list of its characters: ``translate("A man")``
    would translate five one-letter sentences."""
    if isinstance(texts, bytes):
        raise TypeError(f"{call}: {name} must be a list of str, got bytes (decode them first)")
    if isinstance(texts, str):
        shown = texts if len(texts) <= 40 else texts[:40] + "..."
        raise TypeError(
            f"{call}: {name} must be a list of str, got a single str; "
            f"pass a list such as [{shown!r}]"
        )
    for index, text in enumerate(texts):  # type: ignore[arg-type]
        if not isinstance(text, str):
            raise TypeError(f"{call}: {name}[{index}] must be a str, got {type(text).__name__}")


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived before training could stop at a step; the command exits
    with status 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
