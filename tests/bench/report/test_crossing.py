"""The report against the number of hyperparameters d: a sweep over ``task.l2_granularity`` is one
setting per d (``mnist_mlp[d=2]``), compared and tested within each d, lined up against d
(``analysis.crossing``), read in words (``verdict.crossing``) and beside DrMAD's per-unit result
(``--paper many_hyperparameters``). The numbers are checked against the run files read directly
and against scipy's signed-rank test."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from bench.records import RUN_FILE
from bench.report import analysis, scores, verdict
from bench.report.load import dimensions, find_runs, load_runs
from tests.bench.test_groups import FIXED_STEP, TINY_MNIST
from tests.helpers import run_bench, run_module

SEEDS = (0, 1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real sweep on digits (64-6-10): d = 1 (universal) and 2 (per_layer), random, drmad and the
    default configuration, 6 seeds, one budget of training steps."""
    root = tmp_path_factory.mktemp("crossing")
    done = run_bench(
        "-m",
        *TINY_MNIST,
        *FIXED_STEP,
        "task.l2_granularity=universal,per_layer",
        "method=random,drmad,default",
        f"seed={','.join(map(str, SEEDS))}",
        "budget.evaluations=null",
        "budget.train_steps=48",
        "incumbent_repeats=1",
        "progress=false",
        f"hydra.sweep.dir={root / 'sweep'}",
        cwd=root,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "sweep"


def _recorded(root):
    """(granularity, method, seed) -> the run.json of each run, read directly."""
    out = {}
    for folder in find_runs(root):
        meta = json.loads((folder / RUN_FILE).read_text())
        out[(meta["config"]["task"]["l2_granularity"], meta["method"], meta["seed"])] = meta
    return out


@pytest.mark.slow
def test_each_d_is_a_setting_compared_within_itself(sweep):
    runs, _ = load_runs(sweep)
    recorded = _recorded(sweep)
    assert sorted(runs["task"].unique()) == ["mnist_mlp[d=1]", "mnist_mlp[d=2]"]
    assert set(runs["task_name"]) == {"mnist_mlp"} and sorted(runs["label"].unique()) == ["default", "drmad", "random"]
    for row in runs.itertuples():  # d from the run's own record, and from its space when not recorded
        meta = recorded[("universal" if row.dimensions == 1 else "per_layer", row.method, row.seed)]
        assert row.dimensions == meta["dimensions"] == len(meta["space_groups"].get("l2", ["l2"]))
        assert dimensions(meta["experiment"]["identity"], meta["space_groups"]) == meta["dimensions"]
        assert row.method_kind == ("hypergradient" if row.method == "drmad" else "black-box")
    kinds = analysis.crossing(runs).drop_duplicates("method").set_index("method")["kind"]
    assert kinds.to_dict() == {"default": "untuned", "drmad": "hypergradient", "random": "black-box"}


@pytest.mark.slow
def test_the_crossing_table_holds_the_medians_and_paired_tests_of_the_run_files(sweep):
    runs, _ = load_runs(sweep)
    table = analysis.crossing(runs)
    recorded = _recorded(sweep)
    assert sorted(table["dimensions"].unique()) == [1, 2] and len(table) == 6
    for row in table.itertuples():
        granularity = "universal" if row.dimensions == 1 else "per_layer"
        finals = [recorded[(granularity, row.method, s)]["final"] for s in SEEDS]
        assert row.score_median == pytest.approx(np.median([f["objective"] for f in finals]))
        assert row.test_median == pytest.approx(np.median([f["test_metric"] for f in finals]))
        assert row.score_q25 == pytest.approx(np.quantile([f["objective"] for f in finals], 0.25))
    for d, at in table.groupby("dimensions"):  # each d's best and its p-values: scipy on the files
        granularity = "universal" if d == 1 else "per_layer"
        values = {m: [recorded[(granularity, m, s)]["final"]["objective"] for s in SEEDS] for m in at["method"]}
        best = at.loc[at["standing"] == "best", "method"].item()
        assert best == min(values, key=lambda m: (np.median(values[m]), np.mean(values[m]), m))
        others = at[at["standing"] != "best"]
        raw = [wilcoxon(values[m], values[best]).pvalue for m in others["method"]]
        holm = np.minimum(1, np.maximum.accumulate(np.sort(raw) * (len(raw) - np.arange(len(raw)))))
        assert sorted(others["p_holm"]) == pytest.approx(sorted(holm))


@pytest.mark.slow
def test_the_report_shows_the_crossing_and_drmads_per_unit_result(sweep):
    done = run_module("bench.report", str(sweep), "--paper", "many_hyperparameters", cwd=sweep, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "## Against the number of hyperparameters" in done.stdout
    assert (sweep / "report" / "crossing.png").exists()
    shown = pd.read_csv(sweep / "report" / "crossing_validation.csv")
    assert sorted(shown["dimensions"].unique()) == [1, 2]
    recorded = _recorded(sweep)
    start = np.median([recorded[("per_layer", "default", s)]["final"]["test_metric"] for s in SEEDS])
    after = np.median([recorded[("per_layer", "drmad", s)]["final"]["test_metric"] for s in SEEDS])
    assert f"{start:.2f}% -> {after:.2f}% (digits, d = 2," in done.stdout  # at the largest d that ran


def _cell(d, method, kind, median, standing, p=0.01):
    return {
        "task": "t",
        "dimensions": d,
        "method": method,
        "kind": kind,
        "runs": 10,
        "score_median": median,
        "standing": standing,
        "p_holm": np.nan if standing == "best" else p,
    }


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ("behind", "overtake the black-box methods from d = 100 on"),
        ("not separable", "at no d do the hypergradient methods overtake"),
    ],
)
def test_the_crossing_in_words_names_the_d_from_which_hypergradients_overtake(last, expected):
    """Hypergradients overtake at a d where a hypergradient method is best and every black-box
    tuner is behind it; the crossing is the smallest d from which that holds at every larger d."""
    cells = [
        _cell(1, "gp_ei", "black-box", 0.1, "best"),
        _cell(1, "drmad", "hypergradient", 0.2, "behind"),
        _cell(10, "drmad", "hypergradient", 0.1, "best"),
        _cell(10, "gp_ei", "black-box", 0.2, "not separable", 0.3),
        _cell(100, "drmad", "hypergradient", 0.1, "best"),
        _cell(100, "gp_ei", "black-box", 0.2, "behind"),
        _cell(100, "default", "untuned", 0.05, "ahead"),  # the untuned row is on neither side
        _cell(1000, "drmad", "hypergradient", 0.1, "best"),
        _cell(1000, "gp_ei", "black-box", 0.2, last),
    ]
    (text,) = verdict.crossing(pd.DataFrame(cells).sort_values(["dimensions", "score_median"]))
    assert expected in text
    assert "d = 1: best gp_ei (black-box, median 0.1); every hypergradient method behind it" in text
    assert "d = 10: best drmad (hypergradient, median 0.1); best black-box gp_ei at 0.2, not separable" in text
    assert "smallest two-sided signed-rank p-value" not in text  # 10 seeds can separate


@pytest.mark.slow
def test_a_task_run_at_one_d_has_no_crossing(sweep):
    runs, _ = load_runs(sweep)
    one = runs[runs["dimensions"] == 2]
    assert analysis.crossing(one).empty
    assert scores.per_task(one)["task"].unique().tolist() == ["mnist_mlp[d=2]"]  # still labelled by its d
