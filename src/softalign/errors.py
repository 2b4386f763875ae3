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


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived before training could stop at a step; the command exits
    with status 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
