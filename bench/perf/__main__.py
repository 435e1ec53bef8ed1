"""``python -m bench.perf BENCHMARK [options]``: run one benchmark (``python -m bench.perf -h`` lists
them; ``python -m bench.perf BENCHMARK -h`` its options)."""

from __future__ import annotations

import argparse
import sys

import torch

from bench.errors import USER_ERRORS, describe
from bench.perf import agreement, batched, hypergrad, importance, methods, numerics, report, text
from bench.perf.common import fail

BENCHMARKS = {
    "methods": methods,
    "hypergrad": hypergrad,
    "agreement": agreement,
    "text": text,
    "batched": batched,
    "report": report,
    "importance": importance,
    "numerics": numerics,
}


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench.perf``: one subcommand per benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description="The suite's own costs, measured.")
    sub = parser.add_subparsers(dest="benchmark", required=True)
    for name, module in BENCHMARKS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.__doc__.split("\n\n")[0]))
    hypergrad.add_one_arguments(sub.add_parser("hypergrad-one"))  # one measurement in this process (hypergrad's)
    numerics.add_one_arguments(sub.add_parser("numerics-one"))  # numerics' workloads in this process
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(1)  # methods sets its own --torch-threads
    if args.benchmark == "hypergrad-one":
        return hypergrad.one_main(args)
    if args.benchmark == "numerics-one":
        return numerics.one_main(args)
    try:
        return BENCHMARKS[args.benchmark].main(args)
    except USER_ERRORS as error:  # a bad option or configuration: one line, exit status 2
        return fail(describe(error))


if __name__ == "__main__":
    sys.exit(main())
