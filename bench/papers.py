"""Side-by-side reproductions of published tables: our runs beside the paper's numbers.

Each table reads the runs and trials of a preset's sweep (``bench.store.load_runs``) and prints
the published numbers (with their source, from ../shared/reference/papers.md) next to ours, naming
the dataset that ran. ``python -m bench.report DIR --paper NAME`` prints one; a preset that sets
``paper: NAME`` prints it after its sweep.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from bench.errors import BenchError
from bench.identity import run_labels
from bench.stats import wilcoxon_p

DRMAD_MNIST = {  # Fu et al. 2016, test error (%), from the authors' released result files
    "source": "Fu et al. 2016 (DrMAD), MNIST, authors' released result files (first release)",
    "start": 15.1,
    "drmad": 8.4,
    "exact": 8.43,
    "drmad_iterations": 20,
    "exact_iterations": 30,
}


def drmad_mnist(runs: pd.DataFrame, trials: pd.DataFrame) -> str:
    """Test error at the start, after 20 DrMAD and after 30 exact hyper-iterations."""
    paper = DRMAD_MNIST
    trials = trials[trials["task"] == "mnist_mlp"]
    if trials.empty:
        raise BenchError("--paper drmad_mnist: no mnist_mlp runs here (python -m bench suite=drmad_mnist)")

    def at(method: str, iteration: int) -> tuple[float, int]:
        rows = trials[(trials["method"] == method) & (trials["trial"] == iteration)]
        return float(rows["test_metric"].median()), len(rows)

    start, n_start = at("drmad", 0) if (trials["method"] == "drmad").any() else at("exact_hypergrad", 0)
    drmad, n_drmad = at("drmad", paper["drmad_iterations"])
    exact, n_exact = at("exact_hypergrad", paper["exact_iterations"])
    datasets = sorted(set(trials["metrics.dataset"].dropna())) if "metrics.dataset" in trials else ["?"]
    rows = [
        {
            "": f"published ({paper['source']})",
            "start": f"{paper['start']:.2f}%",
            f"after {paper['drmad_iterations']} DrMAD": f"{paper['drmad']:.2f}%",
            f"after {paper['exact_iterations']} exact": f"{paper['exact']:.2f}%",
        },
        {
            "": f"this run ({', '.join(datasets)}; median over seeds)",
            "start": _percent(start, n_start),
            f"after {paper['drmad_iterations']} DrMAD": _percent(drmad, n_drmad),
            f"after {paper['exact_iterations']} exact": _percent(exact, n_exact),
        },
    ]
    note = (
        "Test error (%) of the weights trained at each hyper-iteration (trial 0: the starting "
        "hyperparameters). The published numbers are MNIST; compare like with like only when this "
        "run's dataset is mnist."
    )
    return pd.DataFrame(rows).to_markdown(index=False) + "\n\n" + note


def _percent(value: float, n: int) -> str:
    return "-" if n == 0 or value != value else f"{value:.2f}% ({n} run{'s' if n != 1 else ''})"


MODELS = {  # task -> the model its rows tune, as the fair-baseline table names it
    "text_linear": "logistic regression on n-grams (Yogatama et al. 2015)",
    "text_rnn": "recurrent network (GRU / LSTM, Greff et al. 2017)",
}


def fair_baseline_text(runs: pd.DataFrame, trials: pd.DataFrame) -> str:
    """Default against tuned, per model: test accuracy of the incumbents retrained with fresh seeds
    (median, interquartile range and standard deviation over seeds), and the gap of each tuned row
    to the model's default row, paired by seed (median of the per-seed differences, paired
    Wilcoxon p, and whether the gap exceeds both rows' seed-to-seed standard deviation)."""
    runs = runs[runs["task"].isin(MODELS)]
    if runs.empty:
        raise BenchError(
            "--paper fair_baseline_text: no text_linear or text_rnn runs here "
            "(python -m bench suite=fair_baseline_text)"
        )
    runs = runs.assign(label=run_labels(runs))
    rows = []
    for task, group in runs.groupby("task", sort=True):
        accuracy = group.pivot_table(index="seed", columns="label", values="final_test_metric", aggfunc="median")
        default = accuracy.get("default")
        for name in sorted(accuracy.columns, key=lambda n: (n != "default", n)):
            values = accuracy[name].dropna()
            rows_of = group[group["label"] == name]
            datasets = trials.loc[trials["run_id"].isin(rows_of["run_id"]), "metrics.dataset"]
            row = {
                "model": MODELS[task],
                "dataset": ", ".join(sorted(set(datasets.dropna()))),
                "tuning": "none (default configuration)" if name == "default" else name,
                "budget": "-" if name == "default" else _budget(rows_of),
                "seeds": len(values),
                "trials: median": f"{rows_of['n_trials'].median():g}",
                "test accuracy: median [IQR]": f"{values.median():.3f} [{values.quantile(0.25):.3f}, "
                f"{values.quantile(0.75):.3f}]",
                "sd": f"{values.std():.3f}",
                "gap to default: median": "-",
                "p (Wilcoxon)": "-",
                "gap > spread": "-",
            }
            if default is not None and name != "default":
                both = values.index.intersection(default.dropna().index)
                gap = values[both] - default[both]
                spread = max(values.std(), default.dropna().std())
                row["gap to default: median"] = f"{gap.median():+.3f}"
                row["p (Wilcoxon)"] = f"{wilcoxon_p(values[both].to_numpy(), default[both].to_numpy()):.2g}"
                row["gap > spread"] = "yes" if abs(gap.median()) > spread else "no"
            rows.append(row)
    note = (
        "Test accuracy of each run's incumbent (chosen on validation error) retrained with fresh seeds; "
        "spread over seeds as interquartile range and standard deviation (sd). Gap: tuned minus default, "
        "paired by seed (median of the differences); p: two-sided paired Wilcoxon signed-rank test over "
        "those seeds (the smallest possible with n seeds is 2 / 2^n); gap > spread: the median gap exceeds "
        "the larger of the two rows' sd. Published numbers for these corpora and budgets: not known "
        "(papers.md gives MR's, for orientation only: NBSVM-bigram 79.4, CNN-rand 76.1)."
    )
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n" + note


def _budget(rows: pd.DataFrame) -> str:
    parts = []
    for key, unit in (("budget_seconds", "s"), ("budget_train_steps", "steps"), ("budget_evaluations", "trials")):
        values = rows[key].dropna().unique()
        if len(values):
            parts.append(f"{values[0]:g} {unit}")
    return ", ".join(parts) or "-"


TABLES: dict[str, Callable[[pd.DataFrame, pd.DataFrame], str]] = {
    "drmad_mnist": drmad_mnist,
    "fair_baseline_text": fair_baseline_text,
}


def paper_table(name: str, runs: pd.DataFrame, trials: pd.DataFrame) -> str:
    if name not in TABLES:
        raise BenchError(f"--paper {name!r}: allowed: {', '.join(TABLES)}")
    return TABLES[name](runs, trials)
