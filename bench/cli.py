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

from bench.errors import USER_ERRORS, BenchError, LaunchRejected, RunFailed, describe

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
    from bench.app import job

    try:
        _check_flags(arguments)
        job()
    except (LaunchRejected, RunFailed) as rejected:
        return _fail(rejected.message)
    except USER_ERRORS as error:
        return _fail(describe(error))
    return 0


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
