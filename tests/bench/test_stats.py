"""Paired statistics on score tables with known answers."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from bench.stats import holm, paired_against_best


def scores(**columns):
    return pd.DataFrame(columns, index=pd.RangeIndex(len(next(iter(columns.values()))), name="seed"))


def test_a_method_better_on_every_seed_is_best_wins_every_seed_and_is_separable():
    rng = np.random.default_rng(0)
    base = rng.normal(size=8)
    table = paired_against_best(scores(good=base - 1.0, bad=base + rng.uniform(0.5, 1, 8), same=base)).set_index(
        "method"
    )
    assert table["best"].to_dict() == {"good": True, "bad": False, "same": False}
    assert table.loc["good", "wins"] == 8 and table.loc["bad", "wins"] == 0 and table.loc["same", "wins"] == 0
    assert math.isnan(table.loc["good", "p"])
    # the exact two-sided signed-rank p-value when every one of n = 8 differences has the same sign: 2 / 2^8
    assert table.loc["bad", "p"] == pytest.approx(2 / 2**8) and table.loc["same", "p"] == pytest.approx(2 / 2**8)
    assert table.loc["bad", "p_holm"] == pytest.approx(2 * 2 / 2**8)  # Holm: the smaller of two p-values times 2
    assert table.loc["bad", "p_holm"] < 0.05


def test_identical_methods_are_not_separable_and_share_every_win():
    values = np.arange(6.0)
    table = paired_against_best(scores(a=values, b=values.copy())).set_index("method")
    assert table["wins"].tolist() == [6, 6]
    assert table.loc["b", "p"] == 1.0 and table.loc["b", "p_holm"] == 1.0


def test_noise_is_not_significant_and_p_is_scipys():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=10), rng.normal(size=10)
    table = paired_against_best(scores(a=a, b=b)).set_index("method")
    loser = table.index[~table["best"]][0]
    winner = table.index[table["best"]][0]
    expected = wilcoxon({"a": a, "b": b}[loser], {"a": a, "b": b}[winner]).pvalue
    assert table.loc[loser, "p"] == pytest.approx(expected) and expected > 0.05


def test_missing_seeds_pair_only_what_both_ran_and_failures_count_as_the_worst():
    table = paired_against_best(
        scores(a=[1.0, 2.0, 3.0, 4.0], b=[2.0, np.inf, 4.0, np.nan], c=[5.0, 5.0, np.nan, np.nan])
    ).set_index("method")
    assert table.loc["a", "best"] and table.loc["b", "paired"] == 3 and table.loc["c", "paired"] == 2
    assert table.loc["b", "seeds"] == 3 and table.loc["c", "seeds"] == 2
    assert table.loc["b", "wins"] == 0  # its failure (inf) is scored as the worst seen, 5.0


def test_holm_matches_the_step_down_procedure_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan])
    # sorted 0.01, 0.03, 0.04 with multipliers 3, 2, 1, made monotone
    np.testing.assert_allclose(holm(p)[:3], [0.03, 0.06, 0.06])
    assert math.isnan(holm(p)[3])
