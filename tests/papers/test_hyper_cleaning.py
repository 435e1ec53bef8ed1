"""--paper hyper_cleaning (papers/hyper_cleaning.py): the value of d, on a real sweep of
suite=hyper_cleaning's rows at digits size, checked against the run files read directly."""

import json

import numpy as np
import pytest
from scipy.stats import wilcoxon

from bench.records import RUN_FILE
from tests.helpers import run_bench, run_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("hyper_cleaning")
    done = run_bench(
        "-m",
        "task=hyper_cleaning",
        "task.dataset=digits",
        "task.train_images=null",
        "task.batch_size=20",
        "+task.space.iterations.fixed=30",
        "budget.evaluations=null",
        "budget.train_steps=150",
        "incumbent_repeats=1",
        "experiment=hyper_cleaning/d1,hyper_cleaning/d10,hyper_cleaning/control,hyper_cleaning/oracle",
        "method=random,default",
        "seed=0,1,2,3,4,5",
        f"hydra.sweep.dir={root / 'sweep'}",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "sweep"


def final_objectives(sweep, mode: str, granularity: str | None, method: str) -> dict[int, float]:
    """Seed -> retrained validation objective, read from the run files."""
    out = {}
    for path in sweep.rglob(RUN_FILE):
        meta = json.loads(path.read_text())
        task = meta["config"]["task"]
        if meta["method"] != method or task["loss_weights"] != mode:
            continue
        if granularity is not None and task["loss_granularity"] != granularity:
            continue
        out[meta["seed"]] = meta["final"]["objective"]
    return out


def test_the_value_of_d_pairs_each_d_with_the_control_d1_and_the_oracle_by_seed(sweep):
    done = run_module("bench.report", str(sweep), "--paper", "hyper_cleaning", cwd=sweep)
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert {"d = 1", "d = 10", "control", "default", "oracle"} <= set(rows)
    d10 = final_objectives(sweep, "tuned", "per_source", "random")
    control = final_objectives(sweep, "ones", None, "random")
    seeds = sorted(set(d10) & set(control))
    assert len(seeds) == 6
    differences = np.array([d10[s] - control[s] for s in seeds])
    p = wilcoxon(differences).pvalue
    assert f"{np.median(differences):+.4g}, p = {p:.2g} (6)" in rows["d = 10"]
    tuned, untuned = (final_objectives(sweep, "oracle", None, m) for m in ("random", "default"))
    best = min((tuned, untuned), key=lambda values: np.median(list(values.values())))  # the oracle's best row
    assert f"| {np.median(list(best.values())):.4g} " in rows["oracle"]
    assert "The value of d" in text
    # the value of d leads the report (after the verdict), with its figure drawn from the same runs
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[1].startswith("## The value of d"), headings[:3]
    assert (sweep / "report" / "paper.png").exists() and (sweep / "report" / "paper.svg").exists()


def test_the_value_of_d_figure_holds_each_method_at_each_d_and_the_bounds_as_levels(sweep):
    from bench.report.load import load_runs
    from papers.hyper_cleaning import value_of_d

    runs, trials = load_runs(sweep)
    figure = value_of_d(runs, trials).figure
    validation = figure[figure["panel"] == "retrained validation cross-entropy"]
    random_d10 = validation[(validation["series"].str.startswith("random")) & (validation["x"] == 10)]
    expected = final_objectives(sweep, "tuned", "per_source", "random")
    assert random_d10["median"].tolist() == pytest.approx([np.median(list(expected.values()))])
    levels = validation[validation["x"].isna()]
    assert sorted(name.split(":")[0] for name in levels["series"]) == ["control", "default", "oracle"]
    default = final_objectives(sweep, "ones", None, "default")
    assert levels[levels["series"].str.startswith("default")]["median"].tolist() == pytest.approx(
        [np.median(list(default.values()))]
    )
