"""The verdict in words, one paragraph per task: which row is best, which rows the data cannot
separate from it and which are behind it, with the number of seeds, the score and the test used.

It reads the same table of who wins as the comparison table (``bench.report.scores.per_task``)
and claims nothing that table does not hold: a row is "behind" only when its Holm-corrected paired
Wilcoxon p-value against the best is below ``scores.ALPHA`` and it scored worse on the paired
seeds; a row as significantly better on the paired seeds than the row with the best median is
named as such (the median and the pairs disagree); every other row is "not separable" from it, and
a task whose seeds are too few for any p-value to reach that level says so.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.protocols import BLACK_BOX_KIND as BLACK_BOX
from bench.protocols import HYPERGRADIENT_KIND as HYPERGRADIENT
from bench.report import scores
from bench.report.analysis import UNTUNED_KIND
from bench.report.load import setting_order
from bench.report.render import names, number


def paragraphs(who: pd.DataFrame) -> list[str]:
    """One Markdown paragraph per task of ``who`` (the ``scores.per_task`` table)."""
    groups = sorted(who.groupby("task", sort=False), key=lambda group: setting_order(group[0]))
    return [task_verdict(task, rows) for task, rows in groups]


def task_verdict(task: str, rows: pd.DataFrame) -> str:
    score = scores.SCORE_NAMES[rows["score"].iloc[0]]
    seeds = int(rows["seeds"].max())
    best = rows[rows["best"]]
    if best.empty:
        return f"**{task}**: no run produced a score, so there is no best row ({len(rows)} rows, {seeds} seeds)."
    winner = best.iloc[0]
    others = rows[~rows["best"]]
    behind = others[others["standing"] == "behind"]
    ahead = others[others["standing"] == "ahead"]
    tied = others[others["standing"] == "not separable"]
    text = (
        f"**{task}** ({seeds} seed{'s' if seeds != 1 else ''}, on the {score}; lower is better): "
        f"best **{winner['label']}** ("
        + (
            f"median {number(winner['median_of_scored'])} over its {winner['seeds'] - winner['failed']} scored runs, "
            f"{winner['failed']} failed"
            if winner["failed"]
            else f"median {number(winner['median'])}"
        )
        + ")."
    )
    if rows["score"].iloc[0] == scores.BEST:
        text += (
            " Its runs were not all retrained (incumbent_repeats=0), so the rows are compared on the best "
            "validation objective a run found, which favours methods that ran more trials."
        )
    if len(others) == 0:
        return text + " No other row to compare with."
    test = "two-sided paired Wilcoxon signed-rank test against the best, Holm-corrected"
    if len(ahead):
        text += (
            f" But better than it on the paired seeds ({test}, p < {scores.ALPHA:g}): "
            + names(
                [
                    f"{row.label} (better on {row.better_seeds} of {row.paired} seeds, p = {row.p_holm:.2g})"
                    for row in ahead.itertuples()
                ]
            )
            + ": the median and the paired test disagree (the scores may be bimodal); read the per-seed scores."
        )
    if len(behind):
        text += f" Behind it ({test}, p < {scores.ALPHA:g}): {_listed(behind)}."
    if len(tied):
        text += f" Not separable from it ({test}): {_listed(tied)}."
    paired, tested = int(others["paired"].max()), int(others["p"].notna().sum())
    if paired == 0:
        return text + " No other row shares a seed with the best, so nothing is tested."
    floor = 2 / 2**paired  # the smallest two-sided signed-rank p-value with this many pairs
    corrected = min(1.0, tested * floor)  # and after Holm's correction over the rows tested
    if corrected >= scores.ALPHA:
        text += f" With {paired} paired seed{'s' if paired != 1 else ''} the smallest two-sided p-value is {floor:.2g}"
        text += f", {corrected:.2g} after Holm's correction over {tested} rows" if tested > 1 else ""
        text += ": these seeds cannot separate any two rows."
    return text


def _listed(rows: pd.DataFrame) -> str:
    return names(
        [f"{row.label} ({_tested(row)})" for row in rows.sort_values(["median", "mean", "label"]).itertuples()]
    )


def _tested(row) -> str:  # noqa: ANN001 - a row of itertuples
    if row.failed == row.seeds:
        return "failed on every seed"
    if not math.isfinite(row.p_holm):
        return "no seed shared with the best"
    return f"p = {row.p_holm:.2g}"


def crossing(table: pd.DataFrame) -> list[str]:
    """The crossing in words, one paragraph per task of ``table`` (``analysis.crossing``): at each
    d which kind of method is best and whether the other kind is behind it (Holm-corrected paired
    Wilcoxon p below ``scores.ALPHA``) or not separable; then from which d on, if any, the
    hypergradient methods overtake the black-box methods."""
    out = []
    for task, rows in table.groupby("task", sort=True):
        lines, overtaken = [], []
        for d, at in rows.groupby("dimensions", sort=True):
            line, overtakes = _at_dimension(at)
            lines.append(f"d = {d}: {line}")
            overtaken.append((d, overtakes))
        seeds = int(rows["runs"].max())
        from_d = _from_on(overtaken)
        kinds = set(rows.loc[rows["kind"] != UNTUNED_KIND, "kind"])
        if not {HYPERGRADIENT, BLACK_BOX} <= kinds:
            lead = f"**{task}**: only {names(sorted(kinds))} methods ran, so there is no crossing to read."
        elif from_d is None:
            lead = (
                f"**{task}**: at no d do the hypergradient methods overtake the black-box methods (best row a "
                f"hypergradient method with every black-box tuner behind it at p < {scores.ALPHA:g}, Holm-corrected "
                f"paired Wilcoxon over {seeds} seeds)."
            )
        else:
            lead = (
                f"**{task}**: the hypergradient methods overtake the black-box methods from d = {from_d} on (the best "
                f"row a hypergradient method with every black-box tuner behind it at p < {scores.ALPHA:g}, "
                f"Holm-corrected paired Wilcoxon over {seeds} seeds)."
            )
        floor = 2 / 2**seeds
        if floor >= scores.ALPHA:
            lead += (
                f" With {seeds} paired seeds the smallest two-sided signed-rank p-value is {floor:.2g}: no row can be "
                "behind another at this level, so every statement below is about medians, not separations."
            )
        out.append(" ".join([lead, *[f"{line}." for line in lines]]))
    return out


def _at_dimension(rows: pd.DataFrame) -> tuple[str, bool]:
    """One d's sentence, and whether hypergradients overtake there."""
    tuners = rows[rows["kind"] != UNTUNED_KIND]
    best = rows[rows["standing"] == "best"]
    if best.empty:
        return "no run produced a score", False
    winner = best.iloc[0]
    other_kind = BLACK_BOX if winner["kind"] == HYPERGRADIENT else HYPERGRADIENT
    others = tuners[tuners["kind"] == other_kind]
    behind = others[others["standing"] == "behind"]
    kind = winner["kind"]
    text = f"best {winner['method']} ({kind}, median {number(winner['score_median'])})"
    if others.empty:
        return text + f"; no {other_kind} method ran", False
    leader = others.iloc[0]  # table rows are sorted by median score
    gap = f"best {other_kind} {leader['method']} at {number(leader['score_median'])}"
    if len(behind) == len(others):
        text += f"; every {other_kind} method behind it ({gap}, p = {_p(leader)})"
    else:
        tied = others[others["standing"] != "behind"]
        text += f"; {gap}, not separable: " + names([f"{r.method} (p = {_p(r)})" for r in tied.itertuples()])
    overtakes = kind == HYPERGRADIENT and len(behind) == len(others)
    return text, overtakes


def _p(row) -> str:  # noqa: ANN001 - a row or itertuples row of analysis.crossing
    value = row["p_holm"] if isinstance(row, pd.Series) else row.p_holm
    return "-" if not math.isfinite(value) else f"{value:.2g}"


def _from_on(overtaken: list[tuple[int, bool]]) -> int | None:
    """The smallest d from which the hypergradient methods overtake at every larger d too."""
    start = None
    for d, overtakes in overtaken:
        start = (start if start is not None else d) if overtakes else None
    return start
