"""The full report (bench/report/sections.py, page.py) over real sweeps: 3 tasks x 3 methods x 3 seeds."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from bench.report.importance import fanova
from bench.space import SearchSpace
from tests.helpers import TINY, run_bench, run_module

SECTIONS = ["verdict", "comparison", "anytime", "ranks", "comparison_vs_best", "final", "across_tasks", "expected_best"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two real sweeps under one folder: branin and hartmann6, and a tiny bikeshare."""
    root = tmp_path_factory.mktemp("report")
    common = ["method=default,random,gp_ei", "seed=0,1,2", "budget.evaluations=5", "incumbent_repeats=1"]
    for name, task in (("synthetic", ["task=branin,hartmann6"]), ("bikeshare", [*TINY, "budget.train_steps=1000"])):
        done = run_bench("-m", *task, *common, f"hydra.sweep.dir={root / name}", cwd=root, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    done = run_module("bench.report", str(root), "--importance", cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, done.stdout


@pytest.mark.slow
def test_every_section_table_and_figure_is_written(results):
    root, stdout = results
    out = root / "report"
    for name in SECTIONS:
        assert f'id="{name}"' in (out / "index.html").read_text()
    for stem in [
        "anytime_steps",
        "anytime_seconds",
        "ranks",
        "final",
        "critical_difference",
        "expected_best",
        "importance",
    ]:
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    tables = ["comparison", "anytime_steps", "anytime_seconds", "ranks_steps", "ranks_seconds", "comparison_vs_best"]
    for name in [*tables, "across_tasks", "expected_best", "importance"]:
        assert len(pd.read_csv(out / f"{name}.csv")) > 0
        assert (out / f"{name}.tex").read_text().startswith("\\begin{tabular}")
    assert "## Across tasks" in stdout and "Friedman test over 3 tasks" in stdout
    assert not list(root.glob(".report.*"))  # no staging folder left behind


@pytest.mark.slow
def test_the_page_is_self_contained(results):
    root, _ = results
    page = (root / "report" / "index.html").read_text()
    assert "http://" not in page and "https://" not in page
    images = page.count('src="data:image/png;base64,')
    assert images == len(list((root / "report").glob("*.png")))


@pytest.mark.slow
def test_the_page_opens_with_the_verdict_per_task_then_the_headline_figure(results):
    root, _ = results
    page = (root / "report" / "index.html").read_text()
    body = page.split("<body>")[1]
    first_table, first_image = body.index("<table"), body.index("<img")
    verdicts = [
        body.index(f'<p class="verdict"><strong>{task}</strong>') for task in ("bikeshare", "branin", "hartmann6")
    ]
    assert max(verdicts) < first_image < first_table
    assert 'class="headline" alt="anytime_steps"' in body[first_image : first_image + 60]
    # compact tables: one row per method, budget fractions as columns
    anytime = body[body.index('<h2 id="anytime"') :]
    anytime = anytime[: anytime.index("</table>")]
    header = re.findall(r"<th>(.*?)</th>", anytime)
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in anytime.split("<tbody>")[1].split("<tr>")[1:]]
    assert header[:5] == ["task", "method", "25%", "50%", "100%"]
    assert len(rows) == 9 and len({(row[0], row[1]) for row in rows}) == 9


def _run_files(root):
    for path in sorted(root.rglob("run.json")):
        if "report" not in path.parts:
            yield json.loads(path.read_text()), pd.read_parquet(path.parent / "trials.parquet")


@pytest.mark.slow
def test_anytime_at_the_full_budget_is_each_runs_best_straight_from_its_files(results):
    root, _ = results
    table = pd.read_csv(root / "report" / "anytime_steps.csv")
    best = {}
    for meta, trials in _run_files(root):
        best.setdefault((meta["task"], meta["method"]), []).append(
            trials.loc[trials["status"] == "ok", "objective"].min()
        )
    for (task, method), values in best.items():
        row = table[(table["task"] == task) & (table["method"] == method) & (table["axis"] == "steps")]
        assert row.loc[row["fraction"] == 1.0, "median"].item() == pytest.approx(float(np.median(values)), rel=1e-5)


@pytest.mark.slow
def test_expected_best_of_one_trial_is_the_mean_of_random_search_trials(results):
    root, _ = results
    table = pd.read_csv(root / "report" / "expected_best.csv")
    for task, rows in table.groupby("task"):
        values = [
            o
            for meta, t in _run_files(root)
            if meta["task"] == task and meta["method"] == "random"
            for o in t["objective"]
        ]
        assert rows.loc[rows["n"] == 1, "expected_best"].item() == pytest.approx(np.mean(values), rel=1e-5)
        assert rows["expected_best"].is_monotonic_decreasing and rows["N"].iloc[0] == len(values)


@pytest.mark.slow
def test_ranks_and_p_of_the_best_are_in_range(results):
    root, _ = results
    ranks = pd.read_csv(root / "report" / "ranks_steps.csv")
    assert ranks["mean_rank"].between(1, 3).all() and (ranks["low"] <= ranks["mean_rank"]).all()
    compared = pd.read_csv(root / "report" / "comparison_vs_best.csv")
    assert (compared.groupby("task")["best"].sum() == 1).all()
    others = compared[~compared["best"]]
    assert others["p_best_better"].between(0, 1).all() and (others["p_low"] <= others["p_best_better"]).all()


@pytest.mark.slow
def test_a_failing_report_leaves_the_previous_one_in_place(results):
    root, _ = results
    before = (root / "report" / "index.html").read_text()
    done = run_module("bench.report", str(root), "--paper", "drmad_mnist", cwd=root)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no mnist_mlp runs" in done.stderr
    assert (root / "report" / "index.html").read_text() == before
    assert not list(root.glob(".report.*"))


def test_fanova_gives_the_only_hyperparameter_that_matters_nearly_all_the_variance():
    space = SearchSpace.from_config(
        {
            "learning_rate": {"type": "real", "low": 1e-4, "high": 1.0, "log": True, "default": 0.01},
            "momentum": {"type": "real", "low": 0.0, "high": 0.99, "log_complement": True, "default": 0.9},
            "cell": {"type": "categorical", "choices": ["gru", "lstm"], "default": "gru"},
        }
    )
    configs = space.sample(200, np.random.default_rng(0))
    # the objective is a bowl in log10(learning rate) alone
    objectives = [(math.log10(c["learning_rate"]) + 2) ** 2 for c in configs]
    table = fanova(space, configs, objectives).set_index("hyperparameter")
    assert table.index[0] == "learning_rate" and table.loc["learning_rate", "variance_share"] > 0.9
    assert table.loc[["momentum", "cell"], "variance_share"].max() < 0.05
    assert table["normalised"].sum() == pytest.approx(1.0)
