"""The conformance checks (bench/conformance.py) over every registered method (conf/method/*.yaml)
on every task it accepts, and over every registered task (conf/task/*.yaml)."""

from pathlib import Path

import pytest

from bench.app import CONFIG_DIR, build
from bench.budget import Budget
from bench.conformance import check_method, check_task
from bench.errors import BenchError
from tests.helpers import TINY, TINY_FIXED, bench_config

METHODS = sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml"))
TASKS = sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml"))
MNIST = ["task.dataset=digits", "task.layers=[8]", "task.space.iterations.low=5", "task.space.iterations.high=30"]
SETTINGS = {  # cheap settings of every task; "[fixed]": discrete hyperparameters fixed, as hypergradients need
    "bikeshare": ["task=bikeshare", *TINY],
    "bikeshare[fixed]": ["task=bikeshare", *TINY_FIXED],
    "branin": ["task=branin"],
    "hartmann6": ["task=hartmann6"],
    "mnist_mlp": ["task=mnist_mlp", *MNIST, "task.space.iterations.default=10"],
    "mnist_mlp[fixed]": ["task=mnist_mlp", *MNIST, "+task.space.iterations.fixed=10"],
}
OPTIONS = {"default": ["method.repeats=5"]}  # the default configuration, evaluated for the whole budget
HYPERGRADIENT = ("drmad", "drmad_k10", "exact_hypergrad")


def test_every_task_has_a_small_setting():
    assert set(TASKS) <= {name.split("[")[0] for name in SETTINGS}


def overrides(method_name: str, setting: str) -> list[str]:
    """The setting, the method, and a design of 2 points so model-based methods model from trial 3."""
    cfg = bench_config(*SETTINGS[setting], f"method={method_name}")
    design = ["method.n_initial=2"] if "n_initial" in cfg.method else []
    return [*SETTINGS[setting], f"method={method_name}", *OPTIONS.get(method_name, []), *design]


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("method_name", METHODS)
def test_method_conforms(method_name, setting):
    """Every method on every task setting it accepts; only hypergradient methods refuse some, in one line."""
    try:
        build(bench_config(*overrides(method_name, setting)))
    except BenchError as error:
        assert "\n" not in str(error)
        assert method_name in HYPERGRADIENT and "[fixed]" not in setting, str(error)
        return

    def make(seed):
        experiment = build(bench_config(*overrides(method_name, setting), f"seed={seed}"))
        return experiment.task, experiment.method

    check_method(make, Budget(evaluations=5))


@pytest.mark.parametrize("task_name", TASKS)
def test_task_conforms(task_name):
    check_task(build(bench_config(*SETTINGS[task_name])).task)
