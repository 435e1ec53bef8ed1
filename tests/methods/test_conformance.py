"""One conformance check, run over every registered method (conf/method/*.yaml) and task."""

from pathlib import Path

import pytest

from bench.app import CONFIG_DIR, build
from bench.budget import Budget
from bench.protocols import Method, Task
from bench.runner import run
from tests.helpers import TINY, bench_config

METHODS = sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml"))
TASKS = sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml"))
SMALL = {"bikeshare": TINY}  # overrides that make each task cheap enough for a conformance run


def test_every_task_has_a_small_setting():
    assert set(TASKS) <= set(SMALL)


@pytest.mark.parametrize("task_name", TASKS)
@pytest.mark.parametrize("method_name", METHODS)
def test_method_follows_the_protocol(method_name, task_name):
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
