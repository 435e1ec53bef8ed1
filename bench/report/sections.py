"""The sections of the full report, in the order a reader needs them: the verdict in words and the
headline figure first, then the comparison table and the compact tables, the details below.

Each section is one function of a ``Context`` (the runs, their trials, who wins, where figures go,
the options), returning a ``Section`` or None when the data has nothing for it; ``SECTIONS`` lists
them in order. A section holds paragraphs, tables (the raw numbers for CSV, the shown cells for
reading) and figures; ``bench.report.page`` writes them as Markdown, CSV, LaTeX, PNG, SVG and one
HTML page. The analyses are ``bench.report.analysis``, the figures ``bench.report.plots``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.report import analysis, plots, scores, table, verdict
from bench.report.papers import paper_table
from bench.report.render import interval, number, render, with_iqr


@dataclass
class Table:
    """One table of a section: the numbers (``raw``, written as ``<stem>.csv``) and the cells
    shown (``shown``, written as ``<stem>.tex`` and shown in Markdown and HTML), with an optional
    heading of its own."""

    stem: str
    shown: pd.DataFrame
    raw: pd.DataFrame | None = None
    heading: str = ""


@dataclass
class Section:
    """One titled part of the report: paragraphs, tables, a caption and figures (PNG paths)."""

    name: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    caption: str = ""
    figures: list[Path] = field(default_factory=list)
    lead: bool = False  # shown first after the verdict (a paper table that answers its preset's question)

    def markdown(self) -> str:
        parts = [f"## {self.title}", *self.paragraphs]
        for shown in self.tables:
            if shown.heading:
                parts.append(f"**{shown.heading}**")
            parts.append(render(shown.shown))
        if self.caption:
            parts.append(self.caption)
        parts += [f"![{figure.stem}]({figure.name})" for figure in self.figures]
        return "\n\n".join(parts)


@dataclass
class Context:
    """What every section reads: labelled runs and their trials (``load_runs``), the folder they
    came from, where figures go, and the report's options."""

    runs: pd.DataFrame
    trials: pd.DataFrame
    root: Path
    figures: Path
    importance: bool = False
    paper: str | None = None
    target: float | None = None

    @cached_property
    def who(self) -> pd.DataFrame:
        """Who wins on each task (``scores.per_task``): computed once, read by every section."""
        return scores.per_task(self.runs)

    @cached_property
    def colours(self) -> dict:
        return plots.palette(self.runs["label"])

    @cached_property
    def grids(self) -> analysis.Grids:
        return analysis.grids(self.runs, self.trials)

    @cached_property
    def anytime(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return analysis.anytime(self.runs, self.trials, self.grids)


def _headline_axis(curves: pd.DataFrame) -> str:
    """Training steps, the budget's currency, when every task counts them; else seconds."""
    with_steps = set(curves.loc[curves["axis"] == "steps", "task"])
    return "steps" if with_steps == set(curves["task"]) else "seconds"


def verdict_section(context: Context) -> Section:
    curves = context.anytime[1]
    axis = _headline_axis(curves)
    return Section(
        "verdict",
        "Verdict",
        paragraphs=verdict.paragraphs(context.who),
        caption=f"Headline figure: the best validation objective found so far against {plots.AXIS_LABELS[axis]} "
        "(median line, interquartile band over runs; the y-axis is cut above the worst median at a quarter of the "
        "budget); the anytime section below has the numbers.",
        figures=[plots.anytime(curves, axis, context.colours, context.figures / f"anytime_{axis}")],
    )


def comparison_section(context: Context) -> Section:
    summary = table.summarise(context.runs, context.who)
    return Section(
        "comparison",
        "Comparison",
        tables=[Table("comparison", table.shown(summary), raw=summary)],
        caption=f"{table.runs_line(context.runs, context.root)} {table.caption(summary, context.runs)}",
    )


def anytime_section(context: Context) -> Section:
    at, curves = context.anytime
    tables = []
    for axis in ("steps", "seconds"):
        rows = at[at["axis"] == axis]
        if rows.empty:
            continue
        tables.append(
            Table(
                f"anytime_{axis}",
                _fractions(rows, lambda r: with_iqr(r["median"], r["q25"], r["q75"]), extra=_regret(rows)),
                raw=rows.reset_index(drop=True),
                heading=f"against {plots.AXIS_LABELS[axis]}",
            )
        )
    other = "seconds" if _headline_axis(curves) == "steps" else "steps"  # the headline figure shows one axis
    figures = []
    if (curves["axis"] == other).any():
        figures.append(plots.anytime(curves, other, context.colours, context.figures / f"anytime_{other}"))
    return Section(
        "anytime",
        "Anytime performance",
        tables=tables,
        caption="Best validation objective found so far at 25%, 50% and 100% of the budget, in training steps and "
        "in wall-clock seconds (100%: the most any run of the task spent), median [interquartile range] over runs; "
        "regret: median normalised regret (y - min) / (max - min) at 100% over every trial of the task (0: the "
        "best any run found, 1: the worst). A run with no finished trial yet counts as the worst.",
        figures=figures,
    )


def _fractions(rows: pd.DataFrame, cell: Callable[[pd.Series], str], extra: pd.Series | None = None) -> pd.DataFrame:
    """Methods as rows, budget fractions as columns: ``cell`` of each (task, method, fraction)."""
    wide = rows.assign(cell=rows.apply(cell, axis=1), column=rows["fraction"].map(lambda f: f"{f:.0%}"))
    shown = wide.pivot_table(index=["task", "method"], columns="column", values="cell", aggfunc="first", sort=False)
    shown = shown[[f"{f:.0%}" for f in analysis.FRACTIONS if f"{f:.0%}" in shown.columns]]
    if extra is not None:
        shown = shown.join(extra)
    return shown.reset_index().rename_axis(columns=None)


def _regret(rows: pd.DataFrame) -> pd.Series:
    full = rows[rows["fraction"].round(6) == 1.0].set_index(["task", "method"])["regret"]
    return full.map(lambda r: number(r, 3)).rename("regret at 100%")


def ranks_section(context: Context) -> Section | None:
    rank_table = analysis.ranks(context.runs, context.trials, context.grids)
    if not len(rank_table):
        return None
    at = rank_table[rank_table["fraction"].round(6).isin(analysis.FRACTIONS)]
    tables = []
    for axis in ("steps", "seconds"):
        rows = at[at["axis"] == axis]
        if len(rows):
            cells = _fractions(rows, lambda r: f"{r['mean_rank']:.2f} [{r['low']:.2f}, {r['high']:.2f}]")
            seeds = rows.drop_duplicates(["task", "method"]).set_index(["task", "method"])["seeds"]
            cells = cells.join(seeds, on=["task", "method"])
            tables.append(Table(f"ranks_{axis}", cells, raw=rows.reset_index(drop=True), heading=f"against {axis}"))
    return Section(
        "ranks",
        "Mean rank over the budget",
        tables=tables,
        caption="Rank of each method's best-so-far validation objective among the methods run with the same seed "
        "(1 = best, ties averaged), averaged over the seeds every method ran, with its 95% percentile bootstrap "
        "interval over seeds (scipy.stats.bootstrap, 1,000 resamples), at 25%, 50% and 100% of the budget.",
        figures=[plots.rank_curves(rank_table, context.colours, context.figures / "ranks")],
    )


def versus_best_section(context: Context) -> Section:
    compared = analysis.comparison(context.runs, context.trials, context.target, context.who)
    shown = pd.DataFrame(
        {
            "task": compared["task"],
            "method": compared["method"],
            "P(best > method) [95% CI]": [
                interval(p, a, b) for p, a, b in compared[["p_best_better", "p_low", "p_high"]].to_numpy(float)
            ],
            "verdict": compared["verdict"],
            "target": compared["target"].map(number),
            "reached": compared["reached"].map(lambda r: f"{r:.0%}"),
            "steps to target: median": compared["steps_to_target"].map(_time_to(number)),
            "seconds to target: median": compared["seconds_to_target"].map(_time_to(lambda v: number(v, 3))),
            "time outside evaluation": compared["outside_evaluation"].map(lambda v: "-" if v != v else f"{v:.1%}"),
            "test: median": [f"{number(v)} ({m})" for v, m in compared[["test_median", "test_metric"]].to_numpy()],
        }
    )
    return Section(
        "comparison_vs_best",
        "Who beats whom, how fast, at what cost",
        tables=[Table("comparison_vs_best", shown, raw=compared)],
        caption="P(best > method): the probability that the best row (bench/report/scores.py) scores better than the "
        "method on a random seed, ties counting half, with a 95% percentile bootstrap interval over seeds; verdict "
        "after Bouthillier et al. 2021: 'better' when the interval lies above 0.5 and the estimate reaches 0.75, "
        "else 'not separable' (or 'better, below 0.75'); with fewer than 5 paired seeds no verdict is given. The "
        "best row is chosen on the same seeds it is compared on, and the intervals are not corrected for the "
        "several comparisons: read them as descriptive. Target: the validation objective to reach (by default the "
        "median over the task's runs of their best); reached: share of runs that got there; steps and seconds to "
        "target: median over runs (a run that never got there counts as infinitely slow). Time outside "
        "evaluation: share of a run's wall time not spent training and scoring (the method's ask and tell, the "
        "runner). Test: the test metric of the incumbent chosen on validation and retrained with fresh seeds, "
        "median over runs.",
    )


def _time_to(format_number: Callable[[float], str]) -> Callable[[float], str]:
    return lambda value: "not reached" if value == float("inf") else format_number(value)


def crossing_section(context: Context) -> Section | None:
    found = analysis.crossing(context.runs, context.who)
    if found.empty:
        return None
    per_d = found["dimensions"].map(str)
    cells = found.assign(
        d=per_d,
        validation=[with_iqr(m, a, b) for m, a, b in found[["score_median", "score_q25", "score_q75"]].to_numpy()],
        test=[with_iqr(m, a, b) for m, a, b in found[["test_median", "test_q25", "test_q75"]].to_numpy()],
        against=[
            "best" if s == "best" else f"{s} (p = {'-' if p != p else f'{p:.2g}'})"
            for s, p in found[["standing", "p_holm"]].to_numpy()
        ],
    )
    order = [str(d) for d in sorted(found["dimensions"].unique())]
    tables = []
    for value, heading in (
        ("validation", "retrained validation objective: median [IQR] over seeds"),
        ("test", "test metric of the retrained incumbent: median [IQR] over seeds"),
        ("against", "against the best row at each d: two-sided paired Wilcoxon, Holm-corrected"),
    ):
        wide = cells.pivot_table(
            index=["task", "method", "kind"], columns="d", values=value, aggfunc="first", sort=False
        )
        wide = wide[[d for d in order if d in wide.columns]].fillna("-")
        wide.columns = [f"d={d}" for d in wide.columns]
        tables.append(
            Table(
                f"crossing_{value}", wide.reset_index(), raw=found if value == "validation" else None, heading=heading
            )
        )
    return Section(
        "crossing",
        "Against the number of hyperparameters",
        paragraphs=verdict.crossing(found),
        tables=tables,
        caption="Each d is a setting of the task (the same task tuned at another granularity of its L2 penalty or "
        "loss weights, task.l2_granularity or task.loss_granularity): the methods are compared, paired by seed and "
        "tested within each d (the sections above, one task row per d). Rows: median [interquartile range] over "
        "seeds; 'behind': Holm-corrected p below "
        f"{scores.ALPHA:g} and worse on the paired seeds; kind: hypergradient (trains through the training loop) or "
        "black-box; untuned: the default configuration, on neither side.",
        figures=[plots.crossing(found, context.colours, context.figures / "crossing")],
    )


def learning_curves_section(context: Context) -> Section | None:
    curves = analysis.learning_curves(context.runs, context.trials)
    if curves.empty:
        return None
    table = analysis.stopping(curves, context.trials)
    shown = table.assign(
        started=table["started"].map(lambda v: number(v, 3)),
        stopped=table["stopped"].map(lambda v: number(v, 3)),
        full=table["full"].map(lambda v: number(v, 3)),
        stopped_steps=table["stopped_steps"].map(lambda v: f"{100 * v:.0f}%"),
    ).rename(
        columns={
            "started": "configurations started",
            "stopped": "stopped early",
            "full": "at the highest fidelity",
            "stopped_steps": "steps on stopped trainings",
        }
    )
    figures = [
        plots.learning_curves(curves, task, context.colours, context.figures / f"learning_curves_{task}")
        for task in sorted(curves["task"].unique())
    ]
    return Section(
        "learning_curves",
        "Learning curves of the multi-fidelity runs",
        tables=[Table("learning_curves", shown, raw=table, heading="per method: medians over its runs")],
        caption="A multi-fidelity method trains a configuration to a rung (a number of training steps) and continues "
        "only the promising ones from where they paused; each rung is one trial, costing its new steps. A run's "
        "incumbent is its best training at the highest fidelity it reached, and its best-so-far curves (the anytime "
        "section) count only those. Figures: one panel per run (a row per method, a column per seed), each "
        "training's validation objective against its steps; grey: stopped early.",
        figures=figures,
    )


def final_section(context: Context) -> Section:
    compared = context.who.drop_duplicates("task").set_index("task")["score"]
    on = {task: (score, scores.SCORE_NAMES[score]) for task, score in compared.items()}
    return Section(
        "final",
        "Final performance per run",
        caption="The score each task's rows are compared on (bench/report/scores.py: the retrained validation "
        "objective of each run's incumbent, or its best validation objective where runs were not retrained): box "
        "(quartiles) and each run as a point.",
        figures=[plots.final_distributions(context.runs, context.colours, context.figures / "final", on)],
    )


def across_tasks_section(context: Context) -> Section:
    result = analysis.across_tasks(context.runs, context.who)
    if result is None:
        per_task = context.runs.groupby("task")["label"].apply(set)
        shared = len(set.intersection(*per_task)) if len(per_task) else 0
        return Section(
            "across_tasks",
            "Across tasks",
            caption="The Friedman test and the critical-difference diagram need at least 3 tasks and 3 methods run "
            f"on every one of them; here: {context.runs['task'].nunique()} task(s), {shared} method(s) run on every "
            "task.",
        )
    ranks = result["ranks"].sort_values()
    raw = pd.DataFrame({"method": ranks.index, "mean_rank": ranks.to_numpy()})
    return Section(
        "across_tasks",
        "Across tasks",
        tables=[Table("across_tasks", raw.assign(mean_rank=raw["mean_rank"].map(lambda r: f"{r:.2f}")), raw=raw)],
        caption=f"Friedman test over {result['tasks']} tasks (blocks) on each method's median score per task "
        f"(bench/report/scores.py): chi2 = {result['statistic']:.3g}, p = {result['p']:.2g}. Nemenyi critical "
        f"difference of mean ranks at alpha 0.05: {result['critical_difference']:.2f} (Demsar 2006); methods joined "
        "by a bar in the diagram are not separable.",
        figures=[plots.cd_diagram(result, context.colours, context.figures / "critical_difference")],
    )


def expected_best_section(context: Context) -> Section | None:
    expected = analysis.expected_best(context.runs, context.trials)
    if not len(expected):
        return None
    picks = expected[
        expected["n"].isin([1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000]) | (expected["n"] == expected["N"])
    ]
    shown = picks.assign(
        **{"expected best": picks["expected_best"].map(number), "sd": picks["sd"].map(lambda v: number(v, 3))}
    )[["task", "n", "expected best", "sd", "N"]]
    return Section(
        "expected_best",
        "Expected best of n random-search trials",
        tables=[Table("expected_best", shown, raw=expected)],
        caption="Dodge et al. 2019 (section 3.1): the expected best validation objective of n trials drawn from the N "
        "random-search trials run (every seed pooled), in closed form, and its standard deviation.",
        figures=[plots.expected_best(expected, context.figures / "expected_best")],
    )


def importance_section(context: Context) -> Section | None:
    if not context.importance:
        return None
    from bench.report.importance import MIN_TRIALS, experiment_importance  # Optuna: only when asked for

    try:
        found = experiment_importance(context.runs, context.trials)
    except BenchError:
        return Section(
            "importance",
            "Hyperparameter importance (fANOVA)",
            caption=f"No experiment here has the {MIN_TRIALS} ok trials fANOVA needs.",
        )
    shown = found.assign(
        variance_share=found["variance_share"].map(lambda v: f"{v:.3f}"),
        normalised=found["normalised"].map(lambda v: f"{v:.3f}"),
    )
    return Section(
        "importance",
        "Hyperparameter importance (fANOVA)",
        tables=[Table("importance", shown, raw=found)],
        caption="Share of the variance of the validation objective explained by each hyperparameter's main effect "
        "(Optuna's FanovaImportanceEvaluator on the ok trials of each experiment, seeds pooled, each hyperparameter "
        "on its prior's scale; bench/report/importance.py); normalised: the shares rescaled to sum to 1.",
        figures=[plots.importance(found, context.figures / "importance")],
    )


def paper_section(context: Context) -> Section | None:
    if not context.paper:
        return None
    found = paper_table(context.paper, context.runs, context.trials)
    tables = [Table("paper", found.shown_claims(), raw=found.claims)]
    if found.detail is not None:
        tables.append(Table("paper_detail", found.detail))
    figures = []
    if found.figure is not None and not found.figure.empty:
        figures.append(plots.paper_figure(found.figure, found.figure_title, found.figure_x, context.figures / "paper"))
    return Section(
        "paper",
        found.title if found.lead else f"Beside the paper: {found.title}",
        tables=tables,
        caption=f"Published: {found.source}. {found.note}",
        figures=figures,
        lead=found.lead,
    )


SECTIONS: list[Callable[[Context], Section | None]] = [
    verdict_section,
    comparison_section,
    anytime_section,
    ranks_section,
    versus_best_section,
    crossing_section,
    learning_curves_section,
    final_section,
    across_tasks_section,
    expected_best_section,
    importance_section,
    paper_section,
]
"""The report's sections, in reading order."""


def build(context: Context) -> list[Section]:
    """Every section the data has, drawing its figures into ``context.figures``: in ``SECTIONS``'s
    order, except that a leading section (``Section.lead``) comes right after the verdict."""
    made = [section for make in SECTIONS if (section := make(context)) is not None]
    verdict = [s for s in made if s.name == "verdict"]
    return verdict + [s for s in made if s.lead] + [s for s in made if not s.lead and s.name != "verdict"]
