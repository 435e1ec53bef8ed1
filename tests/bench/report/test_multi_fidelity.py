"""The report of multi-fidelity runs: each run's trainings rebuilt from the rungs (``continues``), the
stopping table, best-so-far and time to target counting only the highest fidelity reached, the
learning-curve figures, and ``--paper multi_fidelity``'s steps to gp_ei's result. The numbers are
checked against the trials.jsonl and run.json files read directly."""

import json
import math
from io import StringIO

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.records import RUN_FILE, TRIALS_JSONL
from bench.report import analysis
from bench.report.load import find_runs, load_runs
from papers.multi_fidelity import time_to_target
from tests.helpers import run_bench, run_module

SEEDS = (0, 1, 2)
FULL = 81  # learning_curves' full training


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real sweep on the synthetic learning curves: two multi-fidelity methods and two
    full-training ones, 3 seeds, a budget of 10 full trainings."""
    root = tmp_path_factory.mktemp("multi_fidelity")
    done = run_bench(
        "-m",
        "task=learning_curves",
        "method=asha,top_k_early,random,gp_ei",
        f"seed={','.join(map(str, SEEDS))}",
        "budget.evaluations=null",
        f"budget.train_steps={10 * FULL}",
        "incumbent_repeats=1",
        "progress=false",
        f"hydra.sweep.dir={root / 'sweep'}",
        cwd=root,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "sweep"


def _files(root):
    """run_id -> (run.json, its trial rows), read directly."""
    out = {}
    for folder in find_runs(root):
        meta = json.loads((folder / RUN_FILE).read_text())
        rows = [json.loads(line) for line in (folder / TRIALS_JSONL).read_text().splitlines()]
        out[meta["run_id"]] = (meta, rows)
    return out


@pytest.mark.slow
def test_learning_curves_follow_each_training_through_its_rungs(sweep):
    runs, trials = load_runs(sweep)
    curves = analysis.learning_curves(runs, trials)
    files = _files(sweep)
    assert set(curves["label"]) == {"asha", "top_k_early"}  # full-training runs have no rungs
    for run_id, run in curves.groupby("run_id"):
        meta, rows = files[run_id]
        assert meta["method_kind"] == "multi-fidelity"
        assert len(run) == len(rows)
        top = max(r["fidelity"] for r in rows if r["status"] == "ok")
        for row in rows:  # walk back to where the training started
            first = row
            while first["continues"] is not None:
                first = rows[first["continues"]]
                assert first["config"] == row["config"] and first["fidelity"] < row["fidelity"]
            mine = run[run["trial"] == row["trial"]].iloc[0]
            assert mine["lineage"] == first["trial"]
            reached = max(
                r["fidelity"] for r in rows if r["trial"] >= first["trial"] and _root(rows, r) == first["trial"]
            )
            assert bool(mine["stopped"]) == (reached < top)
        best = min((r for r in rows if r["status"] == "ok" and r["fidelity"] == top), key=lambda r: r["objective"])
        assert run.loc[run["incumbent"], "trial"].tolist() == [best["trial"]] == [meta["incumbent"]["trial"]]
    table = analysis.stopping(curves, trials)
    for (task, method), rows_of in curves.groupby(["task", "label"]):
        row = table[(table["task"] == task) & (table["method"] == method)].iloc[0]
        started = [len({_root(files[r][1], x) for x in files[r][1]}) for r in rows_of["run_id"].unique()]
        assert row["started"] == np.median(started) and row["runs"] == len(started)


def _root(rows, row):
    while row["continues"] is not None:
        row = rows[row["continues"]]
    return row["trial"]


@pytest.mark.slow
def test_best_so_far_and_time_to_target_count_only_the_highest_fidelity(sweep):
    runs, trials = load_runs(sweep)
    files = _files(sweep)
    for run_id, (meta, _) in files.items():
        assert runs.set_index("run_id").loc[run_id, "best_objective"] == meta["incumbent"]["objective"]
    gp_ei = [meta["final"]["objective"] for meta, _ in files.values() if meta["method"] == "gp_ei"]
    target = float(np.median(gp_ei))
    found = time_to_target(runs, trials).set_index("method")
    for method in ("asha", "top_k_early", "random", "gp_ei"):
        steps = []
        for meta, rows in files.values():
            if meta["method"] != method:
                continue
            # the first ok trial at the run's highest fidelity (its full trainings) at or below the target
            top = max((r["fidelity"] or math.inf) for r in rows if r["status"] == "ok")
            reach = next(
                (
                    r["cumulative_steps"]
                    for r in rows
                    if r["status"] == "ok" and (r["fidelity"] or math.inf) == top and r["objective"] <= target
                ),
                math.inf,
            )
            for k, row in enumerate(rows):  # and the recorded best so far: the best at the highest fidelity so far
                seen = [r for r in rows[: k + 1] if r["status"] == "ok"]
                level = max((r["fidelity"] or math.inf) for r in seen) if seen else None
                best = min((r["objective"] for r in seen if (r["fidelity"] or math.inf) == level), default=math.inf)
                assert best == (row["best_so_far"] if row["best_so_far"] is not None else math.inf)
            steps.append(reach)
        assert found.loc[method, "target"] == target
        assert found.loc[method, "reached"] == sum(math.isfinite(s) for s in steps)
        assert found.loc[method, "steps"] == float(np.median(steps)) / FULL


@pytest.mark.slow
def test_the_report_draws_the_learning_curves_and_the_paper_table(sweep):
    done = run_module("bench.report", str(sweep), "--paper", "multi_fidelity", cwd=sweep)
    assert done.returncode == 0, done.stderr
    report = (sweep / "report" / "report.md").read_text()
    assert "## Learning curves of the multi-fidelity runs" in report
    assert (sweep / "report" / "learning_curves_learning_curves.png").stat().st_size > 10_000
    assert "Multi-fidelity methods against full-training BO" in done.stdout
    assert "ASHA reaches a near state-of-the-art result in under two full trainings (learning_curves)" in done.stdout
    assert "Training every configuration one epoch and continuing the top k" in done.stdout


@pytest.mark.slow
def test_a_multi_fidelity_run_stopped_before_a_rung_past_its_budget_is_not_short(sweep):
    files = _files(sweep)
    budget = 10 * FULL
    for meta, rows in files.values():
        assert rows[-1]["cumulative_steps"] <= budget or meta["method_kind"] != "multi-fidelity"
    done = run_module("bench.report", str(sweep), "--table-only", "--format", "csv", cwd=sweep)
    table = pd.read_csv(StringIO(done.stdout)).set_index("method")
    assert not table.loc[["asha", "top_k_early"], "short_of_budget"].any()


@pytest.mark.slow
def test_the_paper_table_refuses_what_it_cannot_measure(sweep):
    runs, trials = load_runs(sweep)
    unretrained = runs.assign(final_objective=np.where(runs["method"] == "gp_ei", np.nan, runs["final_objective"]))
    with pytest.raises(BenchError, match="the gp_ei runs have no retrained validation objective"):
        time_to_target(unretrained, trials)
    relabelled = runs.assign(label=np.where((runs["method"] == "asha") & (runs["seed"] == 0), "asha[x]", runs["label"]))
    with pytest.raises(BenchError, match="asha ran with several settings here"):
        time_to_target(relabelled, trials)
