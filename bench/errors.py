"""The one error type a user can cause.

Anything raised as ``BenchError`` is the user's to fix (a bad value, a missing file, an unreachable
data source). The command line prints its message on one line, without a traceback, and exits
with status 2. Every other exception is a bug and keeps its traceback.
"""


class BenchError(Exception):
    """A problem with the user's input or environment, described in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
