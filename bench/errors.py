"""The one error type a user can cause, and how any user error is told in one line.

Anything raised as ``BenchError`` is the user's to fix (a bad value, a missing file, an unreachable
data source). Hydra's own composition errors (an unknown group option, a wrong type) are user
errors too. The command line prints ``describe(error)`` on one line, without a traceback, and
exits with status 2. Every other exception is a bug and keeps its traceback.
"""

from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from bench.config import group_options


class BenchError(Exception):
    """A problem with the user's input or environment, described in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class Unsupported(BenchError):
    """A method that cannot tune this task or space: a limit of the method (forward mode's tangents,
    full CMA-ES's dimensions, a hypergradient member on a task it cannot differentiate, a
    multi-fidelity method on a task without one training length), not a bad
    value. A run refuses it in one line like any ``BenchError``; a sweep with ``unsupported=record``
    records the cell as refused (``refused.json`` in its folder) and runs the rest."""


USER_ERRORS = (BenchError, HydraException, OmegaConfBaseException)
"""Errors caused by what the user typed or configured: printed in one line, no traceback."""


def describe(error: BaseException) -> str:
    """One line for a user error: a BenchError as it is, a Hydra composition error condensed."""
    if isinstance(error, MissingConfigException):
        return _missing_config(error)
    if isinstance(error, BenchError):
        return str(error)
    return _one_line(error)


def _missing_config(error: MissingConfigException) -> str:
    """``method=foo`` -> "unknown method 'foo'; allowed: default, random"."""
    wanted = error.missing_cfg_file or ""
    group, _, name = wanted.rpartition("/")
    if group and error.options is not None:
        options = sorted(error.options) or group_options(group)  # a group whose options all sit in subfolders
        return f"unknown {group} {name!r}; allowed: {', '.join(options)}"
    return _one_line(error)


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0].rstrip(".") if lines else type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip():
        message += f": {str(cause).strip().splitlines()[0]}"
    return message


class LaunchRejected(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt
    """Carries a pre-flight user error out of Hydra, which turns any ``Exception`` raised by a
    callback into a warning and goes on. ``bench.cli`` prints ``message`` and exits with status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunFailed(BaseException):  # noqa: N818 - a signal, like LaunchRejected
    """A run (or some runs of a sweep) ended without a single successful trial: recorded as
    ``failed`` and reported by ``bench.cli`` in one line with exit status 2 (a ``BaseException``,
    so Hydra does not add its own "Error executing job" line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
