import json
from io import StringIO

import numpy as np
import pandas as pd
import pytest

from tests.helpers import TINY, run_bench, run_module


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real sweep: 2 methods x 2 seeds, through Hydra's multirun."""
    root = tmp_path_factory.mktemp("sweep")
    done = run_bench(
        "-m",
        *TINY,
        "method=default,random",
        "seed=0,1",
        "budget.evaluations=3",
        "incumbent_repeats=2",
        f"hydra.sweep.dir={root / 'sweep'}",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "sweep", done


def expected_rows(directory):
    """The report's numbers recomputed straight from each run's files."""
    rows = {}
    for path in sorted(directory.glob("*/run.json")):
        meta = json.loads(path.read_text())
        trials = pd.read_parquet(path.parent / "trials.parquet")
        rows.setdefault(meta["method"], []).append(
            (
                trials.loc[trials["status"] == "ok", "objective"].min(),
                meta["final"]["test_metric"],
                np.mean([e["metrics"]["rubric"] for e in meta["final"]["evaluations"]]),
            )
        )
    return rows


def test_the_report_aggregates_every_run_of_a_sweep(sweep):
    directory, _ = sweep
    done = run_module("bench.report", str(directory), "--format", "csv", cwd=directory)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(StringIO(done.stdout)).set_index("method")
    assert table["runs"].to_dict() == {"default": 2, "random": 2}
    assert table.loc["random", "trials"] == 3 and table.loc["default", "trials"] == 1
    for method, rows in expected_rows(directory).items():
        best, test, rubric = map(np.array, zip(*rows, strict=True))
        assert table.loc[method, "best_median"] == pytest.approx(np.median(best), rel=1e-5)
        assert table.loc[method, "best_q25"] == pytest.approx(np.quantile(best, 0.25), rel=1e-5)
        assert table.loc[method, "test_median"] == pytest.approx(np.median(test), rel=1e-5)
        assert table.loc[method, "rubric_retrained"] == pytest.approx(rubric.mean())


def test_the_sweep_prints_its_table_and_saves_it(sweep):
    directory, done = sweep
    assert "| bikeshare | random" in done.stdout and "| bikeshare | default" in done.stdout
    assert f"python -m bench.report {directory}" in done.stdout
    assert (directory / "report.md").read_text().startswith("| task")


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_formats(sweep, fmt):
    directory, _ = sweep
    done = run_module("bench.report", str(directory), "--format", fmt, cwd=directory)
    assert done.returncode == 0
    assert ("\\begin{tabular}" in done.stdout) == (fmt == "latex")
    assert "random" in done.stdout and "default" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--format", "xml"], "error: --format 'xml': allowed formats are markdown, csv, latex"),
        (["/no/such/dir"], "error: /no/such/dir: no such directory"),
    ],
)
def test_report_errors_are_one_line(sweep, arguments, message):
    directory, _ = sweep
    arguments = [str(directory), *arguments] if arguments[0].startswith("--") else arguments
    done = run_module("bench.report", *arguments, cwd=directory)
    assert done.returncode == 2 and done.stderr.strip() == message
