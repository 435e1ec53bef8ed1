"""The fair-baseline table over real text runs: its numbers recomputed from the run files."""

import json

import numpy as np
import pytest

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
    done = run_module("bench.report", str(text_runs), "--paper", "fair_baseline_text", cwd=text_runs)
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


def test_the_table_names_the_preset_when_there_are_no_text_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_module("bench.report", str(tmp_path), "--paper", "fair_baseline_text", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ")
