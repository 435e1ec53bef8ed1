"""The statistics of the report, as plain functions of arrays and tables (``bench.report.scores``
and ``bench.report.analysis`` apply them).

Methods compared on one task ran with the same seeds (common random numbers: trial i of every
method trains with the same seed), so their scores pair up by seed.

- ``wilcoxon_p`` and ``holm``: the two-sided Wilcoxon signed-rank test of paired scores
  (``scipy.stats.wilcoxon``; exact for small samples) and Holm's correction for comparing every
  method with the best (``statsmodels``). With n paired seeds the smallest two-sided p-value is
  2 / 2^n: 3 seeds can never reach 0.05, 6 can;
- ``best_so_far_at``, ``horizon``, ``normalised_regret``: the anytime view of a run;
- ``mean_ranks``: mean rank over seeds with a percentile bootstrap interval (``scipy.stats.bootstrap``);
- ``probability_better`` and ``verdict``: P(A > B) with its bootstrap interval, read as
  Bouthillier et al. 2021 do (threshold 0.75);
- ``friedman``: Friedman's test over tasks, Nemenyi's post-hoc p-values (``scikit-posthocs``) and
  critical difference (Demsar 2006);
- ``expected_best``: Dodge et al. 2019's expected best of n random trials, in closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, friedmanchisquare, studentized_range, wilcoxon
from statsmodels.stats.multitest import multipletests


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples; 1 when they never differ, NaN
    when there is no pair."""
    if len(a) == 0:
        return math.nan
    if np.all(a == b):
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values; NaN entries stay NaN and are not counted as tests."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p_values, math.nan)
    tested = ~np.isnan(p_values)
    if tested.any():
        adjusted[tested] = multipletests(p_values[tested], method="holm")[1]
    return adjusted


# ------------------------------------------------------------------------------ anytime performance
AXES = {"steps": "cumulative_steps", "seconds": "cumulative_seconds"}
"""The two budget axes of the anytime view: training steps and wall-clock seconds spent so far."""


def best_so_far_at(trials: pd.DataFrame, axis: str, horizons: np.ndarray) -> pd.DataFrame:
    """The best validation objective among each run's ``ok`` trials finished by each horizon.

    ``trials``: rows of one or more runs (``run_id``, ``status``, ``objective`` and the cumulative
    column of ``axis``, "steps" or "seconds"; ``best_so_far`` when recorded, which a multi-fidelity
    run keeps at the highest fidelity reached so far). Returns one row per run (index ``run_id``)
    and one column per horizon; NaN where the run had no ``ok`` trial by then."""
    column = AXES[axis]
    horizons = np.asarray(horizons, dtype=float)
    out = {}
    for run_id, run in trials.groupby("run_id", sort=False):
        run = run.sort_values(column, kind="stable")
        best = best_so_far(run).to_numpy(float)
        index = np.searchsorted(run[column].to_numpy(float), horizons, side="right") - 1
        out[run_id] = np.where(index >= 0, best[np.maximum(index, 0)], np.nan)
    return pd.DataFrame.from_dict(out, orient="index", columns=list(horizons))


def best_so_far(run: pd.DataFrame) -> pd.Series:
    """The best validation objective so far at each trial of one run (rows in trial order): the
    recorded ``best_so_far`` (which a multi-fidelity run keeps at the highest fidelity reached so
    far), or for rows without it the running minimum of the ``ok`` objectives; NaN before the
    first ``ok`` trial."""
    if "best_so_far" in run:
        return run["best_so_far"].astype(float)
    objective = np.where(run["status"].to_numpy() == "ok", run["objective"].to_numpy(float), np.inf)
    best = np.minimum.accumulate(np.where(np.isnan(objective), np.inf, objective))
    return pd.Series(np.where(np.isinf(best), np.nan, best), index=run.index)


def horizon(trials: pd.DataFrame, axis: str) -> float:
    """100% of the budget on ``axis`` for one task: the most any of its runs spent (a budgeted run
    ends at its budget, or just past it when a trial that started inside it finishes)."""
    return float(trials.groupby("run_id")[AXES[axis]].max().max())


def normalised_regret(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """(y - min) / (max - min) over a task's runs: 0 at the best objective any run found, 1 at the
    worst; 0 everywhere when every trial scored the same."""
    values = np.asarray(values, dtype=float)
    return np.zeros_like(values) if high <= low else (values - low) / (high - low)


# ------------------------------------------------------------------------------ ranks and P(A > B)
def mean_ranks(scores: pd.DataFrame, n_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mean rank of each method over seeds with a percentile bootstrap interval (seeds resampled,
    ``scipy.stats.bootstrap``). ``scores``: one row per seed, one column per method, lower is
    better; rank 1 is the best, ties share the average rank; only seeds every method ran count.
    Returns one row per method: ``mean_rank``, ``low``, ``high``, ``seeds``."""
    complete = scores.dropna(axis=0, how="any")
    ranks = complete.rank(axis=1, method="average").to_numpy(float)
    mean = ranks.mean(axis=0) if len(ranks) else np.full(scores.shape[1], math.nan)
    low, high = _bootstrap_mean(ranks, n_resamples, level, seed)
    return pd.DataFrame({"method": scores.columns, "mean_rank": mean, "low": low, "high": high, "seeds": len(complete)})


def _bootstrap_mean(values: np.ndarray, n_resamples: int, level: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the column means of ``values`` (rows resampled jointly)."""
    k = values.shape[1] if values.ndim == 2 else 1
    if len(values) < 2 or np.all(values == values[0]):
        center = values.mean(axis=0) if len(values) else np.full(k, math.nan)
        return (center, center) if len(values) else (center, center.copy())
    result = bootstrap(
        (values,),
        np.mean,
        axis=0,
        vectorized=True,
        method="percentile",
        n_resamples=n_resamples,
        confidence_level=level,
        rng=seed,
    )
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


P_THRESHOLD = 0.75
"""Bouthillier et al. 2021: A beats B when P(A > B) exceeds 0.5 significantly and is at least 0.75."""


def probability_better(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """P(A > B): the probability that A scores better (lower) than B on a random seed, ties counting
    half, from scores paired by seed; with a percentile bootstrap interval over seeds. Returns
    (estimate, low, high); NaNs when nothing pairs."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0:
        return math.nan, math.nan, math.nan
    wins = (a < b) + 0.5 * (a == b)
    low, high = _bootstrap_mean(wins[:, None], n_resamples, level, seed)
    return float(wins.mean()), float(low[0]), float(high[0])


MIN_SEEDS_FOR_VERDICT = 5
"""Below this many paired seeds a percentile bootstrap interval is too narrow to read (one seed, or
every seed a win, gives an interval of width 0): no verdict."""


def verdict(p: float, low: float, seeds: int) -> str:
    """Bouthillier et al.'s reading of P(A > B) and the lower end of its interval, over ``seeds``
    paired seeds."""
    if not math.isfinite(p):
        return "-"
    if seeds < MIN_SEEDS_FOR_VERDICT:
        return f"too few seeds ({seeds} < {MIN_SEEDS_FOR_VERDICT})"
    if low > 0.5 and p >= P_THRESHOLD:
        return "better"
    if low > 0.5:
        return "better, below 0.75"
    return "not separable"


# ------------------------------------------------------------------------------ across tasks
def friedman(scores: pd.DataFrame, alpha: float = 0.05) -> dict[str, object]:
    """Friedman test over tasks (Demsar 2006): ``scores`` has one row per task (the block), one
    column per method (a method's median score on the task, lower is better). Returns the
    statistic, its p-value (``scipy.stats.friedmanchisquare``), the mean ranks, the Nemenyi
    post-hoc p-values (``scikit_posthocs.posthoc_nemenyi_friedman``) and the Nemenyi critical
    difference of mean ranks at ``alpha`` (q_alpha from the studentized range / sqrt 2)."""
    import scikit_posthocs

    scores = scores.dropna(axis=0, how="any")
    n, k = scores.shape
    if n < 3 or k < 3:
        raise ValueError(f"the Friedman test needs at least 3 tasks and 3 methods run on all of them; got {n} x {k}")
    ranks = scores.rank(axis=1, method="average").mean(axis=0)
    if (scores.nunique(axis=1) == 1).all():  # every task a tie: nothing to test (scipy divides by 0)
        statistic, p = 0.0, 1.0
        nemenyi = pd.DataFrame(1.0, index=scores.columns, columns=scores.columns)
    else:
        statistic, p = friedmanchisquare(*(scores[c].to_numpy(float) for c in scores.columns))
        nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(scores.reset_index(drop=True))
    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return {
        "statistic": float(statistic),
        "p": float(p),
        "tasks": n,
        "ranks": ranks,
        "nemenyi": nemenyi,
        "critical_difference": float(q * math.sqrt(k * (k + 1) / (6 * n))),
    }


# ------------------------------------------------------------------------------ expected max performance
def expected_best(values: np.ndarray, n: int, lower_is_better: bool = True) -> tuple[float, float]:
    """Expected best validation score of ``n`` trials drawn from the ``N`` observed ones (Dodge et
    al. 2019, section 3.1): with v_(1) <= ... <= v_(N) sorted so that the last is the best,
    E[V*_n] = sum_i v_(i) [(i/N)^n - ((i-1)/N)^n], in closed form. Returns (mean, sd), the sd from
    the same weights on v^2."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0 or n < 1:
        return math.nan, math.nan
    v = np.sort(-values if lower_is_better else values)
    i = np.arange(1, len(v) + 1) / len(v)
    weights = i**n - (i - 1 / len(v)) ** n
    mean = float(weights @ v)
    sd = float(math.sqrt(max(weights @ v**2 - mean**2, 0.0)))
    return (-mean if lower_is_better else mean), sd
