"""The fair-baseline table over real text runs: its numbers recomputed from the run files."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.papers import _budget
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


def test_the_fair_baseline_table_pairs_tuned_rows_with_the_default_by_seed(text_runs):
    done = run_module("bench.report", str(text_runs), "--table-only", "--paper", "fair_baseline_text", cwd=text_runs)
    assert done.returncode == 0, done.stderr
    paper = done.stdout.split("| model")[1]
    accuracy = {}
    for path in text_runs.glob("*/*/run.json"):
        meta = json.loads(path.read_text())
        accuracy.setdefault((meta["task"], meta["method"]), {})[meta["seed"]] = meta["final"]["test_metric"]
    rows = {}
    for line in paper.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[2])] = cells
    assert len(rows) == 5
    for (task, method), by_seed in accuracy.items():
        model = "logistic regression" if task == "text_linear" else "recurrent network"
        tuning = method if method != "default" else "none"
        key = next(k for k in rows if k[0].startswith(model) and k[1].startswith(tuning))
        cells = rows[key]
        values = np.array([by_seed[s] for s in sorted(by_seed)])
        assert cells[1] == "rotten_tomatoes" and cells[4] == "3"
        assert cells[6].startswith(f"{np.median(values):.3f} [")
        assert cells[7] == f"{np.std(values, ddof=1):.3f}"
        if method == "default":
            assert cells[3] == "-" and cells[8] == "-"
        else:
            default = accuracy[(task, "default")]
            gap = np.median([by_seed[s] - default[s] for s in by_seed])
            assert cells[3] == "2 s" and cells[8] == f"{gap:+.3f}"
            assert cells[10] in ("yes", "no")


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
    assert _budget(rows) == shown


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
    from bench.runner import RunResult, Trial
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


def _claims(done):
    """claim -> pass / fail, from the paper table (the lines after its "| claim" header)."""
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| claim"))
    rows = [line.split("|")[1:-1] for line in lines[start + 2 :] if line.startswith("|")]
    return {cells[0].strip(): cells[-1].strip() for cells in rows}


def test_lstm_odyssey_passes_when_only_the_learning_rate_matters(tmp_path):
    _random_search_runs(tmp_path, lambda c: (np.log10(c["learning_rate"]) + 1) ** 2)
    done = run_module("bench.report", str(tmp_path), "--table-only", "--paper", "lstm_odyssey", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _claims(done) == {
        "most important hyperparameter": "pass",
        "learning rate's share of variance": "pass",
        "momentum's share (matters little)": "pass",
    }


def test_lstm_odyssey_fails_when_momentum_matters_instead(tmp_path):
    _random_search_runs(tmp_path, lambda c: np.log10(1 - c["momentum"]) ** 2)
    done = run_module("bench.report", str(tmp_path), "--table-only", "--paper", "lstm_odyssey", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(_claims(done).values()) == {"fail"}
    assert "momentum" in done.stdout.split("most important hyperparameter")[1].split("\n")[0]


# ------------------------------------------------------------------------------ bo_vs_hypergrad
def test_bo_vs_hypergrad_compares_drmad_with_exact_at_equal_steps(tmp_path):
    from tests.helpers import TINY_FIXED

    done = run_bench(
        "-m",
        *TINY_FIXED,
        "method=drmad,exact_hypergrad,random",
        "seed=0,1",
        "budget.evaluations=null",
        "budget.train_steps=240",
        "incumbent_repeats=1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_module("bench.report", str(tmp_path), "--table-only", "--paper", "bo_vs_hypergrad", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    claims = _claims(done)
    # DrMAD with K = T takes as many reverse steps as exact reverse mode: no saving in training steps
    # (its saving is memory: bench.perf hypergrad)
    assert claims["drmad is cheaper per hyper-iteration"] == "fail"
    assert "1x fewer training steps" in done.stdout
    assert claims["drmad tunes as well as exact"] in {"pass", "fail"}
    missing = run_module(
        "bench.report",
        str(next((tmp_path / "sweep").glob("*_random_s0"))),
        "--table-only",
        "--paper",
        "bo_vs_hypergrad",
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "needs drmad and exact_hypergrad runs" in missing.stderr
