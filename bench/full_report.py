"""The full report of a results directory: every table and figure, as Markdown, CSV, LaTeX, PNG,
SVG and one self-contained HTML page.

    python -m bench.report DIR [--importance] [--paper NAME] [--target Y] [--output FOLDER]

Sections, in order: the comparison table (``bench.report``); anytime performance at 25%, 50% and
100% of the budget in steps and in seconds, with plots; mean rank over the budget; P(best >
method), time to target and the time spent outside evaluation; across tasks, the Friedman test and
a critical-difference diagram (three or more tasks); final-performance distributions; Dodge et
al.'s expected best of n random trials; fANOVA importance (``--importance``); a paper's table
(``--paper``). The analyses are ``bench.analysis``; the figures ``bench.plots``.

Files go to ``DIR/report/`` (or ``--output``): ``index.html`` (tables and figures inlined: no
network resource, opens from the file system), ``report.md``, one ``<name>.csv`` and ``<name>.tex``
per table, ``<name>.png`` and ``<name>.svg`` per figure. The folder is built beside its final
place and renamed into it, so a reader never sees half a report and a failed report leaves the
previous one in place.
"""

from __future__ import annotations

import base64
import html
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import analysis, plots
from bench.errors import BenchError
from bench.files import fsync_tree
from bench.papers import paper_table
from bench.report import CAPTION, number, render, summarise


@dataclass
class Section:
    """One titled part of the report: a table (raw numbers for CSV, formatted for reading), a
    caption, figures (PNG paths), or preformatted Markdown (a paper's table)."""

    name: str
    title: str
    caption: str = ""
    raw: pd.DataFrame | None = None
    shown: pd.DataFrame | None = None
    markdown_text: str | None = None
    figures: list[Path] = field(default_factory=list)

    def markdown(self) -> str:
        parts = [f"## {self.title}"]
        if self.markdown_text is not None:
            parts.append(self.markdown_text)
        elif self.shown is not None:
            parts.append(self.shown.to_markdown(index=False, disable_numparse=True))
        if self.caption:
            parts.append(self.caption)
        parts += [f"![{figure.stem}]({figure.name})" for figure in self.figures]
        return "\n\n".join(parts)


def _shared_methods(runs: pd.DataFrame) -> int:
    per_task = runs.groupby("task")["label"].apply(set)
    return len(set.intersection(*per_task)) if len(per_task) else 0


def sections(
    runs: pd.DataFrame,
    trials: pd.DataFrame,
    root: Path,
    figures: Path,
    importance: bool = False,
    paper: str | None = None,
    target: float | None = None,
) -> list[Section]:
    """Compute every section, drawing its figures into ``figures``."""
    runs = analysis.labelled(runs)
    colours = plots.palette(runs["label"])
    summary = summarise(runs)
    out = [
        Section(
            "comparison",
            "Comparison",
            f"{len(runs)} runs under {root}. {CAPTION}",
            raw=summary,
            markdown_text=render(summary),
        )
    ]

    best_grids = analysis.grids(runs, trials)
    table, curves = analysis.anytime(runs, trials, best_grids)
    shown = table.assign(
        fraction=table["fraction"].map(lambda f: f"{f:.0%}"),
        budget=table["budget"].map(number),
        **{
            "best so far: median [IQR]": [
                f"{number(m)} [{number(a)}, {number(b)}]" for m, a, b in table[["median", "q25", "q75"]].to_numpy()
            ]
        },
        regret=table["regret"].map(lambda r: number(r, 3)),
    )[["task", "method", "axis", "fraction", "budget", "best so far: median [IQR]", "regret", "runs"]]
    out.append(
        Section(
            "anytime",
            "Anytime performance",
            "Best validation objective found so far at 25%, 50% and 100% of the budget, in training steps and "
            "in wall-clock seconds (100%: the most any run of the task spent), median and interquartile range "
            "over runs; regret: median normalised regret (y - min) / (max - min) over every trial of the task "
            "(0: the best any run found, 1: the worst). A run with no finished trial yet counts as the worst.",
            raw=table,
            shown=shown,
            figures=[
                plots.anytime(curves, axis, colours, figures / f"anytime_{axis}")
                for axis in ("steps", "seconds")
                if (curves["axis"] == axis).any()
            ],
        )
    )

    rank_table = analysis.ranks(runs, trials, best_grids)
    if len(rank_table):
        at = rank_table[rank_table["fraction"].round(6).isin(analysis.FRACTIONS)]
        shown = at.assign(
            fraction=at["fraction"].map(lambda f: f"{f:.0%}"),
            **{
                "mean rank [95% CI]": [
                    f"{m:.2f} [{a:.2f}, {b:.2f}]" for m, a, b in at[["mean_rank", "low", "high"]].to_numpy()
                ]
            },
        )[["task", "axis", "fraction", "method", "mean rank [95% CI]", "seeds"]]
        out.append(
            Section(
                "ranks",
                "Mean rank over the budget",
                "Rank of each method's best-so-far validation objective among the methods run with the same seed "
                "(1 = best, ties averaged), averaged over the seeds every method ran; 95% percentile bootstrap "
                "interval over seeds (scipy.stats.bootstrap, 1,000 resamples).",
                raw=at,
                shown=shown,
                figures=[plots.rank_curves(rank_table, colours, figures / "ranks")],
            )
        )

    compared = analysis.comparison(runs, trials, target)
    shown = pd.DataFrame(
        {
            "task": compared["task"],
            "method": compared["method"],
            "P(best > method) [95% CI]": [
                "-" if not math.isfinite(p) else f"{p:.2f} [{a:.2f}, {b:.2f}]"
                for p, a, b in compared[["p_best_better", "p_low", "p_high"]].to_numpy()
            ],
            "verdict": compared["verdict"],
            "target": compared["target"].map(number),
            "reached": compared["reached"].map(lambda r: f"{r:.0%}"),
            "steps to target: median": compared["steps_to_target"].map(
                lambda v: "not reached" if v == math.inf else number(v)
            ),
            "seconds to target: median": compared["seconds_to_target"].map(
                lambda v: "not reached" if v == math.inf else number(v, 3)
            ),
            "time outside evaluation": compared["outside_evaluation"].map(
                lambda v: "-" if not math.isfinite(v) else f"{v:.1%}"
            ),
            "test: median": [f"{number(v)} ({m})" for v, m in compared[["test_median", "test_metric"]].to_numpy()],
        }
    )
    out.append(
        Section(
            "comparison_vs_best",
            "Who beats whom, how fast, at what cost",
            "P(best > method): the probability that the best row (lowest median retrained validation objective) "
            "scores better than the method on a random seed, ties counting half, with a 95% percentile bootstrap "
            "interval over seeds; verdict after Bouthillier et al. 2021: 'better' when the interval lies above "
            "0.5 and the estimate reaches 0.75, else 'not separable' (or 'better, below 0.75'). Target: the "
            "validation objective to reach (by default the median over the task's runs of their best); with fewer "
            "than 5 paired seeds no verdict is given. The best row is chosen on the same seeds it is compared on, "
            "and the intervals are not corrected for the several comparisons: read them as descriptive. Reached: "
            "share of runs that got there; steps and seconds to target: median over runs (a run that never got "
            "there counts as infinitely slow). Time outside evaluation: share of a run's wall time not spent "
            "training and scoring (the method's ask and tell, the runner). Test: the test metric of the "
            "incumbent chosen on validation and retrained with fresh seeds, median over runs.",
            raw=compared,
            shown=shown,
        )
    )

    out.append(
        Section(
            "final",
            "Final performance per run",
            "Retrained validation objective of each run's incumbent: box (quartiles) and each run as a point.",
            figures=[plots.final_distributions(runs, colours, figures / "final")],
        )
    )

    result = analysis.across_tasks(runs)
    if result is None:
        out.append(
            Section(
                "across_tasks",
                "Across tasks",
                "The Friedman test and the critical-difference diagram need at least 3 tasks and 3 methods run "
                f"on every one of them; here: {runs['task'].nunique()} task(s), "
                f"{_shared_methods(runs)} method(s) run on every task.",
            )
        )
    else:
        ranks = result["ranks"].sort_values()
        raw = pd.DataFrame({"method": ranks.index, "mean_rank": ranks.to_numpy()})
        out.append(
            Section(
                "across_tasks",
                "Across tasks",
                f"Friedman test over {result['tasks']} tasks (blocks) on each method's median retrained validation "
                f"objective: chi2 = {result['statistic']:.3g}, p = {result['p']:.2g}. Nemenyi critical difference "
                f"of mean ranks at alpha 0.05: {result['critical_difference']:.2f} (Demsar 2006); methods joined by "
                "a bar in the diagram are not separable.",
                raw=raw,
                shown=raw.assign(mean_rank=raw["mean_rank"].map(lambda r: f"{r:.2f}")),
                figures=[plots.cd_diagram(result, colours, figures / "critical_difference")],
            )
        )

    expected = analysis.expected_best(runs, trials)
    if len(expected):
        picks = expected[
            expected["n"].isin([1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000]) | (expected["n"] == expected["N"])
        ]
        out.append(
            Section(
                "expected_best",
                "Expected best of n random-search trials",
                "Dodge et al. 2019 (section 3.1): the expected best validation objective of n trials drawn from the "
                "N random-search trials run (every seed pooled), in closed form, and its standard deviation.",
                raw=expected,
                shown=picks.assign(
                    **{
                        "expected best": picks["expected_best"].map(number),
                        "sd": picks["sd"].map(lambda v: number(v, 3)),
                    }
                )[["task", "n", "expected best", "sd", "N"]],
                figures=[plots.expected_best(expected, figures / "expected_best")],
            )
        )

    if importance:
        from bench.importance import MIN_TRIALS, experiment_importance

        try:
            table = experiment_importance(runs, trials)
        except BenchError:
            table = None
            out.append(
                Section(
                    "importance",
                    "Hyperparameter importance (fANOVA)",
                    f"No experiment here has the {MIN_TRIALS} ok trials fANOVA needs.",
                )
            )
    if importance and table is not None:
        out.append(
            Section(
                "importance",
                "Hyperparameter importance (fANOVA)",
                "Share of the variance of the validation objective explained by each hyperparameter's main effect "
                "(Optuna's FanovaImportanceEvaluator on the ok trials of each experiment, seeds pooled, each "
                "hyperparameter on its prior's scale; bench/importance.py); normalised: the shares rescaled to "
                "sum to 1.",
                raw=table,
                shown=table.assign(
                    variance_share=table["variance_share"].map(lambda v: f"{v:.3f}"),
                    normalised=table["normalised"].map(lambda v: f"{v:.3f}"),
                ),
                figures=[plots.importance(table, figures / "importance")],
            )
        )

    if paper:
        out.append(Section("paper", f"Beside the paper ({paper})", markdown_text=paper_table(paper, runs, trials)))
    return out


def write_report(
    runs: pd.DataFrame,
    trials: pd.DataFrame,
    root: Path,
    output: Path,
    importance: bool = False,
    paper: str | None = None,
    target: float | None = None,
) -> list[Section]:
    """Build every section into a fresh folder beside ``output`` and rename it into place."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        built = sections(runs, trials, root, staging, importance, paper, target)
        for section in built:
            if section.raw is not None:
                section.raw.to_csv(staging / f"{section.name}.csv", index=False, float_format="%.6g")
                shown = section.shown if section.shown is not None else section.raw
                (staging / f"{section.name}.tex").write_text(shown.to_latex(index=False, escape=True), encoding="utf-8")
        (staging / "report.md").write_text("\n\n".join(s.markdown() for s in built) + "\n", encoding="utf-8")
        (staging / "index.html").write_text(page(built, root), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; a report is for readers
        fsync_tree(staging)  # on disk before it is renamed into place
        old = output.with_name(f".{output.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if output.exists():
            output.rename(old)  # the previous report stays whole until the new one is in place
        staging.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [_moved(section, staging, output) for section in built]


def _moved(section: Section, staging: Path, output: Path) -> Section:
    section.figures = [output / figure.relative_to(staging) for figure in section.figures]
    return section


STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #f0f0f0; }
p.caption { font-size: 0.85em; color: #444; max-width: 1100px; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
nav a { margin-right: 1em; }
"""


def page(built: list[Section], root: Path) -> str:
    """One self-contained HTML page: tables as HTML, figures inlined as base64 PNG."""
    body = [f"<h1>Benchmark report: {html.escape(str(root))}</h1>"]
    body.append("<nav>" + "".join(f'<a href="#{s.name}">{html.escape(s.title)}</a>' for s in built) + "</nav>")
    for section in built:
        body.append(f'<h2 id="{section.name}">{html.escape(section.title)}</h2>')
        if section.shown is not None:
            body.append(section.shown.to_html(index=False, border=0, escape=True))
        elif section.markdown_text is not None:
            body.append(_markdown_table(section.markdown_text))
        if section.caption:
            body.append(f'<p class="caption">{html.escape(section.caption)}</p>')
        for figure in section.figures:
            data = base64.b64encode(figure.read_bytes()).decode("ascii")
            body.append(f'<img alt="{html.escape(figure.stem)}" src="data:image/png;base64,{data}">')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Benchmark report</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _markdown_table(text: str) -> str:
    """A Markdown pipe table (and the paragraphs after it) as HTML, without a Markdown library."""
    lines = text.strip().splitlines()
    rows = [line for line in lines if line.startswith("|")]
    rest = [line for line in lines if line and not line.startswith("|")]
    cells = [[html.escape(c.strip()) for c in row.strip("|").split("|")] for row in rows if not set(row) <= set("|:- ")]
    out = []
    if cells:
        out.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in cells[0]) + "</tr></thead><tbody>")
        out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells[1:]]
        out.append("</tbody></table>")
    out += [f'<p class="caption">{html.escape(line)}</p>' for line in rest]
    return "\n".join(out)
