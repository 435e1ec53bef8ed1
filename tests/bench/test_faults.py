"""Faults: a trial past ``trial_timeout_s`` fails and the run goes on; a run whose every trial
fails ends in one line and a non-zero exit; a method whose ``ask`` raises proposes through its
fallback once, recorded as such; a ``tell`` that raises is retried once."""

import json

import numpy as np
import pytest

from bench.budget import Budget
from bench.build import build
from bench.records import RUN_FILE
from bench.report.load import read_trials
from bench.runner import run
from methods.gp import GPExpectedImprovement
from methods.random_search import RandomSearch
from tests.helpers import bench_config, run_bench

MIXED = [  # random search, seed 4: iterations 388, 275, 519, 102, 322, 16760 (a tenth of a second to seconds)
    "method=random",
    "seed=4",
    "budget.evaluations=6",
    "+task.space.hidden_nodes.fixed=64",
    "task.space.iterations.high=20000",
    "incumbent_repeats=1",
]


def test_a_trial_past_its_timeout_fails_and_the_run_completes(tmp_path):
    done = run_bench(*MIXED, "trial_timeout_s=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    trials = read_trials(tmp_path / "run")
    timed_out = trials[trials["status"] == "failed"]
    assert (timed_out["error"] == "timeout: ran past trial_timeout_s=1 s").all()
    assert timed_out["config.iterations"].tolist() == [16760]
    assert (timed_out["cost_seconds"] >= 1).all() and (timed_out["cost_seconds"] < 10).all()  # stopped at the limit
    assert (trials["status"] == "ok").sum() == 5
    meta = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert meta["status"] == "completed" and meta["experiment"]["identity"]["trial_timeout_s"] == 1


def test_a_run_whose_every_trial_fails_ends_in_one_line_and_a_nonzero_exit(tmp_path):
    arguments = ["+task.space.iterations.fixed=10000", "budget.evaluations=2", "trial_timeout_s=0.3"]
    done = run_bench(*arguments, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "all 2 trials failed; the commonest reason (2x): timeout: ran past trial_timeout_s=0.3 s" in done.stderr
    meta = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert meta["status"] == "failed" and meta["error"].startswith("all 2 trials failed")
    assert len(read_trials(tmp_path / "run")) == 2


class SingularGP(GPExpectedImprovement):
    """gp_ei whose model fails on its second model-based ask, as a GP whose covariance is not
    positive definite does (the failure is injected; everything else is the real method)."""

    def propose(self, n, pending):
        self.model_asks = getattr(self, "model_asks", 0) + 1
        if self.model_asks == 2:
            raise np.linalg.LinAlgError("covariance not positive definite")
        return super().propose(n, pending)


class ForgetfulRandom(RandomSearch):
    """Random search whose ``tell`` raises the first time it is called."""

    def tell(self, configs, evaluations):
        if not getattr(self, "failed_once", False):
            self.failed_once = True
            raise RuntimeError("lost the connection to its database")


def test_an_ask_that_raises_proposes_through_the_fallback_once_and_says_so(tmp_path):
    experiment = build(bench_config("task=branin", "method=gp_ei"))
    method = SingularGP(experiment.task.space, seed=0, n_initial=3)
    result = run(experiment.task, method, Budget(evaluations=6), seed=0)
    sources = [t.proposed_by for t in result.trials]
    assert sources == ["method"] * 4 + ["fallback"] + ["method"]  # design 3, model 1, fallback, model
    assert result.trials[4].method_error == "ask: LinAlgError: covariance not positive definite"
    assert result.method_errors == ["ask: LinAlgError: covariance not positive definite"]
    keys = {tuple(t.config.values()) for t in result.trials}
    assert len(keys) == 6  # the fallback proposes an unseen configuration
    assert all(t.evaluation.ok for t in result.trials)


def test_a_tell_that_raises_is_retried_once():
    experiment = build(bench_config("task=branin"))
    result = run(experiment.task, ForgetfulRandom(experiment.task.space, seed=0), Budget(evaluations=3), seed=0)
    assert len(result.trials) == 3
    assert result.method_errors == ["tell: RuntimeError: lost the connection to its database"]


def test_an_ask_that_raises_without_a_fallback_ends_the_run():
    experiment = build(bench_config("task=branin"))

    class Broken(RandomSearch):
        def ask(self, n):
            raise ValueError("no proposal")

    with pytest.raises(ValueError, match="no proposal"):
        run(experiment.task, Broken(experiment.task.space, seed=0), Budget(evaluations=3), seed=0)


def test_a_sweep_goes_on_past_a_run_whose_trials_all_fail_and_exits_nonzero(tmp_path):
    sweep = tmp_path / "sweep"
    arguments = ["-m", "+task.space.iterations.fixed=10000", "budget.evaluations=1", "trial_timeout_s=0.3,600"]
    done = run_bench(*arguments, "incumbent_repeats=0", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: 1 run(s) of the sweep failed; bikeshare-random-s0-")
    assert "1 runs under" in done.stdout  # the other run completed and is reported


class SlowNetwork:
    """branin whose second evaluation raises the TimeoutError of a network read (the task's own)."""

    def __init__(self, task):
        self.task, self.space, self.calls = task, task.space, 0
        self.test_metric, self.public_metrics = task.test_metric, task.public_metrics

    def evaluate(self, config, seed):
        self.calls += 1
        if self.calls == 2:
            raise TimeoutError("the data server did not answer")
        return self.task.evaluate(config, seed)

    def describe(self):
        return self.task.describe()


def test_a_task_that_raises_timeout_error_itself_fails_that_trial_with_its_own_message():
    experiment = build(bench_config("task=branin"))
    task = SlowNetwork(experiment.task)
    result = run(task, RandomSearch(task.space, seed=0), Budget(evaluations=3), seed=0)
    assert [t.evaluation.status for t in result.trials] == ["ok", "failed", "ok"]
    assert result.trials[1].evaluation.error == "TimeoutError: the data server did not answer"
