"""Who wins on each task: one score per run, the seed x method score matrix, the best row, wins
and paired tests. The comparison table, the verdict in words, the full report's analyses and the
paper tables all read this one computation.

The score. A run is scored on the validation objective of its incumbent retrained with fresh seeds
(``final_objective``: not selected on noise). A task some of whose runs were not retrained
(``incumbent_repeats=0``) has no such score for them, so the whole task is scored on the best
validation objective among each run's trials instead (``best_objective``; optimistic, as the best
of many noisy trials is), and every table and verdict names the score it used. Lower is better.

Failures. A run that produced no score where it should have (no ``ok`` trial; every retraining
failed) scores +inf, strictly worse than every real run: in the tests it counts as worse than the
worst real score by more than any two real scores differ, it never wins a seed, and it ranks last.
A seed a method never ran stays missing (NaN) and pairs with nothing.

The best row: the lowest median score over seeds; a tie in the median goes to the lower mean
(failures counted as above), then to the name first in alphabetical order. Wins: the seeds on which
a row's score is the lowest finite score of that seed (a tie counts for every row in it). Tests:
each row against the best over the seeds both ran, two-sided paired Wilcoxon signed-rank
(``stats.wilcoxon_p``), Holm-corrected over the rows (``stats.holm``); and P(best > row) with its
bootstrap interval and Bouthillier et al.'s reading (``stats.probability_better``, ``stats.verdict``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report import stats

RETRAINED = "final_objective"
BEST = "best_objective"
SCORE_NAMES = {RETRAINED: "retrained validation objective", BEST: "best validation objective"}
ALPHA = 0.05
"""Holm-corrected p below this: a row is behind the best; at or above: not separable from it."""


def score_column(runs: pd.DataFrame) -> str:
    """The score the runs of one task are compared on: ``final_objective`` when every run was
    retrained, else ``best_objective`` (see the module docstring)."""
    repeats = runs["incumbent_repeats"] if "incumbent_repeats" in runs else pd.Series(1, index=runs.index)
    return RETRAINED if bool((repeats.fillna(1) > 0).all()) else BEST


def run_scores(runs: pd.DataFrame, column: str) -> pd.Series:
    """Each run's score on ``column``: its value, or +inf for a run that produced none."""
    return runs[column].astype(float).where(runs[column].astype(float).notna(), math.inf)


def matrix(runs: pd.DataFrame, values: pd.Series | str, rows: str = "seed", columns: str = "label") -> pd.DataFrame:
    """One row per ``rows`` value (seed), one column per ``columns`` value (label): the median of
    ``values`` (a column name, or a Series aligned with ``runs``) over the runs in each cell; NaN
    where a label never ran with that seed. Columns in sorted order."""
    values = runs[values] if isinstance(values, str) else values
    frame = pd.DataFrame({"row": runs[rows].to_numpy(), "column": runs[columns].to_numpy(), "value": values})
    wide = frame.pivot_table(index="row", columns="column", values="value", aggfunc="median", dropna=False)
    wide.index.name, wide.columns.name = rows, columns
    return wide.astype(float).sort_index(axis=1)


def score_matrix(runs: pd.DataFrame, column: str | None = None) -> pd.DataFrame:
    """The seed x label matrix of one task's scores (+inf: a run with no score)."""
    column = column or score_column(runs)
    return matrix(runs, run_scores(runs, column))


def worse_than_every_run(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with +inf replaced by a finite value strictly worse than every real score, by more
    than any two real scores differ (so a failure is the largest loss in a signed-rank test)."""
    finite = scores.to_numpy()[np.isfinite(scores.to_numpy())]
    if not finite.size:
        return scores.where(~np.isinf(scores), 1.0)
    worst, lowest = float(finite.max()), float(finite.min())
    return scores.where(~np.isinf(scores), worst + max(1.0, 2 * (worst - lowest)))


def best_row(scores: pd.DataFrame) -> str | None:
    """The label with the lowest median score; ties by the lower mean, then by name (see the
    module docstring). None when no label has a finite score."""
    if not np.isfinite(scores.to_numpy()).any():
        return None
    ranked = worse_than_every_run(scores)
    order = pd.DataFrame({"median": ranked.median(axis=0), "mean": ranked.mean(axis=0), "name": ranked.columns})
    return str(order.dropna(subset=["median"]).sort_values(["median", "mean", "name"]).iloc[0]["name"])


def compare(scores: pd.DataFrame) -> pd.DataFrame:
    """Every column of a seed x label score matrix against the best one. One row per label (the
    matrix's column order): ``seeds`` (runs), ``failed`` (runs scored +inf), ``median`` and
    ``mean`` (failures counted as worse than every run), ``median_of_scored`` (the runs that have a
    score), ``wins``, ``best`` (bool), ``paired``
    (seeds shared with the best), ``better_seeds`` and ``worse_seeds`` (of those, where the row
    scored better or worse than the best), ``difference`` (median of row minus best over them),
    ``p`` and ``p_holm`` (NaN for the best itself and where nothing pairs), ``p_best_better`` with
    ``p_low`` and ``p_high`` (its 95% bootstrap interval), ``verdict`` (Bouthillier et al.'s
    reading) and ``standing``: ``best``, ``behind`` (Holm-corrected p below ``ALPHA`` and worse on
    the paired seeds), ``ahead`` (as significant, but better on the paired seeds: the median and the
    pairs disagree, as they can when scores are bimodal) or ``not separable``."""
    best = best_row(scores)
    ranked = worse_than_every_run(scores)
    finite = scores.where(np.isfinite(scores))
    lowest = finite.min(axis=1, skipna=True)
    rows = []
    for column in scores.columns:
        values = ranked[column]
        row = {
            "label": column,
            "seeds": int(values.notna().sum()),
            "failed": int(np.isinf(scores[column]).sum()),
            "median": float(values.median()),
            "mean": float(values.mean()),
            "median_of_scored": float(finite[column].median()),
            "wins": int(((finite[column] == lowest) & finite[column].notna()).sum()),
            "best": column == best,
            "paired": 0,
            "better_seeds": 0,
            "worse_seeds": 0,
            "difference": math.nan,
            "p": math.nan,
            "p_best_better": math.nan,
            "p_low": math.nan,
            "p_high": math.nan,
            "verdict": "best" if column == best else "-",
        }
        if best is not None and column != best:
            both = ranked[[best, column]].dropna()
            row["paired"] = len(both)
            row["better_seeds"] = int((both[column] < both[best]).sum())
            row["worse_seeds"] = int((both[column] > both[best]).sum())
            row["difference"] = float((both[column] - both[best]).median()) if len(both) else math.nan
            row["p"] = stats.wilcoxon_p(both[column].to_numpy(), both[best].to_numpy())
            p, low, high = stats.probability_better(both[best].to_numpy(), both[column].to_numpy())
            row.update(p_best_better=p, p_low=low, p_high=high, verdict=stats.verdict(p, low, len(both)))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["p_holm"] = stats.holm(table["p"].to_numpy())
    table["standing"] = [_standing(row) for row in table.itertuples()]
    return table


def _standing(row) -> str:  # noqa: ANN001 - a row of itertuples
    if row.best:
        return "best"
    if not row.p_holm < ALPHA:
        return "not separable"
    if row.difference > 0 or (row.difference == 0 and row.worse_seeds > row.better_seeds):
        return "behind"
    if row.difference < 0 or row.better_seeds > row.worse_seeds:
        return "ahead"
    return "not separable"  # significant, yet no side is better on the paired seeds


def per_task(runs: pd.DataFrame) -> pd.DataFrame:
    """``compare`` for every task of ``runs``, with ``task`` and ``score`` (the column compared on)
    in front: the one table of who wins that every part of the report reads."""
    tables = []
    for task, group in runs.groupby("task", sort=True):
        column = score_column(group)
        tables.append(compare(score_matrix(group, column)).assign(task=task, score=column))
    table = pd.concat(tables, ignore_index=True)
    return table[["task", "score", *[c for c in table.columns if c not in ("task", "score")]]]
