"""The comparison table (bench/report/table.py) and the sweep's end (bench/report/callback.py) over
real sweeps: every number recomputed from the run files."""

import json
from io import StringIO

import numpy as np
import pandas as pd
import pytest

from tests.helpers import TINY, run_bench, run_module


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real sweep: 2 methods x 2 seeds, through Hydra's multirun, naming a paper table it cannot fill
    (a part of a preset's sweep, as a held-out sweep of one method is)."""
    root = tmp_path_factory.mktemp("sweep")
    done = run_bench(
        "-m",
        *TINY,
        "method=default,random",
        "seed=0,1",
        "budget.evaluations=3",
        "budget.train_steps=1000",
        "incumbent_repeats=2",
        "paper=bo_vs_hypergrad",
        f"hydra.sweep.dir={root / 'sweep'}",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "sweep", done


def expected_rows(directory):
    """The report's numbers recomputed straight from each run's files."""
    rows = {}
    for path in sorted(directory.glob("*/run.json")):
        meta = json.loads(path.read_text())
        trials = pd.read_parquet(path.parent / "trials.parquet")
        rows.setdefault(meta["method"], []).append(
            (
                trials.loc[trials["status"] == "ok", "objective"].min(),
                meta["final"]["test_metric"],
                np.mean([e["metrics"]["rubric"] for e in meta["final"]["evaluations"]]),
            )
        )
    return rows


def test_the_report_aggregates_every_run_of_a_sweep(sweep):
    directory, _ = sweep
    done = run_module("bench.report", str(directory), "--table-only", "--format", "csv", cwd=directory)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(StringIO(done.stdout)).set_index("method")
    assert table["runs"].to_dict() == {"default": 2, "random": 2}
    assert table.loc["random", "trials"] == 3 and table.loc["default", "trials"] == 1
    for method, rows in expected_rows(directory).items():
        best, test, rubric = map(np.array, zip(*rows, strict=True))
        assert table.loc[method, "best_median"] == pytest.approx(np.median(best), rel=1e-5)
        assert table.loc[method, "best_q25"] == pytest.approx(np.quantile(best, 0.25), rel=1e-5)
        assert table.loc[method, "test_median"] == pytest.approx(np.median(test), rel=1e-5)
        assert table.loc[method, "rubric_retrained"] == pytest.approx(rubric.mean())


def test_steps_are_shown_with_their_budget_share_and_a_short_run_is_marked(sweep):
    """random stops at 3 evaluations, far below the 1,000-step budget: marked. default stops because
    it has nothing left to ask: not marked."""
    directory, _ = sweep
    done = run_module("bench.report", str(directory), "--table-only", "--format", "csv", cwd=directory)
    table = pd.read_csv(StringIO(done.stdout)).set_index("method")
    steps = {}
    for path in directory.glob("*/trials.parquet"):
        trials = pd.read_parquet(path)
        steps.setdefault(trials["method"].iloc[0], []).append(trials["cost_steps"].sum())
    for method, spent in steps.items():
        assert table.loc[method, "steps_median"] == np.median(spent)
        assert table.loc[method, "steps_budget_share"] == pytest.approx(np.median(spent) / 1000)
    assert table["short_of_budget"].to_dict() == {"default": False, "random": True}
    markdown = run_module("bench.report", str(directory), "--table-only", cwd=directory).stdout
    row = next(line for line in markdown.splitlines() if line.startswith("| bikeshare | random"))
    assert f"{np.median(steps['random']):,.0f} ({np.median(steps['random']) / 1000:.0%})!" in row


@pytest.mark.slow
def test_a_two_option_sweep_and_two_budgets_are_four_rows(tmp_path):
    """Runs that differ in one option or in their budget are never pooled; their labels say how."""
    for arguments in (
        ["task=branin", "method=gp_ts", "method.greedy=0,1", "budget.evaluations=5", "method.n_initial=2"],
        ["task=branin", "method=random", "budget.evaluations=3,4"],
    ):
        done = run_bench(
            "-m", *arguments, "seed=0,1", f"hydra.sweep.dir={tmp_path / arguments[1].split('=')[1]}", cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-3000:]
    done = run_module("bench.report", str(tmp_path), "--table-only", "--format", "csv", cwd=tmp_path)
    table = pd.read_csv(StringIO(done.stdout))
    assert sorted(table["method"]) == [
        "gp_ts[greedy=0]",
        "gp_ts[greedy=1]",
        "random[budget.evaluations=3]",
        "random[budget.evaluations=4]",
    ]
    assert table["runs"].tolist() == [2, 2, 2, 2]
    trials = table.set_index("method")["trials"]
    assert trials["random[budget.evaluations=3]"] == 3 and trials["random[budget.evaluations=4]"] == 4


def test_the_sweep_prints_its_verdict_and_table_and_saves_them(sweep):
    directory, done = sweep
    assert "| bikeshare | random" in done.stdout and "| bikeshare | default" in done.stdout
    assert f"python -m bench.report {directory}" in done.stdout
    saved = (directory / "report.md").read_text()
    assert saved.startswith("**bikeshare** (2 seeds, on the retrained validation objective")
    assert saved in done.stdout
    # the legend names the task's own pass criterion, declared by the task
    assert "rubric (bikeshare: Udacity rubric: train MSE < 0.09 and validation MSE < 0.18)" in saved
    # the paper table this sweep cannot fill is one line, after the table it does not prevent
    assert "\nNo paper table for this sweep: --paper bo_vs_hypergrad: needs drmad and exact_hypergrad" in saved


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_formats(sweep, fmt):
    directory, _ = sweep
    done = run_module("bench.report", str(directory), "--table-only", "--format", fmt, cwd=directory)
    assert done.returncode == 0
    assert ("\\begin{tabular}" in done.stdout) == (fmt == "latex")
    assert "random" in done.stdout and "default" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "xml"], "error: --format 'xml': allowed formats are markdown, csv, latex"),
        (["/no/such/dir"], "error: /no/such/dir: no such directory"),
        (
            ["--paper", "nope"],
            "error: --paper 'nope': allowed: bikeshare_rubric, bo_vs_hypergrad, drmad_mnist, "
            "fair_baseline_text, hyper_cleaning, lstm_odyssey, many_hyperparameters, multi_fidelity",
        ),
    ],
)
def test_report_errors_are_one_line(sweep, arguments, message):
    directory, _ = sweep
    arguments = [str(directory), *arguments] if arguments[0].startswith("--") else arguments
    done = run_module("bench.report", *arguments, cwd=directory)
    assert done.returncode == 2 and done.stderr.strip() == message


def test_the_rubric_table_gives_each_methods_pass_rate_from_the_run_files(sweep):
    from bench.report.load import load_runs
    from bench.report.papers import paper_table

    directory, _ = sweep
    found = paper_table("bikeshare_rubric", *load_runs(directory))
    rates = found.detail.set_index("method").iloc[:, -1]
    holds = found.claims.set_index("claim")["holds"]
    for method, values in expected_rows(directory).items():
        rate = np.mean([rubric for _, _, rubric in values])
        assert rates[method] == f"{rate:.0%}"
    assert holds["default fails the rubric"] == (np.mean([r for _, _, r in expected_rows(directory)["default"]]) == 0)
    done = run_module("bench.report", str(directory), "--table-only", "--paper", "bikeshare_rubric", cwd=directory)
    assert done.returncode == 0 and "| default fails the rubric" in done.stdout


def test_without_retraining_the_verdict_is_on_the_best_validation_and_says_so(tmp_path):
    """incumbent_repeats=0: no run has a retrained score, so wins, tests and the best row are read from
    the best validation objective, and the table and verdict name it (a missing statistic is no verdict)."""
    done = run_bench(
        "-m",
        "task=branin",
        "method=random,default",
        "seed=0,1,2",
        "budget.evaluations=4",
        "incumbent_repeats=0",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    csv = run_module("bench.report", str(tmp_path), "--table-only", "--format", "csv", cwd=tmp_path)
    table = pd.read_csv(StringIO(csv.stdout)).set_index("method")
    assert table["retrained_median"].isna().all() and set(table["score"]) == {"best_objective"}
    best = {}
    for path in (tmp_path / "sweep").glob("*/trials.parquet"):
        trials = pd.read_parquet(path)
        best.setdefault(trials["method"].iloc[0], {})[int(trials["seed"].iloc[0])] = trials["objective"].min()
    medians = {method: np.median(list(values.values())) for method, values in best.items()}
    winner = min(medians, key=medians.get)
    assert table.loc[winner, "best"] and not table.drop(index=winner)["best"].any()
    wins = sum(best[winner][s] <= min(v[s] for v in best.values()) for s in range(3))
    assert table.loc[winner, "wins"] == wins
    saved = (tmp_path / "sweep" / "report.md").read_text()
    assert f"**branin** (3 seeds, on the best validation objective; lower is better): best **{winner}**" in saved
    assert "rubric" not in saved  # branin declares no pass criterion: the legend does not mention one
