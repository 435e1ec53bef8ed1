"""Multi-fidelity methods (methods/multi_fidelity.py): the rungs in steps; asha promotes exactly
the trials asynchronous successive halving promotes (its rule recomputed from the trial table);
top_k_early continues exactly the best ``keep`` short trainings of each round; hyperband starts
brackets at later rungs; bad options are one-line errors."""

import pytest

from bench.budget import Budget
from bench.build import build
from bench.errors import BenchError
from bench.runner import RunSettings, run
from methods.multi_fidelity import rungs
from tests.helpers import bench_config

LEARNING_CURVES = ["task=learning_curves"]


def trials_of(method, *options, steps=81 * 15, seed=2):
    experiment = build(bench_config(*LEARNING_CURVES, f"method={method}", *options, f"seed={seed}"))
    result = run(experiment.task, experiment.method, Budget(train_steps=steps), seed, RunSettings(incumbent_repeats=0))
    return result.trials


def test_the_rungs_are_r_min_times_powers_of_eta_then_the_full_training():
    assert rungs(638, 1 / 27, 1.0, 3) == [24, 72, 216, 638]  # the fair-baseline GRU
    assert rungs(81, 1 / 27, 1.0, 3) == [3, 9, 27, 81]
    assert rungs(500, 1 / 9, 1.0, 4) == [56, 224, 500]
    assert rungs(500, 0.5, 0.8, 2) == [250, 400]
    assert rungs(10, 0.001, 1.0, 3) == [1, 3, 9, 10]  # at least one step
    assert rungs(5, 1.0, 1.0, 3) == [5]


@pytest.mark.parametrize("eta", [2, 3])
def test_asha_promotes_exactly_as_asynchronous_successive_halving(eta):
    trials = trials_of("asha", f"method.reduction_factor={eta}", "method.min_fidelity=0.037037037")
    levels = rungs(81, 0.037037037, 1.0, eta)
    for k, trial in enumerate(trials[:-1]):
        assert trial.fidelity in levels and trial.evaluation.ok
        promoted = trials[k + 1].continues == trial.index  # asha decides at once: promoted means next
        if trial.fidelity == levels[-1]:
            assert not promoted
            continue
        # Li et al.'s rule, as Optuna applies it to the trials that reached the rung so far
        competing = sorted(t.evaluation.objective for t in trials[: k + 1] if t.fidelity == trial.fidelity)
        position = max(len(competing) // eta - 1, 0)
        assert promoted == (trial.evaluation.objective <= competing[position]), k
    assert any(t.fidelity == levels[-1] for t in trials) and sum(t.continues is None for t in trials) > 10


def test_top_k_early_continues_the_best_keep_of_each_round():
    trials = trials_of("top_k_early", "method.candidates=6", "method.keep=2", "method.min_fidelity=0.1")
    short, full = rungs(81, 0.1, 1.0, 82)
    rounds, k = 0, 0
    while k + 6 + 2 <= len(trials):
        batch, continued = trials[k : k + 6], trials[k + 6 : k + 8]
        assert [t.fidelity for t in batch] == [short] * 6 and all(t.continues is None for t in batch)
        best = sorted(batch, key=lambda t: (t.evaluation.objective, t.index))[:2]
        assert [t.continues for t in continued] == [t.index for t in best]
        assert [t.fidelity for t in continued] == [full, full]
        rounds, k = rounds + 1, k + 8
    assert rounds >= 3


def test_hyperband_starts_some_trainings_past_the_first_rungs_decision():
    """Hyperband's later brackets promote everything below their first rung: on curves that cross,
    a configuration successive halving drops at rung 0 may go on."""
    asha, hyperband = trials_of("asha", "method.min_fidelity=0.037037037"), trials_of("hyperband")
    assert {t.fidelity for t in hyperband} == {3, 9, 27, 81}
    full_asha = sum(t.fidelity == 81 for t in asha)
    full_hyperband = sum(t.fidelity == 81 for t in hyperband)
    assert full_hyperband > full_asha  # brackets that train more configurations fully


@pytest.mark.parametrize(
    "method, option, message",
    [
        ("asha", "method.min_fidelity=0", "method.min_fidelity=0: a fraction of the full training, in (0, 1]"),
        ("asha", "method.max_fidelity=1.5", "method.max_fidelity=1.5: a fraction of the full training, in (0, 1]"),
        ("hyperband", "method.reduction_factor=1", "method.reduction_factor=1: a whole number, 2 or more"),
        ("asha", "method.pruner=median", "method.pruner='median': allowed: successive_halving, hyperband"),
        ("bohb", "method.sampler=gp", "method.sampler='gp': allowed: random, tpe"),
        ("top_k_early", "method.keep=20", "method.keep=20: at most method.candidates=16"),
        ("top_k_early", "method.candidates=0", "method.candidates=0: a positive whole number"),
    ],
)
def test_bad_options_are_one_line_errors(method, option, message):
    with pytest.raises(BenchError) as error:
        build(bench_config(*LEARNING_CURVES, f"method={method}", option))
    assert str(error.value) == message


def test_top_k_early_refuses_a_short_training_that_is_a_full_one():
    experiment = build(bench_config(*LEARNING_CURVES, "method=top_k_early", "method.min_fidelity=1.0"))
    with pytest.raises(BenchError, match="min_fidelity=1.0 of 81 steps is a full training"):
        run(experiment.task, experiment.method, Budget(train_steps=100), 0)
