"""The verdict in words (bench/report/verdict.py) says what the table of who wins holds, and no more."""

import numpy as np

from bench.report.scores import compare
from bench.report.verdict import task_verdict
from tests.helpers import seed_table


def verdict(**columns):
    return task_verdict("task", compare(seed_table(**columns)).assign(score="final_objective"))


def test_a_row_worse_on_every_one_of_enough_seeds_is_behind_and_noise_is_not_separable():
    base = np.arange(8.0)
    text = verdict(good=base, bad=base + 1.0, noisy=base + np.array([0.5, -0.4] * 4))  # medians 3.5, 4.5, 3.55
    assert text.startswith("**task** (8 seeds, on the retrained validation objective; lower is better): best **good**")
    assert "Behind it (" in text and "bad (p = 0.016)" in text  # 2 / 2^8, Holm over two rows
    assert "Not separable from it" in text and "noisy (p = " in text
    assert "cannot separate" not in text


def test_three_seeds_separate_nothing_and_the_verdict_says_why():
    text = verdict(a=[1.0, 2.0, 3.0], b=[2.0, 3.0, 4.0])
    assert "Not separable from it" in text and "b (p = 0.25)" in text
    assert "With 3 paired seeds the smallest two-sided p-value is 0.25: these seeds cannot separate" in text


def test_six_seeds_separate_nothing_once_holm_corrects_over_three_rows():
    """2 / 2^6 = 0.031 is below 0.05, but Holm's correction over 3 rows lifts the smallest to 0.094."""
    base = np.arange(6.0)
    text = verdict(a=base, b=base + 1, c=base + 2, d=base + 3)
    assert "the smallest two-sided p-value is 0.031, 0.094 after Holm's correction over 3 rows" in text
    assert "b (p = 0.094)" in text and "Behind it" not in text


def test_a_best_row_with_failures_shows_the_median_of_its_scored_runs():
    text = verdict(a=[1.0, 1.0, 1.0, np.inf], b=[2.0, 3.0, 4.0, 5.0])
    assert "best **a** (median 1 over its 3 scored runs, 1 failed)" in text


def test_a_row_better_on_the_paired_seeds_than_the_best_median_is_named_as_such():
    """Bimodal scores: the best median goes to a row the other beats on most seeds, by a significant
    paired test (signed ranks: W+ = 42 of 210 with 20 pairs)."""
    a = np.array([1.0] * 12 + [9.0] * 8)  # median 1
    b = np.array([0.9] * 8 + [2.0] * 4 + [5.0] * 8)  # median 2; lower than a on 16 of 20 seeds
    text = verdict(a=a, b=b)
    assert "best **a** (median 1)" in text
    assert "But better than it on the paired seeds" in text and "b (better on 16 of 20 seeds, p = " in text
    assert "the median and the paired test disagree" in text and "Behind it" not in text


def test_a_task_where_every_run_failed_has_no_best():
    assert "no run produced a score" in verdict(a=[np.inf, np.inf], b=[np.inf, np.inf])
