"""``python -m bench``: run one experiment, a sweep, or (with no arguments) the default comparison.

    python -m bench                                   # conf/suite/default.yaml: the default comparison
    python -m bench task=bikeshare method=random seed=0 budget.evaluations=20
    python -m bench -m method=default,random seed=0,1,2
    python -m bench suite=<preset>                    # any preset in conf/suite/

Errors the user can cause are printed on one line (``error: ...``) with exit status 2 and no
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from bench.errors import BenchError

DEFAULT_ARGUMENTS = ["suite=default"]
MULTIRUN_FLAGS = ("-m", "--multirun")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:
        arguments = DEFAULT_ARGUMENTS
    # -m may come anywhere; Hydra's parser wants flags before overrides
    flags = [a for a in arguments if a in MULTIRUN_FLAGS]
    arguments = flags + [a for a in arguments if a not in MULTIRUN_FLAGS]
    # Let errors reach this function instead of Hydra's multi-line report; they are printed below.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = [sys.argv[0], *arguments]
    from bench.app import LaunchRejected, job

    try:
        _check_flags(arguments)
        job()
    except LaunchRejected as rejected:
        return _fail(rejected.message)
    except USER_ERRORS as error:
        return _fail(describe(error))
    return 0


USER_ERRORS = (BenchError, HydraException, OmegaConfBaseException)
"""Errors caused by what the user typed or configured: printed in one line, no traceback."""


def describe(error: BaseException) -> str:
    """One line for a user error: a BenchError as it is, a Hydra composition error condensed."""
    if isinstance(error, MissingConfigException):
        return _missing_config(error)
    if isinstance(error, BenchError):
        return str(error)
    return _one_line(error)


def _check_flags(arguments: list[str]) -> None:
    """Parse with Hydra's own argument parser, turning its usage dump into one line."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()

    def error(message: str) -> None:
        raise BenchError(f"{message}; see python -m bench --help")

    parser.error = error  # type: ignore[method-assign]
    parser.parse_args(arguments)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _missing_config(error: MissingConfigException) -> str:
    """``method=foo`` -> "unknown method 'foo'; allowed: default, random"."""
    wanted = error.missing_cfg_file or ""
    group, _, name = wanted.rpartition("/")
    if group and error.options is not None:
        return f"unknown {group} {name!r}; allowed: {', '.join(sorted(error.options))}"
    return _one_line(error)


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0].rstrip(".") if lines else type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip():
        message += f": {str(cause).strip().splitlines()[0]}"
    return message
