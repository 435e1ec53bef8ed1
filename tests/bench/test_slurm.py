"""Sweeps on a real Slurm cluster: munge, slurmctld and slurmd on this machine, started by
``scripts/slurm-local`` (CI starts it; here the module fixture starts it too, idempotently), jobs
submitted through ``launcher=slurm_cpu`` (bench/slurm.py). Skipped, with the reason, where the
cluster cannot start (not root, Slurm not installed).

The cluster keeps no accounting database, as many small clusters do: task states come from
``scontrol``, and submitit's ``sacct`` warning is said once. Slurm sends SIGTERM, then SIGKILL
``KillWait`` seconds later (10 on this cluster): a cancelled or requeued run keeps recording trials
until the kill."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.records import RUN_FILE, TRIALS_JSONL, comparable
from bench.report.load import read_trials
from tests.helpers import ROOT, run_bench, run_module

CLUSTER = ROOT / "scripts" / "slurm-local"
SLURM = ["-m", "launcher=slurm_cpu", "torch_threads=1", "hydra.launcher.mem_gb=1", "progress=false"]
"""One core and 1 GB per task: the presets' 4 cores and 16 GB do not fit a 2-core test machine."""
SLOW = ["task=bikeshare", "+task.space.iterations.fixed=8000", "incumbent_repeats=1"]
"""Bikeshare trials of 8,000 steps (1-2 s here): the 17 or 21 trials left after a cancel or requeue
take over KillWait (10 s) unless a machine trains above about 13,000 steps a second, 3.5 times the
3,900 a CI machine reached when it failed. Submitit bypasses SIGTERM, so a run whose last trials fit
in KillWait completes before the kill: with 3,000 steps and 13 trials left a CI machine did, and
resumed nothing."""


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (scripts/slurm-local starts munged, slurmctld, slurmd)")
    if shutil.which("slurmctld") is None and not Path("/usr/sbin/slurmctld").exists():
        pytest.skip("Slurm is not installed: scripts/slurm-local install (Debian's slurm-wlm and munge)")
    started = subprocess.run([CLUSTER, "start"], capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        pytest.skip(f"the local Slurm cluster did not start: {started.stderr.strip() or started.stdout.strip()}")


def submit(*arguments: str, cwd: Path) -> subprocess.Popen:
    """``python -m bench ARGUMENTS`` in the background, as a user starts a Slurm sweep."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *arguments],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def wait_for_trials(run: Path, trials: int, sweep: subprocess.Popen) -> int:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and sweep.poll() is None:
        path = run / TRIALS_JSONL
        recorded = path.read_text().count("\n") if path.exists() else 0
        if recorded >= trials:
            return recorded
        time.sleep(0.1)
    raise AssertionError(f"{run}: fewer than {trials} trials before the sweep ended: {sweep.communicate()}")


def task_id(sweep_dir: Path, number: int) -> str:
    """The Slurm id of job ``number`` of a sweep, from submitit's log names: ``12_0_log.err`` for a
    job alone (id ``12``), ``12_3_0_log.err`` for task 3 of an array (id ``12_3``)."""
    for log in (sweep_dir / ".submitit").glob("*/*_log.err"):
        parts = log.name.removesuffix("_0_log.err").split("_")
        if len(parts) == 1 or parts[1] == str(number):
            return "_".join(parts)
    raise AssertionError(f"no submitit log of job {number} under {sweep_dir}")


@pytest.mark.slow
def test_a_sweep_through_slurm_lands_every_run_and_its_report_counts_them(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_bench(
        *SLURM, "task=branin", "method=random,gp_ei", "seed=0,1", "budget.evaluations=4", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    metas = [json.loads(path.read_text()) for path in sweep.glob(f"*/{RUN_FILE}")]
    assert len(metas) == 4 and {meta["status"] for meta in metas} == {"completed"}
    assert all(meta["provenance"]["slurm"]["job_id"] and meta["provenance"]["slurm"]["node"] for meta in metas)
    assert "4 runs under" in done.stdout and (sweep / "report.md").exists()
    assert done.stdout.count("sacct: ") == 1  # said once (this cluster keeps no accounting), not on every poll


@pytest.mark.slow
def test_a_run_requeued_mid_way_resumes_and_equals_an_uninterrupted_run(tmp_path):
    arguments = [*SLOW, "method=gp_ei", "method.n_initial=2", "budget.evaluations=24", "seed=3"]
    whole = run_bench(*arguments, "progress=false", f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    sweep_dir = tmp_path / "sweep"
    sweep = submit(*SLURM, *arguments, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    run = sweep_dir / "0_bikeshare_gp_ei_s3"
    before = wait_for_trials(run, 3, sweep)
    job = task_id(sweep_dir, 0)
    subprocess.run(["scontrol", "requeue", job], check=True)  # what preemption with PreemptMode=REQUEUE does
    deadline = time.monotonic() + 300
    while sweep.poll() is None and time.monotonic() < deadline:  # Slurm holds a requeued job ~2 min: release it
        subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], capture_output=True)
        time.sleep(2)
    out, err = sweep.communicate()
    assert sweep.returncode == 0, err
    meta = json.loads((run / RUN_FILE).read_text())
    assert meta["status"] == "completed" and 3 <= before < meta["n_trials"] == 24
    assert "resumed" in meta, f"the run finished before Slurm killed it ({before} trials at the requeue)"
    assert [entry["provenance"]["slurm"]["restart_count"] for entry in meta["resumed"]] == ["1"]
    pd.testing.assert_frame_equal(comparable(read_trials(run)), comparable(read_trials(tmp_path / "whole")))
    assert meta["final"]["objective"] == json.loads((tmp_path / "whole" / RUN_FILE).read_text())["final"]["objective"]


@pytest.mark.slow
def test_a_cancelled_task_leaves_its_trials_the_report_marks_it_and_a_resumed_sweep_completes_it(tmp_path):
    sweep_dir = tmp_path / "sweep"
    arguments = [*SLURM, *SLOW, "method=random", "seed=0,1", "budget.evaluations=20", f"hydra.sweep.dir={sweep_dir}"]
    sweep = submit(*arguments, cwd=tmp_path)
    cancelled = sweep_dir / "1_bikeshare_random_s1"
    wait_for_trials(cancelled, 3, sweep)
    subprocess.run(["scancel", task_id(sweep_dir, 1)], check=True)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 2, err
    assert err.strip().splitlines()[-1] == (
        f"error: 1 of 2 runs did not complete (1 killed while running; first: {cancelled}): "
        "the same command with resume=true continues them (the log says why each stopped)"
    )
    assert "ended CANCELLED without a result" in out  # Hydra logs to stdout
    kept = read_trials(cancelled)
    assert 3 <= len(kept) < 20 and (kept["status"] == "ok").all()
    assert json.loads((sweep_dir / "0_bikeshare_random_s0" / RUN_FILE).read_text())["status"] == "completed"

    report = run_module("bench.report", str(sweep_dir), "--table-only", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert f"1 runs under {sweep_dir}. Not counted, as they did not complete: {cancelled} (running, " in report.stdout

    resumed = run_bench(*arguments, "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    meta = json.loads((cancelled / RUN_FILE).read_text())
    assert meta["status"] == "completed" and meta["n_trials"] == 20 and len(meta["resumed"]) == 1
    assert read_trials(cancelled).head(len(kept))["objective"].tolist() == kept["objective"].tolist()
    assert "2 runs under" in resumed.stdout
