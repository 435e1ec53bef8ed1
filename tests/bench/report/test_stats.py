"""The report's statistics (bench/report/stats.py) on tables with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.report.stats import (
    best_so_far_at,
    expected_best,
    friedman,
    holm,
    horizon,
    mean_ranks,
    normalised_regret,
    probability_better,
    verdict,
)
from tests.helpers import seed_table


def test_holm_matches_the_step_down_procedure_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan])
    # sorted 0.01, 0.03, 0.04 with multipliers 3, 2, 1, made monotone
    np.testing.assert_allclose(holm(p)[:3], [0.03, 0.06, 0.06])
    assert math.isnan(holm(p)[3])


# ------------------------------------------------------------------------------ anytime, ranks, P(A > B)
def test_best_so_far_counts_only_ok_trials_finished_by_each_horizon():
    trials = pd.DataFrame(
        {
            "run_id": ["r"] * 4 + ["s"],
            "status": ["failed", "ok", "ok", "ok", "ok"],
            "objective": [0.1, 3.0, 5.0, 2.0, 7.0],
            "cumulative_steps": [10, 20, 30, 40, 25],
        }
    )
    table = best_so_far_at(trials, "steps", np.array([5, 10, 20, 35, 40, 100]))
    assert np.isnan(table.loc["r", 5]) and np.isnan(table.loc["r", 10])  # the failed trial's 0.1 never counts
    assert table.loc["r"].tolist()[2:] == [3.0, 3.0, 2.0, 2.0]
    assert np.isnan(table.loc["s", 20]) and table.loc["s", 100] == 7.0
    assert horizon(trials, "steps") == 40
    assert normalised_regret(np.array([2.0, 7.0, 4.5]), 2.0, 7.0).tolist() == [0.0, 1.0, 0.5]


def test_a_dominating_method_ranks_first_with_an_interval_apart_and_identical_methods_tie():
    rng = np.random.default_rng(0)
    base = rng.normal(size=10)
    table = mean_ranks(seed_table(good=base - 5, a=base, b=base.copy())).set_index("method")
    assert table.loc["good", "mean_rank"] == 1.0 and table.loc["good", "high"] == 1.0
    assert table.loc["a", "mean_rank"] == table.loc["b", "mean_rank"] == 2.5
    assert table.loc["good", "high"] < table.loc["a", "low"]
    assert table["seeds"].unique().tolist() == [10]


def test_mean_ranks_use_only_seeds_every_method_ran():
    table = mean_ranks(seed_table(a=[1.0, 2.0, np.nan], b=[2.0, 1.0, 0.0])).set_index("method")
    assert table.loc["a", "seeds"] == 2 and table.loc["a", "mean_rank"] == table.loc["b", "mean_rank"] == 1.5


def test_p_of_a_method_against_itself_is_one_half_within_its_interval():
    values = np.random.default_rng(2).normal(size=12)
    p, low, high = probability_better(values, values.copy())
    assert p == 0.5 and low <= 0.5 <= high
    assert verdict(p, low, 12) == "not separable"


def test_p_of_a_dominating_method_is_one_and_noise_is_not_separable():
    rng = np.random.default_rng(3)
    a = rng.normal(size=10)
    p, low, high = probability_better(a - 10, a)
    assert (p, low, high) == (1.0, 1.0, 1.0) and verdict(p, low, 10) == "better"
    # one seed won proves nothing: the interval has width 0, and no verdict is given
    assert verdict(*probability_better([1.0], [2.0])[:2], 1).startswith("too few seeds")
    p, low, high = probability_better(rng.normal(size=10), rng.normal(size=10))
    assert low < 0.5 < high and verdict(p, low, 10) == "not separable"
    # the estimate counts wins and half ties by hand: wins on seeds 0 and 1, a tie on 2, a loss on 3
    assert probability_better([1, 1, 2, 5], [2, 3, 2, 4])[0] == pytest.approx((1 + 1 + 0.5 + 0) / 4)


# ------------------------------------------------------------------------------ Friedman, Nemenyi, Dodge
def test_friedman_finds_a_consistent_ordering_and_the_critical_difference_is_demsars():
    rng = np.random.default_rng(4)
    base = rng.normal(size=8)
    result = friedman(pd.DataFrame({"best": base - 2, "middle": base, "worst": base + 2}))
    assert result["ranks"].to_dict() == {"best": 1.0, "middle": 2.0, "worst": 3.0}
    assert result["p"] < 0.01
    assert result["nemenyi"].loc["best", "worst"] < 0.05
    # Demsar 2006, Table 5(a): q_0.05 = 2.343 for k = 3 classifiers; CD = q sqrt(k (k + 1) / (6 N))
    assert result["critical_difference"] == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 8)), abs=1e-3)
    same = friedman(pd.DataFrame({"a": base, "b": base.copy(), "c": base.copy()}))
    assert not same["p"] < 0.05
    with pytest.raises(ValueError, match="at least 3 tasks"):
        friedman(pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0], "c": [3.0, 3.0]}))


def test_expected_best_of_n_trials_is_the_hand_computed_closed_form():
    # higher is better, scores {1, 2, 3}: the best of 2 draws with replacement is 1, 2 or 3 with
    # probabilities 1/9, 3/9, 5/9
    assert expected_best(np.array([3.0, 1.0, 2.0]), 1, lower_is_better=False)[0] == pytest.approx(2.0)
    mean, sd = expected_best(np.array([3.0, 1.0, 2.0]), 2, lower_is_better=False)
    assert mean == pytest.approx(22 / 9)
    assert sd == pytest.approx(math.sqrt((1 + 4 * 3 + 9 * 5) / 9 - (22 / 9) ** 2))
    assert expected_best(np.array([1.0, 2.0, 3.0]), 2)[0] == pytest.approx((1 * 5 + 2 * 3 + 3 * 1) / 9)


def test_expected_best_matches_enumerating_every_draw():
    import itertools

    values = np.array([0.3, 0.1, 0.4, 0.4, 0.2])
    draws = list(itertools.product(values, repeat=3))
    assert expected_best(values, 3)[0] == pytest.approx(np.mean([min(d) for d in draws]))


# ------------------------------------------------------------------------------ bench.report.analysis on awkward sweeps
def test_missing_seeds_are_not_losses_and_a_run_without_trials_or_score_is_the_worst():
    from bench.report.analysis import comparison

    identity = {"task": {"name": "t"}}
    rows = [  # method, seed, final objective (nan: no score), trials
        ("a", 0, 1.0, 2),
        ("b", 0, 2.0, 2),
        ("b", 1, 0.5, 2),  # a never ran seed 1: that must not count against a
        ("c", 0, np.nan, 0),  # c's run has neither a score nor a trial
    ]
    runs = pd.DataFrame(
        [
            {
                "run_id": f"{m}{s}",
                "task": "t",
                "method": m,
                "seed": s,
                "identity": {**identity, "method": {"name": m}},
                "experiment": m,
                "label": m,
                "incumbent_repeats": 1,
                "final_objective": f,
                "best_objective": f,
                "final_test_metric": f,
                "test_metric_name": "x",
                "seconds": 2.0,
            }
            for m, s, f, _ in rows
        ]
    )
    trials = pd.DataFrame(
        [
            {
                "run_id": f"{m}{s}",
                "trial": i,
                "status": "ok",
                "objective": f,
                "cost_seconds": 0.5,
                "cumulative_seconds": i + 1.0,
                "cumulative_steps": 10 * (i + 1),
            }
            for m, s, f, n in rows
            for i in range(n)
        ]
    )
    table = comparison(runs, trials).set_index("method")
    assert table.loc["a", "best"]  # median 1.0 over its one seed; b's median is 1.25
    assert table.loc["b", "paired_seeds"] == 1 and table.loc["b", "verdict"].startswith("too few seeds")
    assert table.loc["c", "p_best_better"] == 1.0  # no score: the worst
    assert table.loc["c", "reached"] == 0.0 and table.loc["c", "steps_to_target"] == math.inf
