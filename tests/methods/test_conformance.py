"""The conformance checks (bench/conformance.py) over every registered method (conf/method/*.yaml)
on every task it accepts, and over every registered task (conf/task/*.yaml)."""

from pathlib import Path

import pytest

from bench.app import CONFIG_DIR, build
from bench.budget import Budget
from bench.conformance import check_method, check_task
from bench.errors import BenchError
from tests.helpers import TINY, bench_config

METHODS = sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml"))
TASKS = sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml"))
SMALL = {  # overrides that make each task cheap
    "bikeshare": TINY,
    "branin": [],
    "hartmann6": [],
    "mnist_mlp": [
        "task.dataset=digits",
        "task.layers=[8]",
        "task.space.iterations.low=5",
        "task.space.iterations.high=30",
        "task.space.iterations.default=10",
    ],
}
FIXED = {  # the same tasks with their discrete hyperparameters fixed, for hypergradient methods
    "bikeshare": ["+task.space.iterations.fixed=20", "+task.space.hidden_nodes.fixed=2"],
    "mnist_mlp": ["+task.space.iterations.fixed=10"],
}
OPTIONS = {"default": ["method.repeats=5"]}  # the default configuration, evaluated for the whole budget


def test_every_task_has_a_small_setting():
    assert set(TASKS) <= set(SMALL)


def accepted(method_name: str, task_name: str) -> list[str] | None:
    """The overrides under which the method accepts the task (None: it refuses it, in one line)."""
    base = [f"task={task_name}", f"method={method_name}", *SMALL[task_name], *OPTIONS.get(method_name, [])]
    for extra in ([], FIXED.get(task_name)):
        if extra is None:
            break
        try:
            build(bench_config(*base, *extra))
        except BenchError as error:
            assert "\n" not in str(error)
            continue
        return base + extra
    return None


@pytest.mark.parametrize("task_name", TASKS)
@pytest.mark.parametrize("method_name", METHODS)
def test_method_conforms(method_name, task_name):
    overrides = accepted(method_name, task_name)
    if overrides is None:  # only the hypergradient methods refuse a task, one without a training loop
        assert method_name in ("drmad", "drmad_k10", "exact_hypergrad") and task_name in ("branin", "hartmann6")
        return

    def make(seed):
        experiment = build(bench_config(*overrides, f"seed={seed}"))
        return experiment.task, experiment.method

    check_method(make, Budget(evaluations=5))


def test_hypergradient_methods_accept_the_tasks_with_a_training_loop():
    for method_name in ("drmad", "drmad_k10", "exact_hypergrad"):
        assert accepted(method_name, "bikeshare") and accepted(method_name, "mnist_mlp")


@pytest.mark.parametrize("task_name", TASKS)
def test_task_conforms(task_name):
    check_task(build(bench_config(f"task={task_name}", *SMALL[task_name])).task)
