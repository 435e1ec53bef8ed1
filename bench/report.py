"""Comparison tables from run directories.

    python -m bench.report DIR [--format markdown|csv|latex] [--include-incomplete] [--paper NAME]

Reads every run under DIR (any depth) and prints one row per experiment: runs that share a task,
a method and every option, budget and package version (``bench.identity``) and differ only in
their seed. Two experiments of one method on one task (a sweep over one of its options, or two
budgets) are two rows, labelled with what differs (``gp_ts[greedy=0]``). Per row: the number of
runs, the median number of trials, the median and interquartile range of the best validation
objective, the median validation and test scores of the incumbents retrained with fresh seeds
(scores not selected on noise: the gap to the best validation objective is the winner's curse),
the median training steps and seconds a run spent (with the share of the step budget when the
budget counts steps; ``!`` marks a row with a run that stopped below 90% of it for another reason
than its method having nothing left to ask), the task's pass/fail criterion where it has one
(``rubric``), and who wins: per-seed win counts and the paired Wilcoxon p-value against the best
row, Holm-corrected (``bench.stats``), both on the retrained validation objective. ``csv`` gives
the raw numbers; ``markdown`` and ``latex`` format them.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.identity import run_labels
from bench.papers import TABLES, paper_table
from bench.runner import NOTHING_LEFT
from bench.stats import paired_against_best
from bench.store import load_runs

FORMATS = ("markdown", "csv", "latex")
CRITERION = "rubric"
SCORE = "final_objective"
"""What the statistics rank: the retrained incumbent's validation objective (lower is better)."""
SHORT = 0.9
"""A run that stopped below this share of its step budget, with its method still asking, is marked."""


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, experiment) with the numbers described in the module docstring."""
    if runs.empty:
        raise BenchError("no completed runs to report")
    runs = runs.assign(label=run_labels(runs))
    rows = []
    for (task, experiment), group in runs.groupby(["task", "experiment"], sort=True):
        best = group["best_objective"]
        steps_budget = group["budget_train_steps"].dropna()
        fraction = group["train_steps"] / steps_budget.iloc[0] if len(steps_budget) else None
        short = fraction is not None and bool(((fraction < SHORT) & (group["stop_reason"] != NOTHING_LEFT)).any())
        rows.append(
            {
                "task": task,
                "method": group["label"].iloc[0],
                "experiment": experiment,
                "runs": len(group),
                "trials": float(group["n_trials"].median()),
                "best_median": float(best.median()),
                "best_q25": float(best.quantile(0.25)),
                "best_q75": float(best.quantile(0.75)),
                "retrained_median": float(group["final_objective"].median()),
                "test_metric": str(group["test_metric_name"].iloc[0]),
                "test_median": float(group["final_test_metric"].median()),
                "steps_median": float(group["train_steps"].median()),
                "steps_budget_share": math.nan if fraction is None else float(fraction.median()),
                "short_of_budget": short,
                "rubric_trial": _mean(group, f"incumbent.{CRITERION}"),
                "rubric_retrained": _mean(group, f"final.{CRITERION}"),
                "seconds_median": float(group["seconds"].median()),
            }
        )
    table = pd.DataFrame(rows)
    table = table.merge(_who_wins(runs), on=["task", "experiment"], how="left")
    return table.sort_values(["task", "retrained_median", "best_median"], kind="stable").reset_index(drop=True)


def _who_wins(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (task, experiment): wins, paired seeds and Wilcoxon p against the task's best row."""
    tables = []
    for task, group in runs.groupby("task", sort=True):
        score = group[SCORE].astype(float).fillna(math.inf)  # a run with no score: the worst (bench.stats)
        scores = pd.DataFrame({"seed": group["seed"], "experiment": group["experiment"], "score": score})
        wide = scores.pivot_table(index="seed", columns="experiment", values="score", aggfunc="median")
        table = paired_against_best(wide).rename(columns={"method": "experiment"})
        tables.append(table.assign(task=task))
    return pd.concat(tables, ignore_index=True)[["task", "experiment", "wins", "best", "paired", "p", "p_holm"]]


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
            "trials": table["trials"].map(number),
            "best validation: median [IQR]": [
                f"{number(m)} [{number(a)}, {number(b)}]"
                for m, a, b in zip(table["best_median"], table["best_q25"], table["best_q75"], strict=True)
            ],
            "retrained validation: median": table["retrained_median"].map(number),
            "test: median": [
                f"{number(v)} ({name})" for v, name in zip(table["test_median"], table["test_metric"], strict=True)
            ],
            "steps: median": [
                _steps(steps, share, short)
                for steps, share, short in zip(
                    table["steps_median"], table["steps_budget_share"], table["short_of_budget"], strict=True
                )
            ],
            "seconds: median": table["seconds_median"].map(number),
            "rubric: trial": table["rubric_trial"].map(_rate),
            "rubric: retrained": table["rubric_retrained"].map(_rate),
            "wins": [f"{w}/{n}" for w, n in zip(table["wins"], table["runs"], strict=True)],
            "p vs best (Holm)": [
                "best" if best else _p(p, holm)
                for best, p, holm in zip(table["best"], table["p"], table["p_holm"], strict=True)
            ],
        }
    )
    if table["rubric_trial"].isna().all() and table["rubric_retrained"].isna().all():
        shown = shown.drop(columns=["rubric: trial", "rubric: retrained"])
    if fmt == "latex":
        return shown.to_latex(index=False, escape=True)
    return shown.to_markdown(index=False, disable_numparse=True)


def number(value: float | None, digits: int = 4) -> str:
    """A table cell: ``digits`` significant digits, ``-`` for a missing or non-finite value."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _rate(rate: float) -> str:
    return "-" if not math.isfinite(rate) else f"{rate:.0%}"


def _steps(steps: float, share: float, short: bool) -> str:
    if not math.isfinite(steps):
        return "-"
    text = f"{steps:,.0f}"
    if math.isfinite(share):
        text += f" ({share:.0%})"
    return text + ("!" if short else "")


def _p(p: float, holm: float) -> str:
    return "-" if not math.isfinite(p) else f"{p:.2g} ({holm:.2g})"


CAPTION = (
    "best validation: the lowest validation objective among a run's trials (lower is better); "
    "retrained validation and test: the incumbent (best trial) retrained with fresh seeds, median "
    "over retrainings and then over runs; steps and seconds: training steps (a reverse-pass "
    "Hessian-vector product counts 2) and wall-clock seconds a run spent, with the share of the step "
    "budget, '!' where a run stopped below 90% of it while its method still had configurations to "
    "ask; rubric: share of runs whose incumbent meets the task's pass criterion in its own trial, and "
    "share of retrainings that meet it; wins: seeds on which the row's retrained validation is the "
    "lowest of its task; p vs best: two-sided paired Wilcoxon signed-rank test against the best row "
    "(lowest median retrained validation) over shared seeds, Holm-corrected in parentheses."
)


def report(root: Path, fmt: str = "markdown", include_incomplete: bool = False) -> str:
    """The comparison table of every run under ``root`` (the report's first section)."""
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
    parser.add_argument("--importance", action="store_true", help="add fANOVA hyperparameter importance")
    parser.add_argument("--target", type=float, help="validation objective for time-to-target (default: per task)")
    parser.add_argument("--output", type=Path, help="folder of the full report (default DIRECTORY/report)")
    parser.add_argument("--table-only", action="store_true", help="print the comparison table only; write no files")
    args = parser.parse_args(argv)
    try:
        check_format(args.format)
        if args.paper and args.paper not in TABLES:
            raise BenchError(f"--paper {args.paper!r}: allowed: {', '.join(TABLES)}")
        runs, trials = load_runs(args.directory, include_incomplete=args.include_incomplete)
        if runs.empty:
            raise BenchError(f"{args.directory}: no completed runs to report")
        if args.table_only:
            print(report(args.directory, args.format, args.include_incomplete))
            if args.paper:
                print("\n" + paper_table(args.paper, runs, trials))
            return 0
        from bench.full_report import write_report  # plots and statistics: only when asked for

        output = args.output or args.directory / "report"
        sections = write_report(
            runs, trials, args.directory, output, importance=args.importance, paper=args.paper, target=args.target
        )
        if args.format == "markdown":
            print("\n\n".join(section.markdown() for section in sections))
        else:
            print(render(summarise(runs), args.format))
        print(
            f"full report: {output / 'index.html'} (tables as Markdown, CSV and LaTeX; figures as PNG and SVG)",
            file=sys.stderr,
        )
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
