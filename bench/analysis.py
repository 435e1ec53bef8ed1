"""The report's analyses, computed from the run and trial tables (``bench.store.load_runs``).

Every table here is one row per (task, method) or finer, with plain numbers (the report formats
them). Methods are the labelled experiments of ``bench.identity.run_labels``; scores pair up by
seed. The statistics themselves live in ``bench.stats``.

- ``anytime``: the best validation objective found so far at 25%, 50% and 100% of the budget, in
  training steps and in seconds (median and IQR over runs, and the median normalised regret), and
  the same on a grid of 50 points for the plots. 100% of the budget on an axis is the most any run
  of the task spent on it. A run with no finished trial yet counts as the worst objective seen on
  the task (regret 1).
- ``ranks``: mean rank of each method over seeds at each point of that grid, with a bootstrap
  interval over seeds.
- ``comparison``: per method, P(best > method) on the retrained validation objective with its
  bootstrap interval and Bouthillier et al.'s verdict; the steps and seconds a run needed to reach
  the task's target (by default the median over the task's runs of their best validation
  objective: about half the runs reach it); the share of wall time spent outside evaluation (the
  method's ask and tell, and the runner).
- ``across_tasks``: the Friedman test over tasks and the Nemenyi critical difference.
- ``expected_best``: Dodge et al.'s expected best validation objective of n random-search trials.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench import stats
from bench.identity import run_labels

FRACTIONS = (0.25, 0.5, 1.0)
"""Budget fractions of the anytime and rank tables."""
GRID = np.linspace(0.02, 1.0, 50)
"""Budget fractions of the anytime and rank curves."""
SCORE = "final_objective"
"""What the final comparisons rank: the retrained incumbent's validation objective (lower is better)."""


def labelled(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.assign(label=run_labels(runs)) if "label" not in runs else runs


def _tasks(runs: pd.DataFrame, trials: pd.DataFrame):
    """(task, its runs, its trials) per task."""
    for task, task_runs in runs.groupby("task", sort=True):
        yield task, task_runs, trials[trials["run_id"].isin(task_runs["run_id"])]


def _best_on_grid(task_runs: pd.DataFrame, task_trials: pd.DataFrame, axis: str) -> tuple[pd.DataFrame, float]:
    """Best-so-far of every run of one task at each fraction of GRID and FRACTIONS (columns), with
    the worst objective seen on the task where a run had nothing yet; and the horizon."""
    fractions = np.union1d(GRID, FRACTIONS)
    full = stats.horizon(task_trials, axis)
    best = stats.best_so_far_at(task_trials, axis, fractions * full)
    best.columns = fractions
    worst = float(task_trials.loc[task_trials["status"] == "ok", "objective"].max())
    return best.reindex(task_runs["run_id"]).fillna(worst), full


Grids = dict[tuple[str, str], tuple[pd.DataFrame, float]]


def grids(runs: pd.DataFrame, trials: pd.DataFrame) -> Grids:
    """``_best_on_grid`` for every (task, axis), computed once for ``anytime`` and ``ranks``."""
    out = {}
    for task, task_runs, task_trials in _tasks(runs, trials):
        for axis in stats.AXES:
            if (
                len(task_trials) and stats.horizon(task_trials, axis) > 0
            ):  # a task that counts no steps has no steps axis
                out[(task, axis)] = _best_on_grid(task_runs, task_trials, axis)
    return out


def anytime(
    runs: pd.DataFrame, trials: pd.DataFrame, best_grids: Grids | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table at FRACTIONS, curves on GRID): per task, method, axis and fraction, the median and
    IQR of the best-so-far validation objective over runs and the median normalised regret."""
    runs = labelled(runs)
    best_grids = best_grids or grids(runs, trials)
    rows = []
    for task, task_runs, task_trials in _tasks(runs, trials):
        ok = task_trials.loc[task_trials["status"] == "ok", "objective"]
        low, high = float(ok.min()), float(ok.max())
        for axis in stats.AXES:
            if (task, axis) not in best_grids:
                continue
            best, full = best_grids[(task, axis)]
            for label, group in task_runs.groupby("label", sort=True):
                values = best.loc[group["run_id"]].to_numpy(float)  # runs x fractions
                regret = np.median(stats.normalised_regret(values, low, high), axis=0)
                q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75], axis=0)
                fractions = best.columns.to_numpy(float)
                rows.append(
                    pd.DataFrame(
                        {
                            "task": task,
                            "method": label,
                            "axis": axis,
                            "fraction": fractions,
                            "budget": fractions * full,
                            "median": median,
                            "q25": q25,
                            "q75": q75,
                            "regret": regret,
                            "runs": len(values),
                        }
                    )
                )
    curves = pd.concat(rows, ignore_index=True)
    table = curves[np.isclose(curves["fraction"].to_numpy()[:, None], FRACTIONS).any(axis=1)]
    return table.reset_index(drop=True), curves


def ranks(runs: pd.DataFrame, trials: pd.DataFrame, best_grids: Grids | None = None) -> pd.DataFrame:
    """Per task, axis and fraction of GRID and FRACTIONS: each method's mean rank over the seeds
    every method ran, with its 95% bootstrap interval."""
    runs = labelled(runs)
    best_grids = best_grids or grids(runs, trials)
    tables = []
    for task, task_runs, _ in _tasks(runs, trials):
        if task_runs["label"].nunique() < 2:
            continue
        for axis in stats.AXES:
            if (task, axis) not in best_grids:
                continue
            best, _ = best_grids[(task, axis)]
            index = pd.MultiIndex.from_arrays([task_runs["seed"].to_numpy(), task_runs["label"].to_numpy()])
            by_seed = best.set_axis(index).groupby(level=[0, 1]).median()  # one value per (seed, method)
            for fraction in best.columns:
                wide = by_seed[fraction].unstack(level=1)
                table = stats.mean_ranks(wide)
                tables.append(table.assign(task=task, axis=axis, fraction=float(fraction)))
    if not tables:
        return pd.DataFrame(columns=["task", "axis", "fraction", "method", "mean_rank", "low", "high", "seeds"])
    table = pd.concat(tables, ignore_index=True)
    return table[["task", "axis", "fraction", "method", "mean_rank", "low", "high", "seeds"]]


def comparison(runs: pd.DataFrame, trials: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """Per task and method: P(best > method) with its interval and verdict, the target and the
    steps and seconds to reach it, and the share of wall time outside evaluation."""
    runs = labelled(runs)
    rows = []
    for task, task_runs, task_trials in _tasks(runs, trials):
        # a run that exists but has no score counts as the worst (inf); a seed a method never ran stays NaN
        scored = task_runs.assign(score=task_runs[SCORE].astype(float).fillna(math.inf))
        scores = scored.pivot_table(index="seed", columns="label", values="score", aggfunc="median", dropna=False)
        medians = scores.median(axis=0)
        best = medians.idxmin() if np.isfinite(medians).any() else None
        goal = float(task_runs["best_objective"].median()) if target is None else float(target)
        reached = _first_reach(task_trials, goal).reindex(task_runs["run_id"]).fillna(math.inf)
        spent = task_trials.groupby("run_id")["cost_seconds"].sum()
        for label, group in task_runs.groupby("label", sort=True):
            p = low = high = math.nan
            paired = 0
            if best is not None and label != best:
                both = scores[[best, label]].dropna()
                paired = len(both)
                p, low, high = stats.probability_better(both[best].to_numpy(), both[label].to_numpy())
            ids = group["run_id"]
            outside = 1 - spent.reindex(ids).to_numpy(float) / group["seconds"].to_numpy(float)
            rows.append(
                {
                    "task": task,
                    "method": label,
                    "best": label == best,
                    "p_best_better": p,
                    "p_low": low,
                    "p_high": high,
                    "verdict": "best" if label == best else stats.verdict(p, low, paired),
                    "target": goal,
                    "reached": float(np.isfinite(reached.loc[ids, "steps"]).mean()),
                    "steps_to_target": float(reached.loc[ids, "steps"].median()),
                    "seconds_to_target": float(reached.loc[ids, "seconds"].median()),
                    "paired_seeds": paired,
                    "outside_evaluation": float(pd.Series(np.clip(outside, 0, 1)).median()),  # NaN: no trials
                    "test_median": float(group["final_test_metric"].median()),
                    "test_metric": str(group["test_metric_name"].iloc[0]),
                }
            )
    return pd.DataFrame(rows)


def _first_reach(trials: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run: the cumulative steps and seconds at its first ok trial with objective <= target
    (inf when it never got there)."""
    hit = trials[(trials["status"] == "ok") & (trials["objective"] <= target)]
    first = hit.sort_values("trial").groupby("run_id")[["cumulative_steps", "cumulative_seconds"]].first()
    first = first.reindex(trials["run_id"].unique()).astype(float).fillna(math.inf)
    return first.rename(columns={"cumulative_steps": "steps", "cumulative_seconds": "seconds"})


def across_tasks(runs: pd.DataFrame) -> dict[str, object] | None:
    """The Friedman test over tasks of the methods (labels) run on every task, on their median
    retrained validation objective per task; None with fewer than 3 tasks or 3 such methods."""
    runs = labelled(runs)
    scored = runs.assign(score=runs[SCORE].astype(float).fillna(math.inf))  # a run with no score: the worst
    scores = scored.pivot_table(index="task", columns="label", values="score", aggfunc="median", dropna=False)
    scores = scores.dropna(axis=1)  # only methods run on every task
    if scores.shape[0] < 3 or scores.shape[1] < 3:
        return None
    return stats.friedman(scores)


def expected_best(runs: pd.DataFrame, trials: pd.DataFrame, method: str = "random") -> pd.DataFrame:
    """Per task and ``method`` experiment (label): the expected best validation objective (and
    its sd) of n trials, for every n up to 100 and 200 log-spaced n up to N, N being all their
    trials pooled over seeds (i.i.d. draws from the prior). A trial that diverged or failed is a
    draw too: it counts as the worst ok objective of the pool, so a prior that often diverges is
    not flattered."""
    runs = labelled(runs)
    rows = []
    for (task, label), group in runs[runs["method"] == method].groupby(["task", "label"], sort=True):
        pool = trials[trials["run_id"].isin(group["run_id"])]
        ok = pool["status"] == "ok"
        if not ok.any():
            continue
        values = np.where(ok, pool["objective"].to_numpy(float), float(pool.loc[ok, "objective"].max()))
        for n in _trial_counts(len(values)):
            mean, sd = stats.expected_best(values, n)
            rows.append({"task": task, "method": label, "n": n, "expected_best": mean, "sd": sd, "N": len(values)})
    return pd.DataFrame(rows, columns=["task", "method", "n", "expected_best", "sd", "N"])


def _trial_counts(total: int) -> list[int]:
    """The numbers of trials n at which to evaluate the expected best, 1 .. ``total``."""
    spaced = np.unique(np.round(np.logspace(0, np.log10(max(total, 1)), 200)).astype(int))
    return sorted({*range(1, min(total, 100) + 1), *spaced.tolist(), total})
