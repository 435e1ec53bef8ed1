"""Comparison tables from run directories.

    python -m bench.report DIR [--format markdown|csv|latex] [--include-incomplete] [--paper NAME]

Reads every run under DIR (any depth) and prints, per task and method: the number of runs, the
median number of trials, the median and interquartile range of the best validation objective, the
median validation and test scores of the incumbents retrained with fresh seeds (scores not selected
on noise: the gap to the best validation objective is the winner's curse), the pass rate of the
task's pass/fail criterion where it has one (``rubric``) for the incumbent's own trial and for its
retrainings, and the median seconds a run took. ``csv`` gives the raw numbers; ``markdown`` and
``latex`` format them.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.papers import TABLES, paper_table
from bench.store import load_runs

FORMATS = ("markdown", "csv", "latex")
CRITERION = "rubric"


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, method) with the numbers described in the module docstring."""
    if runs.empty:
        raise BenchError("no completed runs to report")
    rows = []
    for (task, method), group in runs.groupby(["task", "method"], sort=True):
        best = group["best_objective"]
        rows.append(
            {
                "task": task,
                "method": method,
                "runs": len(group),
                "trials": float(group["n_trials"].median()),
                "best_median": float(best.median()),
                "best_q25": float(best.quantile(0.25)),
                "best_q75": float(best.quantile(0.75)),
                "retrained_median": float(group["final_objective"].median()),
                "test_metric": str(group["test_metric_name"].iloc[0]),
                "test_median": float(group["final_test_metric"].median()),
                "rubric_trial": _mean(group, f"incumbent.{CRITERION}"),
                "rubric_retrained": _mean(group, f"final.{CRITERION}"),
                "seconds_median": float(group["seconds"].median()),
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["task", "best_median"], kind="stable").reset_index(drop=True)


def _mean(group: pd.DataFrame, column: str) -> float:
    """Mean of a pass/fail column over runs (a run's value may be a rate over retrainings)."""
    values = group[column].dropna().astype(float) if column in group else pd.Series(dtype=float)
    return float(values.mean()) if len(values) else math.nan


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise BenchError(f"--format {fmt!r}: allowed formats are {', '.join(FORMATS)}")


def render(table: pd.DataFrame, fmt: str = "markdown") -> str:
    check_format(fmt)
    if fmt == "csv":
        return table.to_csv(index=False, float_format="%.6g")
    shown = pd.DataFrame(
        {
            "task": table["task"],
            "method": table["method"],
            "runs": table["runs"],
            "trials": table["trials"].map(_number),
            "best validation: median [IQR]": [
                f"{_number(m)} [{_number(a)}, {_number(b)}]"
                for m, a, b in zip(table["best_median"], table["best_q25"], table["best_q75"], strict=True)
            ],
            "retrained validation: median": table["retrained_median"].map(_number),
            "test: median": [
                f"{_number(v)} ({name})" for v, name in zip(table["test_median"], table["test_metric"], strict=True)
            ],
            "rubric: trial": table["rubric_trial"].map(_rate),
            "rubric: retrained": table["rubric_retrained"].map(_rate),
            "seconds: median": table["seconds_median"].map(_number),
        }
    )
    if fmt == "latex":
        return shown.to_latex(index=False, escape=True)
    return shown.to_markdown(index=False, disable_numparse=True)


def _number(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def _rate(rate: float) -> str:
    return "-" if not math.isfinite(rate) else f"{rate:.0%}"


CAPTION = (
    "best validation: the lowest validation objective among a run's trials (lower is better); "
    "retrained validation and test: the incumbent (best trial) retrained with fresh seeds, median "
    "over retrainings and then over runs; rubric: share of runs whose incumbent meets the task's "
    "pass criterion in its own trial, and share of retrainings that meet it."
)


def report(root: Path, fmt: str = "markdown", include_incomplete: bool = False) -> str:
    check_format(fmt)
    runs, _ = load_runs(root, include_incomplete=include_incomplete)
    text = render(summarise(runs), fmt)
    if fmt == "markdown":
        text += f"\n\n{len(runs)} runs under {root}. {CAPTION}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="a run, sweep or results directory")
    parser.add_argument("--format", default="markdown", help=f"one of {', '.join(FORMATS)} (default markdown)")
    parser.add_argument("--include-incomplete", action="store_true", help="also count runs that did not complete")
    parser.add_argument("--paper", help=f"also print a published table beside ours: {', '.join(TABLES)}")
    args = parser.parse_args(argv)
    try:
        if args.paper and args.paper not in TABLES:
            raise BenchError(f"--paper {args.paper!r}: allowed: {', '.join(TABLES)}")
        print(report(args.directory, args.format, args.include_incomplete))
        if args.paper:
            runs, trials = load_runs(args.directory, include_incomplete=args.include_incomplete)
            print("\n" + paper_table(args.paper, runs, trials))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
