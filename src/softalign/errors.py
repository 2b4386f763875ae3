"""User-facing errors.

Anything a user can cause (a bad file, a bad config key, a broken run directory) raises a
:class:`SoftalignError` whose message is one line naming the file, line or key at fault.
The command line prints that line and exits non-zero instead of showing a traceback.
"""


class SoftalignError(Exception):
    """An error caused by input, with a one-line message meant for the user."""


class ConfigError(SoftalignError):
    """A configuration key is unknown, has the wrong type or an impossible value."""


class DataError(SoftalignError):
    """A corpus file is missing, empty, undecodable or does not pair up."""


class CheckpointError(SoftalignError):
    """A run directory or checkpoint is missing, corrupt or incompatible."""
