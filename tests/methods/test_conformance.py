"""One conformance check, run over every registered method (conf/method/*.yaml) and task."""

from pathlib import Path

import pytest
from hydra.utils import get_class

from bench.app import CONFIG_DIR, build
from bench.budget import Budget
from bench.errors import BenchError
from bench.protocols import Method, Task
from bench.runner import run
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


def test_every_task_has_a_small_setting():
    assert set(TASKS) <= set(SMALL)


def needs_training_loop(method_name: str, task_name: str) -> bool:
    """A hypergradient method on a task that cannot hand over its training loop."""
    cfg = bench_config(f"task={task_name}", f"method={method_name}")
    method, task = get_class(cfg.method._target_), get_class(cfg.task._target_)
    return hasattr(method, "evaluate") and not hasattr(task, "training_problem")


@pytest.mark.parametrize("task_name", TASKS)
@pytest.mark.parametrize("method_name", METHODS)
def test_method_follows_the_protocol(method_name, task_name):
    if needs_training_loop(method_name, task_name):  # refused up front, in one line
        with pytest.raises(BenchError) as error:
            build(bench_config(f"task={task_name}", f"method={method_name}", *SMALL[task_name]))
        assert "\n" not in str(error.value) and "the task's space lacks" in str(error.value)
        return

    def trials(seed):
        experiment = build(
            bench_config(f"task={task_name}", f"method={method_name}", f"seed={seed}", *SMALL[task_name])
        )
        assert isinstance(experiment.method, Method) and isinstance(experiment.task, Task)
        result = run(experiment.task, experiment.method, Budget(evaluations=5), seed, batch_size=2)
        space = experiment.task.space
        assert 1 <= len(result.trials) <= 5
        assert all(trial.config in space for trial in result.trials)
        assert result.stop_reason in ("budget.evaluations=5 reached", "the method has nothing left to ask")
        return [(t.config, t.evaluation.objective) for t in result.trials]

    first = trials(seed=11)
    assert trials(seed=11) == first
