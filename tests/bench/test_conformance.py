"""The conformance checker fails methods and tasks that break the protocol, each for its reason."""

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from bench.budget import Budget
from bench.build import build
from bench.conformance import ConformanceError, check_method, check_task, same_trials
from bench.errors import BenchError
from methods.random_search import RandomSearch
from tasks.synthetic import LearningCurveTask
from tests.helpers import TINY, bench_config

BUDGET = Budget(evaluations=6)


@pytest.fixture(scope="module")
def branin():
    return build(bench_config("task=branin")).task


class OutOfSpace(RandomSearch):
    def ask(self, n):
        configs = super().ask(n)
        configs[0] = {**configs[0], "x1": 11.0}  # x1 lies in [-5, 10]
        return configs


class OneTooMany(RandomSearch):
    def ask(self, n):
        return super().ask(n + 1)


class SeedIgnored(RandomSearch):
    def __init__(self, space, seed):
        super().__init__(space, 0)


class StopsAfterOne(RandomSearch):
    def __init__(self, space, seed):
        super().__init__(space, seed)
        self.asked = False

    def ask(self, n):
        if self.asked:
            return []
        self.asked = True
        return super().ask(1)


class NeverOk:
    """A task whose every evaluation fails: a method on it never gets an ok trial."""

    def __init__(self, task):
        self.task, self.space, self.test_metric, self.public_metrics = task, task.space, task.test_metric, ()

    def evaluate(self, config, seed):
        return replace(self.task.evaluate(config, seed), objective=math.nan, status="failed", error="broken")

    def describe(self):
        return self.task.describe()


def maker(method_class, task):
    return lambda seed: (task, method_class(task.space, seed))


def test_a_conforming_method_passes(branin):
    check_method(maker(RandomSearch, branin), BUDGET)


@pytest.mark.parametrize(
    ("method_class", "message"),
    [
        (OutOfSpace, "OutOfSpace proposed a configuration outside its space: config.x1=11.0 is outside x1 real"),
        (OneTooMany, "OneTooMany.ask(2) returned 3 configurations; at most 2 are allowed"),
        (SeedIgnored, "SeedIgnored ignores its seed: seeds 11 and 12 gave the same 6 proposals"),
        (StopsAfterOne, "StopsAfterOne stopped before its budget was spent (the method has nothing left to ask"),
    ],
)
def test_a_broken_method_fails_for_its_reason(branin, method_class, message):
    with pytest.raises(ConformanceError) as error:
        check_method(maker(method_class, branin), BUDGET)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_method_whose_trials_all_fail_is_caught(branin):
    with pytest.raises(ConformanceError, match="produced no ok trial in 6 .statuses: \\['failed'\\]"):
        check_method(maker(RandomSearch, NeverOk(branin)), BUDGET)


def test_trial_tables_compare_nan_aware_and_value_by_value():
    nan_a, nan_b = float("nan"), float(np.float64("nan"))
    assert (nan_a,) != (nan_b,)  # why == on tuples is not enough
    assert same_trials([({"x": 1.0}, "failed", nan_a)], [({"x": 1.0}, "failed", nan_b)])
    assert not same_trials([({"x": 1.0}, "ok", 0.5)], [({"x": 1.0}, "ok", 0.5000001)])
    assert not same_trials([({"x": 1.0}, "ok", 0.5)], [({"x": 1}, "ok", 0.5)])  # 1.0 and 1: other types
    assert not same_trials([({"x": 1.0}, "ok", 0.5)], [])


class NoisyDefault:
    """A task whose evaluation ignores its seed's determinism."""

    def __init__(self, task):
        self.task, self.space, self.test_metric, self.public_metrics = task, task.space, task.test_metric, ()
        self.pass_criteria = {}
        self.rng = np.random.default_rng()

    def evaluate(self, config, seed):
        evaluation = self.task.evaluate(config, seed)
        return replace(evaluation, objective=evaluation.objective + self.rng.normal())

    def describe(self):
        return self.task.describe()


class WrongMetric(NoisyDefault):
    def __init__(self, task):
        super().__init__(task)
        self.test_metric = "accuracy"

    def evaluate(self, config, seed):
        return self.task.evaluate(config, seed)


class NotJson(WrongMetric):
    def __init__(self, task):
        super().__init__(task)
        self.test_metric = task.test_metric

    def describe(self):
        return {"missing": math.nan}


class CriterionNotReported(NotJson):
    """Declares a pass criterion its evaluations do not report."""

    def __init__(self, task):
        super().__init__(task)
        self.pass_criteria = {"passes": "the objective is below 1"}

    def describe(self):
        return self.task.describe()


def test_the_real_task_passes(branin):
    check_task(branin)


class WithoutCriteria(NotJson):
    """A task written before tasks declared their pass criteria."""

    def __init__(self, task):
        super().__init__(task)
        del self.pass_criteria


def test_a_task_missing_a_protocol_member_is_named_by_the_check_and_by_the_build(branin):
    with pytest.raises(ConformanceError, match=r"WithoutCriteria lacks part of the Task protocol: pass_criteria$"):
        check_task(WithoutCriteria(branin))
    config = bench_config("task=branin", "task._target_=tests.bench.test_conformance.OldBranin")
    with pytest.raises(BenchError, match=r"^task._target_=tests.bench.test_conformance.OldBranin: lacks pass_criteria"):
        build(config)


@pytest.mark.parametrize(
    ("wrapper", "message"),
    [
        (NoisyDefault, "NoisyDefault: the default configuration with seed 0 gave objectives"),
        (WrongMetric, "WrongMetric.test_metric='accuracy' is not a key of its evaluation's test metrics"),
        (NotJson, "NotJson.describe() is not JSON"),
        (CriterionNotReported, "CriterionNotReported.pass_criteria names ['passes'], which its evaluations do not"),
    ],
)
def test_a_broken_task_fails_for_its_reason(branin, wrapper, message):
    with pytest.raises(ConformanceError) as error:
        check_task(wrapper(branin))
    assert message in str(error.value)


class SeedBlindBatch:
    """A batch task that trains every configuration of a batch with the batch's first seed."""

    def __init__(self, task):
        self.task, self.space = task, task.space
        self.test_metric, self.public_metrics = task.test_metric, task.public_metrics
        self.pass_criteria = task.pass_criteria

    def evaluate(self, config, seed):
        return self.task.evaluate(config, seed)

    def describe(self):
        return self.task.describe()

    def evaluate_batch(self, configs, seeds):
        return self.task.evaluate_batch(configs, [seeds[0]] * len(seeds))


def test_a_batch_task_that_ignores_a_seed_fails():
    task = build(bench_config(*TINY)).task
    check_task(task)
    with pytest.raises(ConformanceError, match=r"SeedBlindBatch.evaluate_batch: seed 1 trained in a batch gave ok"):
        check_task(SeedBlindBatch(task))


class OldBranin:
    """Built by Hydra from config: a synthetic task without ``pass_criteria``."""

    def __init__(self, space, device="cpu", **options):
        from tasks.synthetic import SyntheticTask

        self._task = SyntheticTask(space, device, **options)
        self.space, self.test_metric, self.public_metrics = space, self._task.test_metric, ()

    def evaluate(self, config, seed):
        return self._task.evaluate(config, seed)

    def describe(self):
        return self._task.describe()


class RestartingCurves(LearningCurveTask):
    """A fidelity task that trains a continued rung from scratch and counts all of its steps."""

    def train_to(self, config, seed, steps, paused=None):
        return super().train_to(config, seed, steps)


class DriftingCurves(LearningCurveTask):
    """A fidelity task whose continued training is not the straight one (a changed state)."""

    def train_to(self, config, seed, steps, paused=None):
        evaluation, state = super().train_to(config, seed, steps, paused)
        if paused is not None:
            return replace(evaluation, objective=evaluation.objective + 1e-9), state
        return evaluation, state


@pytest.mark.parametrize(
    "task_class, message",
    [
        (RestartingCurves, "RestartingCurves.train_to counts 27 + 81 steps for a training paused at 27 of 81"),
        (DriftingCurves, "DriftingCurves.train_to: paused at step 27 and continued to 81 gives objective"),
    ],
)
def test_a_fidelity_task_whose_continued_training_differs_fails(task_class, message):
    space = build(bench_config("task=learning_curves")).task.space
    check_task(LearningCurveTask(space))
    with pytest.raises(ConformanceError, match=re.escape(message)):
        check_task(task_class(space))
