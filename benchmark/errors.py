"""One exception type for every user-facing failure, so the CLI can print it without a traceback."""


class BenchError(Exception):
    """Bad input or environment: the message says what, where, and what was expected."""
