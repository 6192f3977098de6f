"""The one error type that the CLI turns into a one-line message instead of a traceback."""


class Pr1Error(Exception):
    """A user-facing error: bad input, a missing file or package, an impossible option."""
