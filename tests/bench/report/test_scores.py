"""Who wins (bench/report/scores.py) on score matrices with known answers."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from bench.report.scores import (
    BEST,
    RETRAINED,
    best_row,
    compare,
    score_column,
    score_matrix,
    worse_than_every_run,
)
from tests.helpers import seed_table


def test_a_method_better_on_every_seed_is_best_wins_every_seed_and_is_separable():
    rng = np.random.default_rng(0)
    base = rng.normal(size=8)
    table = compare(seed_table(good=base - 1.0, bad=base + rng.uniform(0.5, 1, 8), same=base)).set_index("label")
    assert table["best"].to_dict() == {"good": True, "bad": False, "same": False}
    assert table.loc["good", "wins"] == 8 and table.loc["bad", "wins"] == 0 and table.loc["same", "wins"] == 0
    assert math.isnan(table.loc["good", "p"])
    # the exact two-sided signed-rank p-value when every one of n = 8 differences has the same sign: 2 / 2^8
    assert table.loc["bad", "p"] == pytest.approx(2 / 2**8) and table.loc["same", "p"] == pytest.approx(2 / 2**8)
    assert table.loc["bad", "p_holm"] == pytest.approx(2 * 2 / 2**8)  # Holm: the smaller of two p-values times 2
    assert table.loc["bad", "p_best_better"] == 1.0 and table.loc["bad", "verdict"] == "better"


def test_identical_methods_are_not_separable_and_share_every_win():
    values = np.arange(6.0)
    table = compare(seed_table(a=values, b=values.copy())).set_index("label")
    assert table["wins"].tolist() == [6, 6]
    assert table.loc["b", "p"] == 1.0 and table.loc["b", "p_holm"] == 1.0


def test_noise_is_not_significant_and_p_is_scipys():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=10), rng.normal(size=10)
    table = compare(seed_table(a=a, b=b)).set_index("label")
    loser, winner = table.index[~table["best"]][0], table.index[table["best"]][0]
    expected = wilcoxon({"a": a, "b": b}[loser], {"a": a, "b": b}[winner]).pvalue
    assert table.loc[loser, "p"] == pytest.approx(expected) and expected > 0.05


def test_missing_seeds_pair_only_what_both_ran():
    table = compare(seed_table(a=[1.0, 2.0, 3.0, 4.0], b=[2.0, 6.0, 4.0, np.nan], c=[5.0, 5.0, np.nan, np.nan]))
    table = table.set_index("label")
    assert table.loc["a", "best"] and table.loc["b", "paired"] == 3 and table.loc["c", "paired"] == 2
    assert table.loc["b", "seeds"] == 3 and table.loc["c", "seeds"] == 2


def test_a_failed_run_scores_strictly_worse_than_every_real_run_and_never_wins():
    """[inf, inf, inf] against [0.3, 0.4, 0.35]: no win for the failures (a tie with the worst real score
    would give one), every paired difference a loss, and the largest one."""
    table = compare(seed_table(failed=[np.inf] * 3, real=[0.3, 0.4, 0.35])).set_index("label")
    assert table.loc["real", "best"] and table.loc["real", "wins"] == 3
    assert table.loc["failed", "wins"] == 0 and table.loc["failed", "failed"] == 3
    assert table.loc["failed", "p"] == pytest.approx(2 / 2**3) and table.loc["failed", "p_best_better"] == 1.0
    # one failure among real scores is the largest loss: it outranks every real difference
    mixed = compare(seed_table(a=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], b=[1.5, 2.5, 3.5, 4.5, 5.5, np.inf]))
    b = mixed.set_index("label").loc["b"]
    assert b["p"] == pytest.approx(wilcoxon([0.5, 0.5, 0.5, 0.5, 0.5, 100.0]).pvalue)
    assert b["median"] == pytest.approx(4.0) and b["wins"] == 0
    # even where the real scores spread wide, a failure's loss exceeds every real difference
    wide = worse_than_every_run(seed_table(best=[0.0, 5.0], row=[5.0, np.inf]))
    assert wide.loc[1, "row"] - wide.loc[1, "best"] > wide.loc[0, "row"] - wide.loc[0, "best"]


def test_a_seed_every_row_failed_is_won_by_none():
    table = compare(seed_table(a=[np.inf, 1.0], b=[np.inf, 2.0])).set_index("label")
    assert table["wins"].to_dict() == {"a": 1, "b": 0}


def test_a_tie_in_the_median_goes_to_the_lower_mean_then_to_the_name():
    # equal medians (2.0); b's mean is lower: b is best whatever the column order
    for order in (["a", "b"], ["b", "a"]):
        matrix = seed_table(a=[1.0, 2.0, 9.0], b=[1.0, 2.0, 3.0])[order]
        assert best_row(matrix) == "b"
    assert best_row(seed_table(z=[1.0, 2.0], y=[1.0, 2.0])) == "y"  # equal in everything: the name
    assert best_row(seed_table(a=[np.inf], b=[np.inf])) is None  # no score at all: no best


def _runs(repeats, final):
    return pd.DataFrame(
        {
            "seed": [0, 0, 1, 1],
            "label": ["a", "b", "a", "b"],
            "incumbent_repeats": repeats,
            "final_objective": final,
            "best_objective": [0.1, 0.2, 0.3, 0.1],
        }
    )


def test_the_score_is_the_retrained_one_unless_a_run_was_not_retrained():
    retrained = _runs([3, 3, 3, 3], [0.5, 0.6, 0.7, np.nan])
    assert score_column(retrained) == RETRAINED
    # a retrained run whose retrainings all failed scores +inf: the worst, not missing
    assert score_matrix(retrained).loc[1, "b"] == math.inf
    not_retrained = _runs([0, 0, 3, 3], [np.nan, np.nan, 0.7, 0.2])
    assert score_column(not_retrained) == BEST
    assert score_matrix(not_retrained).to_numpy().tolist() == [[0.1, 0.2], [0.3, 0.1]]
