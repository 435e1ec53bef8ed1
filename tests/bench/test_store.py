import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.budget import Budget
from bench.build import build
from bench.errors import BenchError
from bench.records import RUN_FILE, TRIALS_JSONL, read_trials_jsonl
from bench.report.load import load_runs, read_trials
from bench.runner import run
from bench.store import RunStore
from methods.random_search import RandomSearch
from tests.helpers import ROOT, TINY, bench_config

ROW_COLUMNS = {
    "run_id",
    "task",
    "method",
    "seed",
    "trial",
    "config.iterations",
    "config.learning_rate",
    "config.hidden_nodes",
    "objective",
    "test_metric",
    "status",
    "cost_seconds",
    "cost_steps",
    "cumulative_seconds",
    "cumulative_steps",
    "best_so_far",
}


def stored_run(directory, evaluations=4, seed=0):
    experiment = build(bench_config(*TINY))
    meta = {"run_id": f"r{seed}", "task": "bikeshare", "method": "random", "seed": seed, "test_metric": "mse"}
    store = RunStore.create(directory, meta, "mse")
    method = RandomSearch(experiment.task.space, seed)
    result = run(experiment.task, method, Budget(evaluations=evaluations), seed, on_trial=store.append)
    return store.finish(result, "completed"), result


def test_a_run_writes_one_row_per_trial(tmp_path):
    summary, result = stored_run(tmp_path, evaluations=4)
    jsonl = (tmp_path / TRIALS_JSONL).read_text().splitlines()
    parquet = pd.read_parquet(tmp_path / "trials.parquet")
    assert len(jsonl) == len(parquet) == len(result.trials) == summary["n_trials"] == 4
    assert set(parquet.columns) >= ROW_COLUMNS
    assert parquet["trial"].tolist() == [0, 1, 2, 3]
    assert parquet["objective"].tolist() == [t.evaluation.objective for t in result.trials]
    assert parquet["test_metric"].tolist() == [t.evaluation.test["mse"] for t in result.trials]
    assert summary["status"] == "completed"
    assert summary["incumbent"]["objective"] == parquet["objective"].min()


def test_a_directory_holding_a_run_is_refused(tmp_path):
    stored_run(tmp_path, evaluations=1)
    with pytest.raises(BenchError, match="already holds a run"):
        RunStore.create(tmp_path, {"run_id": "x", "task": "t", "method": "m", "seed": 0}, "mse")


def test_a_truncated_last_line_is_skipped_but_a_corrupt_middle_line_is_an_error(tmp_path):
    stored_run(tmp_path, evaluations=3)
    lines = (tmp_path / TRIALS_JSONL).read_text().splitlines()
    (tmp_path / TRIALS_JSONL).write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    assert read_trials_jsonl(tmp_path / TRIALS_JSONL)["trial"].tolist() == [0, 1]
    (tmp_path / TRIALS_JSONL).write_text(lines[0][:40] + "\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(BenchError, match="line 1 is not a trial record; the file is damaged"):
        read_trials_jsonl(tmp_path / TRIALS_JSONL)


def test_a_run_killed_mid_way_keeps_its_finished_trials(tmp_path):
    directory = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", *TINY, "budget.evaluations=100000", f"hydra.run.dir={directory}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            trials = directory / TRIALS_JSONL
            if trials.exists() and trials.read_text().count("\n") >= 3:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the run wrote no trials within 120 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    frame = read_trials(directory)
    assert len(frame) >= 3
    assert frame["trial"].tolist() == list(range(len(frame)))
    assert frame["objective"].notna().all() and (frame["status"] == "ok").all()
    assert json.loads((directory / RUN_FILE).read_text())["status"] == "running"
    runs, _ = load_runs(tmp_path)
    assert runs.empty  # an unfinished run never enters a comparison by default
    runs, trials = load_runs(tmp_path, include_incomplete=True)
    assert runs["status"].tolist() == ["running"] and len(trials) == len(frame)
