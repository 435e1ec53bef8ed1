"""The paper tables (papers/) over real runs: their numbers recomputed from the run files, read from the
tables' DataFrames (claims and detail), not from rendered Markdown."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.report import scores
from bench.report.load import load_runs
from bench.report.papers import paper_table
from papers.fair_baseline import budget_text
from tests.helpers import run_bench, run_module

TINY_RNN = [
    "task.max_vocabulary=300",
    "task.max_length=12",
    "+task.space.cell.fixed=gru",
    "+task.space.embedding_size.fixed=16",
    "+task.space.hidden_units.fixed=20",
    "+task.space.layers.fixed=1",
    "+task.space.epochs.fixed=1",
    "+task.space.batch_size.fixed=256",
    "+task.space.input_noise.fixed=0",
]


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fair")
    common = ["budget.evaluations=null", "budget.seconds=2", "incumbent_repeats=1", "seed=0,1,2"]
    for task, methods, extra in (
        ("text_linear", "default,random", []),
        ("text_rnn", "default,random,drmad", TINY_RNN),
    ):
        done = run_bench(
            "-m", f"task={task}", f"method={methods}", *common, *extra, f"hydra.sweep.dir={root / task}", cwd=root
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.slow
def test_the_fair_baseline_table_pairs_tuned_rows_with_the_default_by_seed(text_runs):
    found = paper_table("fair_baseline_text", *load_runs(text_runs))
    accuracy = {}
    for path in text_runs.glob("*/*/run.json"):
        meta = json.loads(path.read_text())
        accuracy.setdefault((meta["task"], meta["method"]), {})[meta["seed"]] = meta["final"]["test_metric"]
    rows = found.detail
    assert len(rows) == 5
    claims = found.claims.set_index("claim")
    for (task, method), by_seed in accuracy.items():
        model = "logistic regression" if task == "text_linear" else "recurrent network"
        tuning = method if method != "default" else "none"
        row = rows[rows["model"].str.startswith(model) & rows["tuning"].str.startswith(tuning)].iloc[0]
        values = np.array([by_seed[s] for s in sorted(by_seed)])
        assert row["dataset"] == "rotten_tomatoes" and row["seeds"] == 3
        assert row["test accuracy: median [IQR]"].startswith(f"{np.median(values):.3f} [")
        assert row["sd"] == f"{np.std(values, ddof=1):.3f}"
        if method == "default":
            assert row["budget"] == "-" and row["gap to default: median"] == "-"
        else:
            default = accuracy[(task, "default")]
            gaps = [by_seed[s] - default[s] for s in by_seed]
            gap = np.median(gaps)
            spread = max(np.std(values, ddof=1), np.std(list(default.values()), ddof=1))
            assert row["budget"] == "2 s" and row["gap to default: median"] == f"{gap:+.3f}"
            assert row["gap > spread"] == ("yes" if gap > spread else "no")  # signed: a loss is not a gain
            claim = claims.loc[f"tuning by {method} beats the {task} default by more than the seed-to-seed spread"]
            assert claim["holds"] == bool(gap > spread) and claim["published"] == "not known"
    done = run_module("bench.report", str(text_runs), "--table-only", "--paper", "fair_baseline_text", cwd=text_runs)
    assert done.returncode == 0 and "| recurrent network (GRU / LSTM, Greff et al. 2017)" in done.stdout


@pytest.mark.parametrize(
    ("seconds", "steps", "evaluations", "shown"),
    [
        (100.0, None, None, "100 s"),
        (2.5, None, None, "2.5 s"),
        (None, 19140, None, "19,140 steps"),
        (None, None, 30, "30 trials"),
    ],
)
def test_a_budget_is_shown_in_its_unit_with_thousands_separated(seconds, steps, evaluations, shown):
    rows = pd.DataFrame(
        {"budget_seconds": [seconds] * 2, "budget_train_steps": [steps] * 2, "budget_evaluations": [evaluations] * 2}
    )
    assert budget_text(rows) == shown


def test_the_table_names_the_preset_when_there_are_no_text_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_module("bench.report", str(tmp_path), "--table-only", "--paper", "fair_baseline_text", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ")


# ------------------------------------------------------------------------------ lstm_odyssey
GREFF_SPACE = {
    "hidden_units": {"type": "int", "low": 20, "high": 200, "log": True, "default": 128},
    "learning_rate": {"type": "real", "low": 1e-3, "high": 3.0, "log": True, "default": 0.1},
    "momentum": {"type": "real", "low": 0.0, "high": 0.99, "log_complement": True, "default": 0.9},
    "input_noise": {"type": "real", "low": 0.0, "high": 1.0, "default": 0.0},
}


def _random_search_runs(root, objective, seeds=2, trials=40):
    """Runs of random search on text_rnn written through the real store, with a known objective."""
    from bench.identity import digest
    from bench.protocols import Evaluation
    from bench.records import RunResult, Trial
    from bench.space import SearchSpace
    from bench.store import RunStore

    space = SearchSpace.from_config(GREFF_SPACE)
    identity = {"task": {"name": "text_rnn", "space": GREFF_SPACE}, "method": {"name": "random"}}
    for seed in range(seeds):
        meta = {"run_id": f"text_rnn-random-s{seed}", "task": "text_rnn", "method": "random", "seed": seed}
        meta |= {"test_metric": "accuracy", "budget": {"evaluations": trials}}
        meta["experiment"] = {"id": digest(identity), "identity": identity}
        store = RunStore.create(root / f"s{seed}", meta, "accuracy")
        made = []
        for i, config in enumerate(space.sample(trials, np.random.default_rng(seed))):
            evaluation = Evaluation(
                objective=objective(config), test={"accuracy": 0.5}, metrics={"dataset": "rotten_tomatoes"}
            )
            made.append(Trial(i, config, evaluation, i, 0.0, 1.0, i + 1.0, 10 * (i + 1), 0.0))
            store.append(made[-1])
        store.finish(RunResult(made, "budget", float(trials), made[0], [made[0].evaluation], [0]), "completed")


def _claims(root, name):
    """claim -> holds (True, False or None), from the paper table's claims."""
    return paper_table(name, *load_runs(root)).claims.set_index("claim")["holds"].to_dict()


def test_lstm_odyssey_passes_when_only_the_learning_rate_matters(tmp_path):
    _random_search_runs(tmp_path, lambda c: (np.log10(c["learning_rate"]) + 1) ** 2)
    assert _claims(tmp_path, "lstm_odyssey") == {
        "most important hyperparameter": True,
        "learning rate's share of variance": True,
        "momentum's share (matters little)": True,
    }


def test_lstm_odyssey_fails_when_momentum_matters_instead(tmp_path):
    _random_search_runs(tmp_path, lambda c: np.log10(1 - c["momentum"]) ** 2)
    assert set(_claims(tmp_path, "lstm_odyssey").values()) == {False}
    claims = paper_table("lstm_odyssey", *load_runs(tmp_path)).claims.set_index("claim")
    assert claims.loc["most important hyperparameter", "ours"] == "momentum"
    done = run_module("bench.report", str(tmp_path), "--table-only", "--paper", "lstm_odyssey", cwd=tmp_path)
    assert done.returncode == 0 and "| most important hyperparameter" in done.stdout


# ------------------------------------------------------------------------------ bo_vs_hypergrad
@pytest.mark.slow
def test_bo_vs_hypergrad_compares_drmad_with_exact_at_equal_steps(tmp_path):
    from tests.helpers import TINY_FIXED

    done = run_bench(
        "-m",
        *TINY_FIXED,
        "method=drmad,exact_hypergrad,truncated_hypergrad,random",
        "seed=0,1",
        "budget.evaluations=null",
        "budget.train_steps=240",
        "incumbent_repeats=1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = paper_table("bo_vs_hypergrad", *load_runs(tmp_path)).claims.set_index("claim")
    # DrMAD with K = T takes as many reverse steps as exact reverse mode: no saving in training steps
    # (its saving is memory: bench.perf hypergrad)
    assert found.loc["drmad is cheaper per hyper-iteration", "holds"] in (False,)
    assert found.loc["drmad is cheaper per hyper-iteration", "ours"] == "1x fewer training steps per hyper-iteration"
    assert found.loc["drmad tunes as well as exact", "holds"] in {True, False}
    assert found.loc["drmad against the best black-box method (random)", "holds"] is None
    runs, _ = load_runs(tmp_path)
    family = scores.best_row(scores.score_matrix(runs[runs["method"] != "random"]))
    if family != "drmad":  # the family's best row, when it is not DrMAD's, has its own line
        assert found.loc[f"{family}, the family's best, against the best black-box method (random)", "holds"] is None
    else:
        assert not any("family's best" in claim for claim in found.index)
    missing = run_module(
        "bench.report",
        str(next((tmp_path / "sweep").glob("*_random_s0"))),
        "--table-only",
        "--paper",
        "bo_vs_hypergrad",
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "needs drmad and exact_hypergrad runs" in missing.stderr
