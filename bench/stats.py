"""Paired statistics over seeds: who wins, and whether the data can tell.

Methods compared on one task ran with the same seeds (common random numbers: trial i of every
method trains with the same seed), so their scores pair up by seed. For each task:

- the *best* method is the one with the lowest median score;
- ``wins``: the number of seeds on which a method's score is the lowest of all methods run with
  that seed (a tie counts for every method in it);
- ``p``: the two-sided Wilcoxon signed-rank test of a method's scores against the best method's
  on the seeds both ran (``scipy.stats.wilcoxon``; exact for small samples), and ``p_holm`` the
  same p-values after Holm's correction for comparing every method with the best
  (``statsmodels``). With n paired seeds the smallest two-sided p-value is 2 / 2^n: 3 seeds can
  never reach 0.05, 6 can.

A run that produced no score (every trial failed) is scored as the worst score seen on its task,
so a method is not rewarded for failing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon
from statsmodels.stats.multitest import multipletests


def paired_against_best(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores``: one row per seed, one column per method, lower is better (NaN: not run with
    that seed; +inf: ran and failed). Returns one row per method (the columns' order) with
    ``seeds`` (runs), ``wins``, ``best`` (bool), ``paired`` (seeds shared with the best), ``p``
    and ``p_holm`` (NaN for the best itself and where nothing pairs)."""
    scores = scores.astype(float)
    finite = scores.to_numpy()[np.isfinite(scores.to_numpy())]
    worst = float(finite.max()) if finite.size else 0.0
    scores = scores.where(~np.isinf(scores), worst)
    medians = scores.median(axis=0, skipna=True)
    best = medians.idxmin() if medians.notna().any() else None
    lowest = scores.min(axis=1, skipna=True)
    rows = []
    for column in scores.columns:
        values = scores[column]
        row = {
            "method": column,
            "seeds": int(values.notna().sum()),
            "wins": int(((values == lowest) & values.notna()).sum()),
            "best": column == best,
            "paired": 0,
            "p": math.nan,
        }
        if best is not None and column != best:
            both = values.notna() & scores[best].notna()
            row["paired"] = int(both.sum())
            row["p"] = wilcoxon_p(values[both].to_numpy(), scores[best][both].to_numpy())
        rows.append(row)
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p"].to_numpy())
    return table


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
