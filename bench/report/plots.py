"""The report's figures (matplotlib, written as PNG and SVG), drawn from ``bench.report.analysis`` tables.

One colour per method, the same in every figure of a report (``palette``). Each function draws
one figure, saves ``<stem>.png`` and ``<stem>.svg`` and returns the PNG's path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.protocols import BLACK_BOX_KIND, HYPERGRADIENT_KIND, MULTI_FIDELITY_KIND  # noqa: E402

AXIS_LABELS = {"steps": "training steps", "seconds": "wall-clock seconds"}


def palette(methods: Iterable[str]) -> dict[str, tuple]:
    """A fixed colour per method name, in sorted order, from matplotlib's tab10 / tab20."""
    names = sorted(set(methods))
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20").colors
    return {name: colours[i % len(colours)] for i, name in enumerate(names)}


def _save(figure: plt.Figure, stem: Path) -> Path:
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".png"), dpi=110)
    figure.savefig(stem.with_suffix(".svg"))
    plt.close(figure)
    return stem.with_suffix(".png")


def _grid(n: int, rows: int = 1, width: float = 4.2, height: float = 3.2):
    figure, axes = plt.subplots(rows, n, figsize=(max(width * n, 7.0), height * rows), squeeze=False)
    return figure, axes


def anytime(curves: pd.DataFrame, axis: str, colours: dict, stem: Path) -> Path:
    """Best-so-far validation objective against the budget on ``axis``: median line and IQR band
    per method, one panel per task. The y-axis shows the range the methods end up in: it is cut
    above the worst median at a quarter of the budget (the first trials, before every method has
    found anything, would squash the rest), and logarithmic when what is left spans decades."""
    data = curves[curves["axis"] == axis]
    tasks = sorted(data["task"].unique())
    figure, axes = _grid(len(tasks), width=5.5 if len(tasks) > 1 else 9.0)
    for ax, task in zip(axes[0], tasks, strict=True):
        rows_of = data[data["task"] == task]
        for method, rows in rows_of.groupby("method", sort=True):
            rows = rows.sort_values("budget")
            ax.plot(rows["budget"], rows["median"], color=colours[method], label=method)
            ax.fill_between(rows["budget"], rows["q25"], rows["q75"], color=colours[method], alpha=0.2, lw=0)
        ax.set(title=task, xlabel=AXIS_LABELS[axis], ylabel="best validation objective so far")
        low = float(rows_of["q25"].min())
        high = float(rows_of.loc[rows_of["fraction"] >= 0.25, "median"].max())
        if low > 0 and high / low > 100:  # spans decades (branin): log scale
            ax.set_yscale("log")
            ax.set_ylim(low / 1.2, high * 1.2)
        elif high > low:
            ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.suptitle(f"Anytime performance against {AXIS_LABELS[axis]} (median, IQR band)", fontsize=10)
    return _save(figure, stem)


def rank_curves(table: pd.DataFrame, colours: dict, stem: Path) -> Path:
    """Mean rank over seeds against the budget fraction with its bootstrap band; a row of panels
    per axis, one panel per task."""
    tasks = sorted(table["task"].unique())
    axes_names = [a for a in AXIS_LABELS if a in set(table["axis"])]
    figure, axes = _grid(len(tasks), rows=len(axes_names))
    for r, axis in enumerate(axes_names):
        for ax, task in zip(axes[r], tasks, strict=True):
            rows_of = table[(table["task"] == task) & (table["axis"] == axis)]
            for method, rows in rows_of.groupby("method", sort=True):
                rows = rows.sort_values("fraction")
                ax.plot(rows["fraction"], rows["mean_rank"], color=colours[method], label=method)
                ax.fill_between(rows["fraction"], rows["low"], rows["high"], color=colours[method], alpha=0.15, lw=0)
            ax.set(title=f"{task} ({AXIS_LABELS[axis]})", xlabel="fraction of the budget", ylabel="mean rank")
            ax.invert_yaxis()
            ax.legend(fontsize=7)
    figure.suptitle("Mean rank over seeds (1 = best; 95% bootstrap band)", fontsize=10)
    return _save(figure, stem)


def final_distributions(runs: pd.DataFrame, colours: dict, stem: Path, scores: Mapping[str, str]) -> Path:
    """Each run's score (``scores``: task -> the column it is compared on, and its name on the axis):
    a box and the runs as points, per method, one panel per task."""
    tasks = sorted(runs["task"].unique())
    figure, axes = _grid(len(tasks))
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = runs[runs["task"] == task]
        column, name = scores[task]
        methods = sorted(rows["label"].unique())
        values = [rows.loc[rows["label"] == m, column].dropna().to_numpy() for m in methods]
        ax.boxplot(values, tick_labels=methods, showfliers=False)
        for i, (method, points) in enumerate(zip(methods, values, strict=True), start=1):
            ax.scatter([i] * len(points), points, color=colours[method], s=14, zorder=3)
        ax.set(title=task, ylabel=name)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    figure.suptitle("Final performance per run (lower is better)", fontsize=10)
    return _save(figure, stem)


def cd_diagram(result: dict, colours: dict, stem: Path) -> Path:
    """Critical-difference diagram (``scikit_posthocs.critical_difference_diagram``): mean ranks
    over tasks, methods joined by a bar where Nemenyi's test cannot separate them."""
    import scikit_posthocs

    figure, ax = plt.subplots(figsize=(7, 2.6))
    scikit_posthocs.critical_difference_diagram(
        result["ranks"], result["nemenyi"], ax=ax, color_palette={m: colours[m] for m in result["ranks"].index}
    )
    ax.set_title(
        f"Critical difference (Nemenyi, alpha 0.05: CD = {result['critical_difference']:.2f}) over "
        f"{result['tasks']} tasks; Friedman p = {result['p']:.2g}",
        fontsize=9,
    )
    return _save(figure, stem)


def expected_best(table: pd.DataFrame, stem: Path) -> Path:
    """Dodge et al.'s expected best validation objective against the number of random trials,
    with a band of one standard deviation, one panel per task."""
    tasks = sorted(table["task"].unique())
    figure, axes = _grid(len(tasks))
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = table[table["task"] == task]
        ax.plot(rows["n"], rows["expected_best"], color="black")
        ax.fill_between(
            rows["n"], rows["expected_best"] - rows["sd"], rows["expected_best"] + rows["sd"], color="grey", alpha=0.3
        )
        ax.set(title=f"{task} (N = {int(rows['N'].iloc[0])})", xlabel="random-search trials n", xscale="log")
        ax.set(ylabel="expected best validation objective")
    figure.suptitle("Expected best of n random trials (Dodge et al. 2019), +- 1 sd", fontsize=10)
    return _save(figure, stem)


def importance(table: pd.DataFrame, stem: Path) -> Path:
    """fANOVA share of variance per hyperparameter (main effects), one panel per experiment."""
    groups = list(table.groupby(["task", "method"], sort=True))
    columns = min(len(groups), 4)
    figure, axes = _grid(columns, rows=-(-len(groups) // columns))
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax, ((task, method), rows) in zip(axes.flat, groups, strict=False):
        rows = rows.sort_values("variance_share")
        ax.barh(rows["hyperparameter"], rows["variance_share"], color="tab:blue")
        ax.set(title=f"{task}, {method} ({int(rows['trials'].iloc[0])} trials)", xlabel="share of variance")
        ax.set_xlim(0, 1)
    figure.suptitle("Hyperparameter importance (fANOVA main effects)", fontsize=10)
    return _save(figure, stem)


LINE_STYLES = {HYPERGRADIENT_KIND: "-", BLACK_BOX_KIND: "--", MULTI_FIDELITY_KIND: "-."}
"""The crossing figure draws hypergradient methods solid, black-box methods dashed, multi-fidelity
dash-dotted, the untuned row dotted."""


def crossing(table: pd.DataFrame, colours: dict, stem: Path) -> Path:
    """The score (retrained validation objective) and the test metric against the number of tuned
    hyperparameters d (log axis): median line and IQR band per method; a row of two panels per
    task of ``analysis.crossing``."""
    tasks = sorted(table["task"].unique())
    figure, axes = _grid(2, rows=len(tasks), width=5.2, height=3.6)
    for row, task in zip(axes, tasks, strict=True):
        rows_of = table[table["task"] == task]
        for ax, value, ylabel in (
            (row[0], "score", "retrained validation objective"),
            (row[1], "test", f"test {rows_of['test_metric'].iloc[0]}"),
        ):
            for method, rows in rows_of.groupby("method", sort=True):
                rows = rows.sort_values("dimensions")
                style = LINE_STYLES.get(str(rows["kind"].iloc[0]), ":")
                ax.plot(
                    rows["dimensions"],
                    rows[f"{value}_median"],
                    style,
                    marker="o",
                    ms=3,
                    color=colours[method],
                    label=method,
                )
                ax.fill_between(
                    rows["dimensions"],
                    rows[f"{value}_q25"],
                    rows[f"{value}_q75"],
                    color=colours[method],
                    alpha=0.12,
                    lw=0,
                )
            ax.set_xscale("log")
            ticks = sorted(rows_of["dimensions"].unique())
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set(title=task, xlabel="hyperparameters tuned (d)", ylabel=ylabel)
        row[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.suptitle(
        "Against the number of hyperparameters (median, IQR band; "
        "solid: hypergradient, dashed: black-box, dotted: untuned)",
        fontsize=10,
    )
    return _save(figure, stem)


def learning_curves(curves: pd.DataFrame, task: str, colours: dict, stem: Path) -> Path:
    """Every multi-fidelity run of ``task``, one panel each (a row per method, a column per seed):
    each training's validation objective against its training steps (``analysis.learning_curves``),
    the trainings stopped early in grey, those that reached the run's highest fidelity in the
    method's colour, the incumbent circled."""
    data = curves[curves["task"] == task]
    methods, seeds = sorted(data["label"].unique()), sorted(data["seed"].unique())
    ticks = sorted(int(f) for f in data["fidelity"].unique())
    ticks = ticks[:: max(1, -(-len(ticks) // 5))] + ([] if len(ticks) <= 5 else [ticks[-1]])  # at most 6 labels
    figure, axes = plt.subplots(
        len(methods),
        len(seeds),
        figsize=(2.6 * len(seeds) + 1, 2.2 * len(methods) + 0.6),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for row, method in zip(axes, methods, strict=True):
        for ax, seed in zip(row, seeds, strict=True):
            run = data[(data["label"] == method) & (data["seed"] == seed)]
            for _, rungs in run[run["status"] == "ok"].groupby("lineage", sort=True):
                stopped = bool(rungs["stopped"].iloc[0])
                colour, width = ("0.6", 0.6) if stopped else (colours[method], 1.2)
                ax.plot(rungs["fidelity"], rungs["objective"], "-o", color=colour, lw=width, ms=2, alpha=0.8)
            best = run[run["incumbent"]]
            ax.plot(best["fidelity"], best["objective"], "o", mfc="none", mec="k", ms=8)
            ax.set_xscale("log")
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            if ax is row[0]:
                ax.set_ylabel(f"{method}\nvalidation objective", fontsize=8)
            if row is axes[-1]:
                ax.set_xlabel("training steps of the configuration", fontsize=8)
            if row is axes[0]:
                ax.set_title(f"seed {seed}", fontsize=8)
            ax.tick_params(labelsize=7)
    figure.suptitle(
        f"{task}: learning curves of the multi-fidelity runs (grey: stopped early; circled: incumbent)", fontsize=9
    )
    return _save(figure, stem)


def paper_figure(table: pd.DataFrame, title: str, x_label: str, stem: Path) -> Path:
    """A paper table's figure (``bench.report.papers.FIGURE``): one panel per ``panel``, a line per
    series against x on a log axis with its interquartile band, and each level (a row without x)
    drawn across the panel as a dashed line."""
    panels = list(dict.fromkeys(table["panel"]))
    figure, axes = _grid(len(panels), width=5.2, height=3.8)
    colours = palette(table["series"])
    for ax, panel in zip(axes[0], panels, strict=True):
        rows = table[table["panel"] == panel]
        for series, line in rows[rows["x"].notna()].groupby("series", sort=False):
            line = line.sort_values("x")
            ax.plot(line["x"], line["median"], marker="o", ms=3, color=colours[series], label=series)
            ax.fill_between(line["x"], line["q25"], line["q75"], color=colours[series], alpha=0.15, lw=0)
        for _, level in rows[rows["x"].isna()].iterrows():
            ax.axhline(level["median"], ls="--", lw=1, color=colours[level["series"]], label=level["series"])
        ax.set_xscale("log")
        ax.set_xlabel(x_label, fontsize=8)
        ax.set_title(panel, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    figure.suptitle(title, fontsize=10)
    return _save(figure, stem)
