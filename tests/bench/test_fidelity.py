"""Multi-fidelity runs (bench/fidelity.py, the runner's rungs): a paused training continued equals
one trained straight through, per task, also after a trip through the disk; a promoted trial costs
only its new steps; the incumbent is the best at the highest fidelity reached; paused trainings
are kept within their bound; a run killed between rungs and resumed has the trial table of an
uninterrupted one."""

import json
import math
import re

import pandas as pd
import pytest
import torch

from bench.budget import Budget
from bench.build import build
from bench.errors import BenchError
from bench.fidelity import PAUSED_DIR, PausedTrainings
from bench.records import RUN_FILE, comparable
from bench.report.load import read_trials
from bench.runner import RunSettings, run
from tasks.synthetic import LearningCurveTask
from tests.bench.test_resume import kill_after
from tests.helpers import bench_config, run_bench
from tests.methods.test_conformance import SETTINGS

FIDELITY_TASKS = {  # a fidelity task's small setting with its training length fixed, and that length
    "bikeshare": [*SETTINGS["bikeshare[fixed]"], "task.space.iterations.fixed=60", "task.space.momentum.default=0.5"],
    "mnist_mlp": [*SETTINGS["mnist_mlp[fixed]"], "task.space.iterations.fixed=30"],
    "text_rnn": [*SETTINGS["text_rnn[fixed]"]],
    "learning_curves": SETTINGS["learning_curves"],
}


def task_of(name):
    return build(bench_config(*FIDELITY_TASKS[name])).task


@pytest.mark.parametrize("name", sorted(FIDELITY_TASKS))
def test_continuing_a_paused_training_equals_training_straight_through(tmp_path, name):
    task = task_of(name)
    full = task.full_fidelity
    r1, r2 = full // 3, 2 * full // 3
    config = task.space.default
    first, paused = task.train_to(config, 5, r1)
    store = PausedTrainings(tmp_path, in_memory=1)  # through the disk, as a resumed run reads it
    store.put(0, paused)
    store.put(1, {"step": 0})  # evicts trial 0 from memory
    continued, after = task.train_to(config, 5, r2, store.get(0))
    straight, state = task.train_to(config, 5, r2)
    assert (first.cost_steps, continued.cost_steps, straight.cost_steps) == (r1, r2 - r1, r2)
    assert continued.objective == straight.objective and continued.test == straight.test
    assert after.keys() == state.keys() and int(after["step"]) == r2
    for key in set(state) - {"step"}:
        assert torch.equal(after[key], state[key]), key
    last, _ = task.train_to(config, 5, full, after)
    whole = task.evaluate(config, 5)
    # mnist_mlp, text_rnn, learning_curves: evaluate is this training; bikeshare's own loop rounds otherwise
    assert math.isclose(last.objective, whole.objective, rel_tol=1e-5 if name == "bikeshare" else 0.0)


def test_a_task_refuses_a_training_to_fewer_steps_than_paused():
    task = task_of("learning_curves")
    _, paused = task.train_to(task.space.default, 0, 30)
    with pytest.raises(ValueError, match="allowed 31 .. 81"):
        task.train_to(task.space.default, 0, 30, paused)


RUNG_BUDGET = Budget(train_steps=81 * 12)


def rung_run(method, budget=RUNG_BUDGET, seed=3):
    experiment = build(bench_config(*FIDELITY_TASKS["learning_curves"], f"method={method}", f"seed={seed}"))
    return run(experiment.task, experiment.method, budget, seed, RunSettings(incumbent_repeats=1))


@pytest.mark.parametrize("method", ["asha", "hyperband", "bohb", "top_k_early"])
def test_a_promoted_trial_costs_only_its_new_steps_and_keeps_its_training(method):
    result = rung_run(method)
    trials = result.trials
    continued = [t for t in trials if t.continues is not None]
    assert continued, "nothing was promoted"
    for trial in trials:
        if trial.continues is None:
            assert trial.evaluation.cost_steps == trial.fidelity
            continue
        before = trials[trial.continues]
        assert before.index < trial.index and before.evaluation.ok
        assert trial.evaluation.cost_steps == trial.fidelity - before.fidelity > 0
        assert trial.config == before.config and trial.seed == before.seed  # the same training, continued
    assert [t.cumulative_steps for t in trials] == list(pd.Series([t.evaluation.cost_steps for t in trials]).cumsum())
    # a rung's steps are known before it trains: the run stops inside its step budget, not past it
    assert trials[-1].cumulative_steps <= RUNG_BUDGET.train_steps
    if trials[-1].cumulative_steps < RUNG_BUDGET.train_steps:
        assert result.stop_reason.startswith(f"budget.train_steps={RUNG_BUDGET.train_steps} reached: the next rung's")
    assert len({t.continues for t in continued}) == len(continued)  # a paused training is continued once
    # the incumbent: the best ok trial at the highest fidelity an ok trial reached
    top = max(t.fidelity for t in trials if t.evaluation.ok)
    at_top = [t for t in trials if t.evaluation.ok and t.fidelity == top]
    assert result.incumbent == min(at_top, key=lambda t: t.evaluation.objective)
    assert result.incumbent.best_so_far == result.incumbent.evaluation.objective
    assert trials[-1].best_so_far == result.incumbent.evaluation.objective


def test_best_so_far_is_the_best_at_the_highest_fidelity_reached_so_far():
    trials = rung_run("asha").trials
    for k, trial in enumerate(trials):
        seen = [t for t in trials[: k + 1] if t.evaluation.ok]
        top = max(t.fidelity for t in seen)
        assert trial.best_so_far == min(t.evaluation.objective for t in seen if t.fidelity == top)


def test_paused_trainings_stay_within_their_bound_and_come_back_from_disk(tmp_path):
    store = PausedTrainings(tmp_path / PAUSED_DIR, in_memory=2)
    states = {trial: {"step": trial, "w": torch.randn(4)} for trial in range(5)}
    for trial, state in states.items():
        store.put(trial, state)
    assert len(store._kept) == 2 and sorted(p.name for p in (tmp_path / PAUSED_DIR).iterdir()) == [
        f"{trial}.pt" for trial in range(5)
    ]
    assert torch.equal(store.get(0)["w"], states[0]["w"])  # evicted, read back
    (tmp_path / PAUSED_DIR / "1.pt").unlink()
    with pytest.raises(
        BenchError, match=r"cannot continue trial 1: its paused training was not kept \(.*1.pt is missing\)"
    ):
        store.get(1)
    store.clear()
    assert not (tmp_path / PAUSED_DIR).exists()
    in_memory = PausedTrainings(in_memory=1)  # no folder: nothing is evicted
    for trial, state in states.items():
        in_memory.put(trial, state)
    assert all(in_memory.get(trial) is states[trial] for trial in states)


def test_a_multi_fidelity_method_needs_a_fidelity_task_with_one_training_length():
    for overrides, message in [
        (["task=branin", "method=asha"], "method asha trains configurations part of the way and needs a fidelity task"),
        (["task=mnist_mlp", *SETTINGS["mnist_mlp"][1:], "method=hyperband"], "fix it (e.g. +task.space.iterations"),
        ([*FIDELITY_TASKS["learning_curves"], "method=asha", "trial_timeout_s=5"], "use trial_timeout_s=null"),
    ]:
        with pytest.raises(BenchError, match=re.escape(message)) as error:
            build(bench_config(*overrides))
        assert "\n" not in str(error.value)


RESUMED = {  # mnist_mlp rungs of 10 to 270 steps on digits: time to kill a run between two of them
    method: [
        "task=mnist_mlp",
        "task.dataset=digits",
        "+task.space.iterations.fixed=270",
        f"method={method}",
        "budget.evaluations=null",
        "budget.train_steps=3000",
        "incumbent_repeats=1",
        "progress=false",
        "seed=4",
    ]
    for method in ("asha", "top_k_early")
}


@pytest.mark.parametrize(
    "method", [m if m == "asha" else pytest.param(m, marks=pytest.mark.slow) for m in sorted(RESUMED)]
)
def test_a_multi_fidelity_run_killed_between_rungs_and_resumed_equals_an_uninterrupted_one(tmp_path, method):
    arguments = RESUMED[method]
    whole = run_bench(*arguments, f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert not (tmp_path / "whole" / PAUSED_DIR).exists()  # a completed run keeps no paused training
    killed = tmp_path / "killed"
    kill_after(arguments, killed, trials=8 if method == "asha" else 18)
    assert json.loads((killed / RUN_FILE).read_text())["status"] == "running"
    assert any((killed / PAUSED_DIR).glob("*.pt"))
    resumed = run_bench(*arguments, "resume=true", f"hydra.run.dir={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected, got = read_trials(tmp_path / "whole"), read_trials(killed)
    assert got["continues"].notna().any()
    pd.testing.assert_frame_equal(comparable(got), comparable(expected))
    whole_meta, after = (json.loads((folder / RUN_FILE).read_text()) for folder in (tmp_path / "whole", killed))
    assert after["final"]["objective"] == whole_meta["final"]["objective"]
    assert not (killed / PAUSED_DIR).exists()


class _Crashing(LearningCurveTask):
    """learning_curves whose trainings of x1 < 0.5 (the fast learners) crash past the first rung."""

    def train_to(self, config, seed, steps, paused=None):
        if config["x1"] < 0.5 and steps > 10:
            raise RuntimeError("out of memory")
        return super().train_to(config, seed, steps, paused)


@pytest.mark.parametrize("method", ["asha", "bohb", "top_k_early"])
def test_a_crashed_rung_is_a_failed_trial_and_its_training_is_never_continued(method):
    experiment = build(bench_config(*FIDELITY_TASKS["learning_curves"], f"method={method}", "seed=1"))
    task = _Crashing(experiment.task.space)
    result = run(task, experiment.method, RUNG_BUDGET, 1, RunSettings(incumbent_repeats=0))
    failed = [t for t in result.trials if t.evaluation.status == "failed"]
    assert failed and all("out of memory" in t.evaluation.error for t in failed)
    assert all(t.evaluation.cost_steps == 0 for t in failed)
    for trial in failed:  # the method was told: nothing continues the failed rung's training
        lineage = [t for t in result.trials if t.config == trial.config]
        assert lineage[-1] is trial
    top = max(t.fidelity for t in result.trials if t.evaluation.ok)  # crashed trainings reached no fidelity
    assert result.incumbent.fidelity == top and result.incumbent.evaluation.ok


def test_a_budget_below_the_first_rung_and_a_timed_multi_fidelity_run_are_one_line_errors():
    experiment = build(bench_config(*FIDELITY_TASKS["learning_curves"], "method=hyperband"))
    with pytest.raises(BenchError, match=r"^budget.train_steps=2 is smaller than the first rung \(3 steps\)"):
        run(experiment.task, experiment.method, Budget(train_steps=2), 0)
    experiment = build(bench_config(*FIDELITY_TASKS["learning_curves"], "method=hyperband"))
    with pytest.raises(BenchError, match=r"^trial_timeout_s=5 with OptunaMultiFidelity: .* use trial_timeout_s=null$"):
        run(experiment.task, experiment.method, RUNG_BUDGET, 0, RunSettings(trial_timeout_s=5))


def test_a_damaged_paused_training_stops_the_run_in_one_line(tmp_path):
    store = PausedTrainings(tmp_path, in_memory=1)
    store.put(0, {"step": 3})
    store.put(1, {"step": 3})
    (tmp_path / "0.pt").write_bytes(b"not a torch file")
    with pytest.raises(BenchError, match=r"cannot continue trial 0: .*0.pt is unreadable"):
        store.get(0)
