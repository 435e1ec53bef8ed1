"""Sweeps through real launchers: 8 runs through joblib (launcher=local) and through submitit's
local executor land in 8 folders, and the report finds all 8; the cluster presets compose (sweeps
on a real Slurm cluster: test_slurm.py)."""

import io

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from bench.config import CONFIG_DIR
from bench.report.load import load_runs
from bench.slurm import array_tasks, wait_for
from tests.helpers import run_bench, run_module

SWEEP = ["-m", "task=branin", "method=random,gp_ei", "seed=0,1,2,3", "budget.evaluations=3", "incumbent_repeats=1"]


@pytest.mark.parametrize(
    "launcher",
    [
        ["launcher=local", "hydra.launcher.n_jobs=2"],
        # submitit starts every job of a batch at once: batches of 4 on a 2-core machine
        ["hydra/launcher=submitit_local", "hydra.sweeper.max_batch_size=4", "hydra.launcher.timeout_min=10"],
    ],
    ids=["joblib", "submitit_local"],
)
@pytest.mark.slow
def test_a_sweep_of_8_runs_lands_every_run(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    done = run_bench(*SWEEP, *launcher, f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runs, trials = load_runs(sweep)
    assert len(runs) == 8 and runs["path"].nunique() == 8
    assert sorted(zip(runs["method"], runs["seed"], strict=True)) == [
        (m, s) for m in ("gp_ei", "random") for s in range(4)
    ]
    assert len(trials) == 8 * 3
    assert f"8 runs under {sweep}" in done.stdout
    report = run_module("bench.report", str(sweep), "--table-only", "--format", "csv", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(io.StringIO(report.stdout))
    assert table["runs"].sum() == 8


@pytest.mark.parametrize("preset", ["slurm_cpu", "slurm_gpu"])
def test_the_slurm_presets_give_one_job_its_threads_and_resume_after_preemption(preset):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        config = compose("config", overrides=[f"launcher={preset}", "suite=bo_vs_hypergrad"], return_hydra_config=True)
    launcher = config.hydra.launcher
    assert launcher._target_ == "hydra_plugins.bench_launcher.bench_slurm.BenchSlurmLauncher"  # bench/slurm.py
    assert config.resume is True and launcher.max_num_timeout > 0  # a requeued job continues its run
    assert launcher.cpus_per_task == config.torch_threads == 4  # torch uses the cores Slurm gives, no more
    assert launcher.gpus_per_node == (1 if preset == "slurm_gpu" else 0)
    assert config.device == ("cuda" if preset == "slurm_gpu" else "cpu")


def test_array_task_specs_as_scontrol_prints_them_name_every_task():
    assert array_tasks("3") == ["3"]
    assert array_tasks("4-6") == ["4", "5", "6"]
    assert array_tasks("4-9%2") == ["4", "5", "6", "7", "8", "9"]  # at most 2 at once: still every task
    assert array_tasks("1,3-4") == ["1", "3", "4"]


def test_a_task_that_raised_or_failed_becomes_a_stand_in_after_one_log_line(tmp_path, caplog):
    """Real submitit jobs (its local executor): a task that raised, and one whose Hydra job returned
    a failure, each give one log line with the error and a result that lets the sweep report."""
    import submitit
    from hydra.core.utils import JobReturn, JobStatus

    executor = submitit.LocalExecutor(folder=tmp_path)
    executor.update_parameters(timeout_min=2)
    raised = executor.submit(int, "not a number")
    failed = executor.submit(JobReturn, overrides=["seed=2"], status=JobStatus.FAILED, _return_value=KeyError("x"))
    with caplog.at_level("ERROR", logger="bench"):
        returns = [wait_for(raised, ["seed=1"]), wait_for(failed, ["seed=2"])]
    assert all(r.status == JobStatus.COMPLETED and r.return_value is None for r in returns)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert "(seed=1) ended" in lines[0] and "ValueError: invalid literal for int() with base 10" in lines[0]
    assert "(seed=2) ended" in lines[1] and "KeyError: 'x'" in lines[1]
