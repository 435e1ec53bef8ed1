import dataclasses
import math

import numpy as np
import pytest
import torch

from bench.budget import Budget
from bench.build import build
from bench.runner import RunSettings, final_seed, run, trial_seed
from methods.random_search import RandomSearch
from tests.helpers import TINY, bench_config


@pytest.fixture(scope="module")
def experiment():
    return build(bench_config(*TINY))


class RecordingRandomSearch(RandomSearch):
    """Random search that keeps what it is told: the protocol's view from the method's side."""

    def __init__(self, space, seed):
        super().__init__(space, seed)
        self.told = []

    def tell(self, configs, evaluations):
        self.told.extend(zip(configs, evaluations, strict=True))


def test_evaluation_budget_is_respected_and_best_so_far_is_the_running_minimum(experiment):
    result = run(experiment.task, RandomSearch(experiment.task.space, 0), Budget(evaluations=7), seed=0)
    assert len(result.trials) == 7
    assert result.stop_reason == "budget.evaluations=7 reached"
    objectives = np.array([t.evaluation.objective for t in result.trials])
    np.testing.assert_array_equal([t.best_so_far for t in result.trials], np.minimum.accumulate(objectives))
    assert result.incumbent.evaluation.objective == objectives.min()
    steps = np.cumsum([t.config["iterations"] for t in result.trials])
    np.testing.assert_array_equal([t.cumulative_steps for t in result.trials], steps)


def test_train_step_budget_stops_after_the_trial_that_crosses_it(experiment):
    result = run(experiment.task, RandomSearch(experiment.task.space, 1), Budget(train_steps=150), seed=1)
    steps = [t.cumulative_steps for t in result.trials]
    assert steps[-1] >= 150 and steps[-2] < 150
    assert result.stop_reason.startswith("budget.train_steps=150 reached")


def test_same_seed_same_trials_other_seed_other_trials(experiment):
    def trials(seed):
        result = run(experiment.task, RandomSearch(experiment.task.space, seed), Budget(evaluations=4), seed=seed)
        return [(t.config, t.evaluation.objective, t.seed) for t in result.trials]

    assert trials(3) == trials(3)
    assert trials(3) != trials(4)


def told_fields(evaluation):
    return {field.name: getattr(evaluation, field.name) for field in dataclasses.fields(evaluation)}


@pytest.mark.parametrize("task", ["bikeshare", "hartmann6"])
def test_only_the_objective_status_costs_and_public_metrics_reach_a_method(task):
    """The probe: a recording method on a task with public metrics (bikeshare: train_mse) and on
    one whose noise-free value would be the answer (hartmann6 with noise)."""
    overrides = TINY if task == "bikeshare" else ["task=hartmann6", "task.noise_std=0.1"]
    experiment = build(bench_config(*overrides))
    method = RecordingRandomSearch(experiment.task.space, 5)
    result = run(experiment.task, method, Budget(evaluations=5), seed=5, settings=RunSettings(batch_size=2))
    assert len(method.told) == 5
    for trial, (config, told) in zip(result.trials, method.told, strict=True):
        recorded = trial.evaluation
        assert config == trial.config
        assert told_fields(told) == {
            "objective": recorded.objective,
            "test": {},
            "metrics": {key: recorded.metrics[key] for key in experiment.task.public_metrics},
            "status": recorded.status,
            "cost_steps": recorded.cost_steps,
            "cost_seconds": recorded.cost_seconds,
            "error": None,
        }
        assert recorded.test  # recorded, only hidden from the method
    if task == "hartmann6":
        pairs = zip(result.trials, method.told, strict=True)
        assert all(told.objective != trial.evaluation.test["value"] for trial, (_, told) in pairs)
    else:
        assert experiment.task.public_metrics == ("train_mse",) and "rubric" in result.trials[0].evaluation.metrics


def test_the_incumbent_is_retrained_on_fresh_seeds(experiment):
    method = RecordingRandomSearch(experiment.task.space, 5)
    result = run(
        experiment.task, method, Budget(evaluations=5), seed=5, settings=RunSettings(batch_size=2, incumbent_repeats=3)
    )
    assert result.final_seeds == [final_seed(5, r) for r in range(3)]
    assert not set(result.final_seeds) & {trial_seed(5, i) for i in range(100)}
    assert [e.objective for e in result.final] == [
        experiment.task.evaluate(result.incumbent.config, s).objective for s in result.final_seeds
    ]


def test_diverging_trials_are_recorded_and_the_run_goes_on():
    experiment = build(
        bench_config(
            *TINY,
            "task.space.learning_rate.low=1e5",
            "task.space.learning_rate.high=1e6",
            "task.space.learning_rate.default=1e5",
        )
    )
    result = run(experiment.task, RandomSearch(experiment.task.space, 0), Budget(evaluations=3), seed=0)
    assert [t.evaluation.status for t in result.trials] == ["diverged"] * 3
    assert all(math.isnan(t.best_so_far) for t in result.trials)
    assert result.incumbent is None and result.final == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")
def test_a_black_box_run_on_cuda_matches_the_cpu():
    def objectives(device):
        experiment = build(bench_config(*TINY, f"device={device}"))
        result = run(experiment.task, RandomSearch(experiment.task.space, 0), Budget(evaluations=3), seed=0)
        return [t.evaluation.objective for t in result.trials]

    assert objectives("cuda") == pytest.approx(objectives("cpu"), rel=1e-4)
