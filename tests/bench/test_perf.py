"""The benchmark commands run for real, at tiny sizes: their records hold what the docs promise.
No timing is asserted (speed goals are read from the printed tables, not tested)."""

import json
import statistics

import pytest

from tests.helpers import run_module


def perf(tmp_path, *arguments: str):
    """``python -m bench.perf ARGUMENTS --json FILE``: the finished process and its records."""
    out = tmp_path / "records.json"
    done = run_module("bench.perf", *arguments, "--json", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return done, json.loads(out.read_text())


def test_methods_benchmark_records_one_median_per_method_and_size(tmp_path):
    done, records = perf(tmp_path, "methods", "--sizes", "3,5", "--repeats", "2", "--methods", "random,gp_ei")
    assert [(r["method"], r["n_observations"]) for r in records] == [
        ("random", 3),
        ("random", 5),
        ("gp_ei", 3),
        ("gp_ei", 5),
    ]
    assert all(r["ask_seconds_median"] == statistics.median(r["ask_seconds"]) for r in records)
    assert "| gp_ei" in done.stdout


def test_hypergrad_benchmark_reports_every_method_and_length_against_training(tmp_path):
    _, records = perf(tmp_path, "hypergrad", "--steps", "3,20", "--hidden", "2", "--repeats", "1")
    assert {(r["method"], r["T"]) for r in records} == {
        (m, t) for m in ("training", "drmad K=T", "drmad K=T/10", "exact") for t in (3, 20)
    }
    for r in records:
        training = next(x for x in records if x["method"] == "training" and x["T"] == r["T"])
        assert r["seconds_over_training"] == r["seconds"] / training["seconds"]
        assert r["K"] == {"training": 0, "drmad K=T/10": max(1, round(r["T"] / 10))}.get(r["method"], r["T"])
        if r["K"]:  # seconds added per reverse step, over seconds per training step
            per_step = training["seconds"] / r["T"]
            assert r["reverse_step_over_training_step"] == pytest.approx(
                (r["seconds"] - training["seconds"]) / r["K"] / per_step
            )
        assert r["peak_bytes"] >= r["peak_above_start_bytes"] >= 0


def test_agreement_is_perfect_where_the_trajectory_is_a_line(tmp_path):
    overrides = "+task.space.hidden_nodes.fixed=3 task.space.learning_rate.default=0.5"
    _, records = perf(tmp_path, "agreement", "--tasks", "bikeshare", "--steps", "1", "--overrides", overrides)
    assert [r["method"] for r in records] == ["drmad K=T", "drmad K=T/10"]
    assert all(r["config"]["hidden_nodes"] == 3 and r["config"]["learning_rate"] == 0.5 for r in records)
    assert all(abs(r["cosine"] - 1) < 1e-12 and abs(r["norm_ratio"] - 1) < 1e-12 for r in records)


def test_bad_benchmark_arguments_are_one_line_errors(tmp_path):
    for arguments in (["hypergrad", "--steps", "0"], ["methods", "--sizes", "x"], ["agreement", "--tasks", "nope"]):
        done = run_module("bench.perf", *arguments, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
