"""Resume: a run killed with SIGKILL mid-way and resumed has the trial table of an uninterrupted
run with the same seed (random search, gp_ei, and every member of the hypergradient family); a
torn last line is dropped; a resume with another configuration is refused in one line and changes
nothing; completed runs are kept."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.budget import Budget
from bench.build import build
from bench.records import RUN_FILE, TRIALS_JSONL, comparable
from bench.report.load import read_trials
from bench.runner import RunSettings, run
from methods.random_search import RandomSearch
from tests.helpers import ROOT, TINY, bench_config, run_bench

SLOW_ENOUGH = ["+task.space.iterations.fixed=300", "incumbent_repeats=1", "progress=false"]
"""Bikeshare trials of 300 steps (a few tenths of a second): time to kill a run mid-way."""
RUNS = {
    "random": ["method=random", "budget.evaluations=12"],
    "gp_ei": ["method=gp_ei", "method.n_initial=2", "budget.evaluations=8"],  # killed after the GP's first proposal
    "drmad": ["method=drmad", "+task.space.hidden_nodes.fixed=4", "budget.evaluations=6"],
    # every other member of the hypergradient family (methods/hypergradient.py, drmad.py, implicit.py, online.py)
    "exact_hypergrad": ["method=exact_hypergrad", "+task.space.hidden_nodes.fixed=4", "budget.evaluations=6"],
    "truncated_hypergrad": ["method=truncated_hypergrad", "+task.space.hidden_nodes.fixed=4", "budget.evaluations=6"],
    "forward_hypergrad": ["method=forward_hypergrad", "+task.space.hidden_nodes.fixed=4", "budget.evaluations=6"],
    "online_hypergrad": ["method=online_hypergrad", "+task.space.hidden_nodes.fixed=4", "budget.evaluations=6"],
    "implicit_hypergrad": [
        "method=implicit_hypergrad",
        "+task.space.hidden_nodes.fixed=4",
        "+task.space.learning_rate.fixed=0.5",
        "+task.space.momentum.fixed=0.9",
        "task.space.l2.default=1e-3",
        "budget.evaluations=6",
    ],
}


def kill_after(arguments: list[str], directory: Path, trials: int) -> None:
    """Start ``python -m bench ARGUMENTS`` and SIGKILL it once ``trials`` trials are on disk."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", *arguments, f"hydra.run.dir={directory}"],
        cwd=directory.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            path = directory / TRIALS_JSONL
            if path.exists() and path.read_text().count("\n") >= trials:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize(
    "method",
    [m if m == "gp_ei" else pytest.param(m, marks=pytest.mark.slow) for m in sorted(RUNS)],
)
def test_a_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, method):
    arguments = [*SLOW_ENOUGH, *RUNS[method], "seed=7"]
    whole = run_bench(*arguments, f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    killed = tmp_path / "killed"
    kill_after(arguments, killed, trials=3)
    meta = json.loads((killed / RUN_FILE).read_text())
    assert meta["status"] == "running"
    recorded = (killed / TRIALS_JSONL).read_text()
    (killed / TRIALS_JSONL).write_text(recorded + recorded.splitlines()[0][:57])  # a kill mid-write: a torn line
    resumed = run_bench(*arguments, "resume=true", f"hydra.run.dir={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((killed / RUN_FILE).read_text())
    assert after["status"] == "completed" and after["run_id"] == meta["run_id"] and len(after["resumed"]) == 1
    expected, got = read_trials(tmp_path / "whole"), read_trials(killed)
    assert (got["run_id"] == meta["run_id"]).all()
    pd.testing.assert_frame_equal(comparable(got), comparable(expected))
    assert after["final"]["objective"] == json.loads((tmp_path / "whole" / RUN_FILE).read_text())["final"]["objective"]


def test_a_resume_with_another_configuration_is_one_line_and_changes_nothing(tmp_path):
    arguments = [*TINY, "method=random", "budget.evaluations=3", "progress=false"]
    directory = tmp_path / "run"
    assert run_bench(*arguments, f"hydra.run.dir={directory}", cwd=tmp_path).returncode == 0
    meta = json.loads((directory / RUN_FILE).read_text())
    meta["status"] = "interrupted"  # as a Ctrl-C leaves it
    (directory / RUN_FILE).write_text(json.dumps(meta))
    before = {p.name: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    done = run_bench(*arguments, "method=gp_ei", "resume=true", f"hydra.run.dir={directory}", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: cannot resume {directory}: this command defines another experiment: ")
    assert "method._target_: recorded 'methods.random_search.RandomSearch', now 'methods.gp.GPExpectedImprovement'" in (
        done.stderr
    )
    assert {p.name: p.read_bytes() for p in directory.rglob("*") if p.is_file()} == before


def test_a_sweep_resumed_keeps_completed_runs_and_refuses_a_new_run_in_a_used_folder(tmp_path):
    sweep = tmp_path / "sweep"
    arguments = ["-m", "task=branin", "method=random", "seed=0,1", "budget.evaluations=3", f"hydra.sweep.dir={sweep}"]
    assert run_bench(*arguments, cwd=tmp_path).returncode == 0
    stamps = {p: p.stat().st_mtime_ns for p in sweep.rglob(RUN_FILE)}
    again = run_bench(*arguments, cwd=tmp_path)
    assert again.returncode == 2 and "already holds run branin-random-s0-" in again.stderr
    assert "add resume=true to continue it" in again.stderr
    resumed = run_bench(*arguments, "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob(RUN_FILE)} == stamps  # completed runs are not rerun
    assert "2 runs under" in resumed.stdout


@pytest.mark.slow
def test_the_same_command_twice_gives_identical_trial_tables(tmp_path):
    """Black-box and hypergradient methods on bikeshare: two runs of one command, trial for trial."""
    sweeps = {}
    for name in ("first", "second"):
        sweeps[name] = tmp_path / name
        done = run_bench(
            "-m",
            *SLOW_ENOUGH,
            "+task.space.hidden_nodes.fixed=4",
            "method=random,gp_ei,drmad",  # gp_ts and skopt_gp: the conformance check's reproducibility rule
            "budget.evaluations=4",
            "seed=5",
            f"hydra.sweep.dir={sweeps[name]}",
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted(sweeps["first"].glob("*_s5"))
    assert len(runs) == 3
    for first in runs:
        expected, got = read_trials(first), read_trials(sweeps["second"] / first.name)
        assert len(expected) == 4
        pd.testing.assert_frame_equal(comparable(got), comparable(expected))


def test_a_batch_cut_by_a_kill_is_trained_again_as_it_was():
    """Batched (vectorised) trials: a record that stops inside a batch resumes to the trials of an
    uninterrupted run, bit for bit: the cut batch is trained whole again, grouped as before."""
    experiment = build(bench_config("method=random", "seed=2"))

    def trials(history=()):
        method = RandomSearch(experiment.task.space, 2)
        result = run(
            experiment.task, method, Budget(evaluations=7), 2, history=history, settings=RunSettings(batch_size=3)
        )
        return result.trials

    whole = trials()
    resumed = trials(history=whole[:4])
    assert [(t.config, t.evaluation, t.seed) for t in resumed] == [(t.config, t.evaluation, t.seed) for t in whole]
    assert resumed[:4] == whole[:4]  # replayed as recorded, clocks included
