"""The report's analyses, computed from the run and trial tables (``bench.report.load.load_runs``).

Every table here is one row per (task, method) or finer, with plain numbers (the report formats
them). Methods are the runs' labels (``bench.report.load``); scores pair up by seed. Who wins is
``bench.report.scores``; the statistics themselves live in ``bench.report.stats``.

- ``anytime``: the best validation objective found so far at 25%, 50% and 100% of the budget, in
  training steps and in seconds (median and IQR over runs, and the median normalised regret), and
  the same on a grid of 50 points for the plots. 100% of the budget on an axis is the most any run
  of the task spent on it. A run with no finished trial yet counts as the worst objective seen on
  the task (regret 1).
- ``ranks``: mean rank of each method over seeds at each point of that grid, with a bootstrap
  interval over seeds.
- ``comparison``: per method, P(best > method) on the task's score (``bench.report.scores``) with
  its bootstrap interval and Bouthillier et al.'s verdict; the steps and seconds a run needed to reach
  the task's target (by default the median over the task's runs of their best validation
  objective: about half the runs reach it); the share of wall time spent outside evaluation (the
  method's ask and tell, and the runner).
- ``across_tasks``: the Friedman test over tasks and the Nemenyi critical difference.
- ``expected_best``: Dodge et al.'s expected best validation objective of n random-search trials.
- ``learning_curves``: a multi-fidelity run's trainings (lineages of rungs), each rung's objective
  against its training steps, stopped trainings marked; ``stopping``: per method, how many
  configurations its runs started, stopped early and trained fully, and the steps spent on those
  stopped.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report import scores, stats

FRACTIONS = (0.25, 0.5, 1.0)
"""Budget fractions of the anytime and rank tables."""
UNTUNED, UNTUNED_KIND = "default", "untuned"
"""The method whose row is the untuned configuration, and its kind in ``crossing``."""
GRID = np.linspace(0.02, 1.0, 50)
"""Budget fractions of the anytime and rank curves."""


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


def comparison(
    runs: pd.DataFrame, trials: pd.DataFrame, target: float | None = None, who: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per task and method: P(best > method) with its interval and verdict (from ``who``, the
    ``scores.per_task`` table, computed here when not given), the target and the steps and
    seconds to reach it, and the share of wall time outside evaluation."""
    who = (scores.per_task(runs) if who is None else who).set_index(["task", "label"])
    rows = []
    for task, task_runs, task_trials in _tasks(runs, trials):
        goal = float(task_runs["best_objective"].median()) if target is None else float(target)
        reached = first_reach(task_trials, goal).reindex(task_runs["run_id"]).fillna(math.inf)
        spent = task_trials.groupby("run_id")["cost_seconds"].sum()
        for label, group in task_runs.groupby("label", sort=True):
            against = who.loc[(task, label)]
            ids = group["run_id"]
            outside = 1 - spent.reindex(ids).to_numpy(float) / group["seconds"].to_numpy(float)
            rows.append(
                {
                    "task": task,
                    "method": label,
                    "score": against["score"],
                    "best": bool(against["best"]),
                    "p_best_better": against["p_best_better"],
                    "p_low": against["p_low"],
                    "p_high": against["p_high"],
                    "verdict": against["verdict"],
                    "target": goal,
                    "reached": float(np.isfinite(reached.loc[ids, "steps"]).mean()),
                    "steps_to_target": float(reached.loc[ids, "steps"].median()),
                    "seconds_to_target": float(reached.loc[ids, "seconds"].median()),
                    "paired_seeds": int(against["paired"]),
                    "outside_evaluation": float(pd.Series(np.clip(outside, 0, 1)).median()),  # NaN: no trials
                    "test_median": float(group["final_test_metric"].median()),
                    "test_metric": str(group["test_metric_name"].iloc[0]),
                }
            )
    return pd.DataFrame(rows)


def first_reach(trials: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run: the cumulative steps and seconds at its first ``ok`` trial with objective <= target
    (inf when it never got there). A multi-fidelity run counts only its trainings at the highest
    fidelity it reached (its full trainings): a target set by full trainings is not reached by a
    short training's score."""
    ok = trials[trials["status"] == "ok"]
    if "fidelity" in ok and ok["fidelity"].notna().any():
        top = ok.groupby("run_id")["fidelity"].transform("max")
        ok = ok[ok["fidelity"].isna() | (ok["fidelity"] == top)]
    hit = ok[ok["objective"] <= target]
    first = hit.sort_values("trial").groupby("run_id")[["cumulative_steps", "cumulative_seconds"]].first()
    first = first.reindex(trials["run_id"].unique()).astype(float).fillna(math.inf)
    return first.rename(columns={"cumulative_steps": "steps", "cumulative_seconds": "seconds"})


def across_tasks(runs: pd.DataFrame, who: pd.DataFrame | None = None) -> dict[str, object] | None:
    """The Friedman test over tasks of the methods (labels) run on every task, on their median
    score per task (``scores``; ranked within each task, so tasks scored on different objectives
    may be pooled); None with fewer than 3 tasks or 3 such methods."""
    who = scores.per_task(runs) if who is None else who
    medians = who.pivot_table(index="task", columns="label", values="median", aggfunc="first", dropna=False)
    medians = medians.dropna(axis=1)  # only methods run on every task
    if medians.shape[0] < 3 or medians.shape[1] < 3:
        return None
    return stats.friedman(medians)


def expected_best(runs: pd.DataFrame, trials: pd.DataFrame, method: str = "random") -> pd.DataFrame:
    """Per task and ``method`` experiment (label): the expected best validation objective (and
    its sd) of n trials, for every n up to 100 and 200 log-spaced n up to N, N being all their
    trials pooled over seeds (i.i.d. draws from the prior). A trial that diverged or failed is a
    draw too: it counts as the worst ok objective of the pool, so a prior that often diverges is
    not flattered."""
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


def crossing(runs: pd.DataFrame, who: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per task swept over the number of tuned hyperparameters d (``load.settings``: a task with
    runs at two d or more), per d and method: the kind (hypergradient, black-box, or untuned for
    the default configuration's row), the median and
    IQR over runs of the score (``scores``) and of the test metric, and the method's standing
    against the best row at that d with its Holm-corrected paired p-value (``scores.compare``).
    A d at which the task ran in more than one setting (hyper_cleaning's control and oracle, both
    at d = 3 with other loss weights) is left out: those settings are not points of one line.
    Empty where no task was run at two d."""
    who = (scores.per_task(runs) if who is None else who).set_index(["task", "label"])
    rows = []
    for task_name, task_runs in runs.groupby("task_name", sort=True):
        if task_runs["dimensions"].nunique() < 2:
            continue
        settings_at = task_runs.groupby("dimensions")["task"].nunique()
        task_runs = task_runs[task_runs["dimensions"].isin(settings_at[settings_at == 1].index)]
        for (setting, label), group in task_runs.groupby(["task", "label"], sort=True):
            against = who.loc[(setting, label)]
            score = scores.run_scores(group, against["score"]).to_numpy(float)
            test = group["final_test_metric"].to_numpy(float)
            kinds = group["method_kind"].dropna().unique()
            if group["method"].iloc[0] == UNTUNED:
                kind = UNTUNED_KIND
            else:
                kind = str(kinds[0]) if len(kinds) == 1 else "unknown"  # unknown: recorded before method_kind
            rows.append(
                {
                    "task": task_name,
                    "setting": setting,
                    "dimensions": int(group["dimensions"].iloc[0]),
                    "method": label,
                    "kind": kind,
                    "score": against["score"],
                    "runs": len(group),
                    **_quartiles("score", score),
                    **_quartiles("test", test),
                    "test_metric": str(group["test_metric_name"].iloc[0]),
                    "standing": against["standing"],
                    "p_holm": float(against["p_holm"]),
                    "paired": int(against["paired"]),
                }
            )
    columns = ["task", "setting", "dimensions", "method", "kind", "score", "runs"]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=columns)
    return table.sort_values(["task", "dimensions", "score_median", "method"], ignore_index=True)


def _quartiles(name: str, values: np.ndarray) -> dict[str, float]:
    """Median and interquartile range of the finite ``values`` (a failed run scores +inf: it moves
    the quartiles as the worst run, and only an all-failed cell is NaN)."""
    finite = values[~np.isnan(values)]
    if not finite.size:
        return {f"{name}_median": math.nan, f"{name}_q25": math.nan, f"{name}_q75": math.nan}
    method = "inverted_cdf" if np.isinf(finite).any() else "linear"  # no inf - inf interpolation
    q25, median, q75 = np.quantile(finite, [0.25, 0.5, 0.75], method=method)
    return {f"{name}_median": float(median), f"{name}_q25": float(q25), f"{name}_q75": float(q75)}


def learning_curves(runs: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per rung of every run whose trials record a fidelity (multi-fidelity methods): its
    run, task, label, seed, ``lineage`` (the trial its training started at; a rung continues the
    trial named in ``continues``), ``fidelity`` (training steps reached), ``objective``, ``status``,
    ``stopped`` (the training ended below the highest fidelity its run reached) and ``incumbent``."""
    columns = ["run_id", "task", "label", "seed", "lineage", "trial", "fidelity", "objective", "status", "stopped"]
    if trials.empty or "fidelity" not in trials or trials["fidelity"].isna().all():
        return pd.DataFrame(columns=[*columns, "incumbent"])
    rungs = trials[trials["fidelity"].notna()].sort_values(["run_id", "trial"])
    rows = []
    for _, run in rungs.groupby("run_id", sort=True):
        lineage: dict[int, int] = {}
        for trial, continues in zip(run["trial"], run["continues"], strict=True):
            lineage[int(trial)] = int(trial) if pd.isna(continues) else lineage[int(continues)]
        frame = run.assign(lineage=run["trial"].map(lineage), fidelity=run["fidelity"].astype(int))
        top = frame.loc[frame["status"] == "ok", "fidelity"].max()
        reached = frame.groupby("lineage")["fidelity"].transform("max")
        at_top = frame[(frame["status"] == "ok") & (frame["fidelity"] == top)]
        best = at_top["objective"].idxmin() if len(at_top) else None
        rows.append(frame.assign(stopped=reached < top, incumbent=frame.index == best))
    table = pd.concat(rows)
    labels = runs.set_index("run_id")["label"]
    table = table.assign(label=table["run_id"].map(labels))
    return table[[*columns, "incumbent"]].reset_index(drop=True)


def stopping(curves: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Per task and method (label) of ``learning_curves``: the medians over runs of configurations
    started, stopped early and trained to the highest fidelity, and the share of the training steps
    spent on trainings that were stopped."""
    if curves.empty:
        return pd.DataFrame(columns=["task", "method", "runs", "started", "stopped", "full", "stopped_steps"])
    cost = trials[["run_id", "trial", "cost_steps"]].rename(columns={"cost_steps": "cost"})
    curves = curves.merge(cost, on=["run_id", "trial"], how="left")
    per_run = curves.groupby(["task", "label", "run_id"]).apply(
        lambda run: pd.Series(
            {
                "started": run["lineage"].nunique(),
                "stopped": run.loc[run["stopped"], "lineage"].nunique(),
                "full": run.loc[~run["stopped"], "lineage"].nunique(),
                "stopped_steps": run.loc[run["stopped"], "cost"].sum() / max(run["cost"].sum(), 1),
            }
        ),
        include_groups=False,
    )
    table = per_run.groupby(level=["task", "label"]).median()
    table["runs"] = per_run.groupby(level=["task", "label"]).size()
    table = table.reset_index().rename(columns={"label": "method"})
    return table[["task", "method", "runs", "started", "stopped", "full", "stopped_steps"]]
