"""The comparison table: one row per experiment (a task and a labelled method, ``bench.report.load``).

Per row: the number of runs, the median number of trials, the median and interquartile range of
the best validation objective, the median validation and test scores of the incumbents retrained
with fresh seeds (scores not selected on noise: the gap to the best validation objective is the
winner's curse), the median training steps and seconds a run spent (with the share of the step
budget when the budget counts steps; ``!`` marks a row with a run that stopped below 90% of it for
another reason than its method having nothing left to ask), the pass/fail criteria the task
declares (``Task.pass_criteria``: share of runs whose incumbent passes in its own trial, share of
retrainings that pass), and who wins: per-seed wins and the paired Wilcoxon p-value against the
best row, Holm-corrected, on the task's score (``bench.report.scores``). ``summarise`` returns the
numbers, ``shown`` the cells, ``caption`` the legend of what is shown.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.records import NOTHING_LEFT
from bench.report import scores
from bench.report.load import refused_cells, setting_order, unfinished_runs
from bench.report.render import names, number, p_value, rate, render, with_iqr

SHORT = 0.9
"""A run that stopped below this share of its step budget, with its method still asking, is marked."""


def criteria(runs: pd.DataFrame) -> dict[str, dict[str, str]]:
    """The pass criteria the runs' tasks declare: name -> {task: what passing means}."""
    out: dict[str, dict[str, str]] = {}
    if "pass_criteria" not in runs:
        return out
    for task, declared in zip(runs["task"], runs["pass_criteria"], strict=True):
        for name, meaning in (declared or {}).items():
            out.setdefault(name, {})[task] = meaning
    return out


def summarise(runs: pd.DataFrame, who: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (task, experiment), best row of each task first (``scores``), then by score."""
    if runs.empty:
        raise BenchError("no completed runs to report")
    who = scores.per_task(runs) if who is None else who
    declared = criteria(runs)
    rows = []
    for (task, _), group in runs.groupby(["task", "experiment"], sort=True):
        best = group["best_objective"]
        steps_budget = group["budget_train_steps"].dropna()
        fraction = group["train_steps"] / steps_budget.iloc[0] if len(steps_budget) else None
        # a multi-fidelity run stops when its next rung would pass the step budget: that is the budget, not short
        stopped_early = (group["stop_reason"] != NOTHING_LEFT) & ~group["stop_reason"].astype(str).str.startswith(
            "budget.train_steps="
        )
        short = fraction is not None and bool(((fraction < SHORT) & stopped_early).any())
        row = {
            "task": task,
            "method": group["label"].iloc[0],
            "experiment": group["experiment"].iloc[0],
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
            "seconds_median": float(group["seconds"].median()),
        }
        for name in declared:
            row[f"{name}_trial"] = _mean(group, f"incumbent.{name}")
            row[f"{name}_retrained"] = _mean(group, f"final.{name}")
        rows.append(row)
    table = pd.DataFrame(rows)
    against = who.rename(columns={"label": "method", "median": "score_median", "mean": "score_mean"})
    columns = ["task", "method", "score", "score_median", "score_mean", "wins", "best", "paired", "p", "p_holm"]
    table = table.merge(against[columns], on=["task", "method"], how="left")
    order = table.assign(first=~table["best"], setting=table["task"].map(setting_order)).sort_values(
        ["setting", "first", "score_median", "score_mean", "best_median", "method"], kind="stable"
    )
    return order.drop(columns=["first", "setting"]).reset_index(drop=True)


def _mean(group: pd.DataFrame, column: str) -> float:
    """Mean of a pass/fail column over runs (a run's value may be a rate over retrainings)."""
    values = group[column].dropna().astype(float) if column in group else pd.Series(dtype=float)
    return float(values.mean()) if len(values) else math.nan


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The cells of ``summarise``'s table, formatted for reading."""
    out = pd.DataFrame(
        {
            "task": table["task"],
            "method": table["method"],
            "runs": table["runs"],
            "trials": table["trials"].map(number),
            "best validation: median [IQR]": [
                with_iqr(m, a, b) for m, a, b in table[["best_median", "best_q25", "best_q75"]].to_numpy(float)
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
        }
    )
    for name in _criteria_columns(table):
        out[f"{name}: trial"] = table[f"{name}_trial"].map(rate)
        out[f"{name}: retrained"] = table[f"{name}_retrained"].map(rate)
    out["wins"] = [f"{w}/{n}" for w, n in zip(table["wins"], table["runs"], strict=True)]
    out["p vs best (Holm)"] = [
        "best" if best else p_value(p, holm)
        for best, p, holm in zip(table["best"], table["p"], table["p_holm"], strict=True)
    ]
    return out


def _criteria_columns(table: pd.DataFrame) -> list[str]:
    return [column.removesuffix("_trial") for column in table.columns if column.endswith("_trial")]


def _steps(steps: float, share: float, short: bool) -> str:
    if not math.isfinite(steps):
        return "-"
    text = f"{steps:,.0f}"
    if math.isfinite(share):
        text += f" ({share:.0%})"
    return text + ("!" if short else "")


def caption(table: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The legend of the shown table: only what it shows, the pass criteria its tasks declare, and
    the score each task's wins and tests were computed on."""
    parts = [
        "best validation: the lowest validation objective among a run's trials (lower is better)",
        "retrained validation and test: the incumbent (best trial) retrained with fresh seeds, median over "
        "retrainings and then over runs ('-': not retrained, incumbent_repeats=0)",
        "steps and seconds: training steps (a reverse-pass Hessian-vector product counts 2) and wall-clock "
        "seconds a run spent, with the share of the step budget, '!' where a run stopped below 90% of it while "
        "its method still had configurations to ask (a multi-fidelity run stops before a rung that would pass "
        "the budget)",
    ]
    for name, meanings in criteria(runs).items():
        where = "; ".join(f"{task}: {meaning}" for task, meaning in sorted(meanings.items()))
        parts.append(
            f"{name} ({where}): share of runs whose incumbent passes in its own trial, and share of retrainings "
            "that pass ('-': a task without this criterion)"
        )
    by_score: dict[str, list[str]] = {}
    for task, score in table.drop_duplicates("task")[["task", "score"]].to_numpy():
        by_score.setdefault(scores.SCORE_NAMES[score], []).append(task)
    on = "; ".join(f"{score} ({names(sorted(tasks))})" for score, tasks in by_score.items())
    parts.append(
        f"wins: seeds on which the row's score is the lowest of its task; p vs best: two-sided paired Wilcoxon "
        f"signed-rank test against the best row over shared seeds, Holm-corrected in parentheses; scored on the "
        f"{on}; best row: the lowest median score (ties: the lower mean, then the name); a run with no score counts "
        "as worse than every run"
    )
    return "; ".join(parts) + "."


def comparison(runs: pd.DataFrame, root: Path, fmt: str = "markdown", who: pd.DataFrame | None = None) -> str:
    """The comparison table of ``runs`` rendered in ``fmt`` (CSV: the numbers); in Markdown with
    its legend."""
    summary = summarise(runs, who)
    text = render(shown(summary), fmt, raw=summary)
    if fmt == "markdown":
        text += f"\n\n{runs_line(runs, root)} {caption(summary, runs)}"
    return text


def runs_line(runs: pd.DataFrame, root: Path) -> str:
    """How many runs the table counts, and which runs under ``root`` it leaves out as unfinished."""
    line = f"{len(runs)} runs under {root}."
    left_out = unfinished_runs(root, runs)
    if left_out:
        line += (
            f" Not counted, as they did not complete: {'; '.join(left_out)}; their trials stay readable, and "
            "the same command with resume=true continues them."
        )
    refused = refused_cells(root)
    if refused:
        line += f" Refused before running, the method unable to tune the cell: {'; '.join(refused)}."
    return line
