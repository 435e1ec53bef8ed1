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


TABLES: dict[str, Callable[[pd.DataFrame, pd.DataFrame], str]] = {"drmad_mnist": drmad_mnist}


def paper_table(name: str, runs: pd.DataFrame, trials: pd.DataFrame) -> str:
    if name not in TABLES:
        raise BenchError(f"--paper {name!r}: allowed: {', '.join(TABLES)}")
    return TABLES[name](runs, trials)
