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


def test_methods_benchmark_against_the_dimension_embeds_the_task_in_each(tmp_path):
    arguments = ["--dims", "3,8", "--sizes", "3", "--repeats", "1", "--methods", "random,cmaes"]
    done, records = perf(tmp_path, "methods", *arguments)
    assert [(r["method"], r["dimensions"], r["task"]) for r in records] == [
        ("random", 3, "branin"),
        ("cmaes", 3, "branin"),
        ("random", 8, "branin"),
        ("cmaes", 8, "branin"),
    ]
    assert "d=8, n=3" in done.stdout and "embedded in d = 3,8 dimensions" in done.stdout


@pytest.mark.slow
def test_methods_benchmark_on_hyper_cleaning_times_each_number_of_loss_weights_and_records_refusals(tmp_path):
    arguments = ["--task", "hyper_cleaning", "--dataset", "digits", "--dims", "1,1000", "--sizes", "3"]
    done, records = perf(tmp_path, "methods", *arguments, "--repeats", "1", "--methods", "random,cmaes")
    timed = [(r["method"], r["dimensions"], r["tuned"]) for r in records if "refused" not in r]
    assert timed == [("random", 1, 4), ("cmaes", 1, 4), ("random", 1000, 1003)]  # lr, momentum, l2 and d weights
    refused = [r for r in records if "refused" in r]
    assert [(r["method"], r["dimensions"]) for r in refused] == [("cmaes", 1000)]
    assert refused[0]["refused"].startswith("method=cmaes with a full covariance: 1003 numeric hyperparameters")
    assert "refused: cmaes at d = 1000: method=cmaes with a full covariance" in done.stdout
    assert "with d = 1,1000 loss weights" in done.stdout and "d=1000, n=3" in done.stdout
    alone = run_module(
        "bench.perf", "methods", *arguments, "--repeats", "1", "--methods", "cmaes", "--dims", "1000", cwd=tmp_path
    )
    assert alone.returncode == 0 and "refused: cmaes at d = 1000" in alone.stdout, alone.stderr[-2000:]


@pytest.mark.slow
def test_hypergrad_benchmark_reports_every_method_and_length_against_training(tmp_path):
    _, records = perf(tmp_path, "hypergrad", "--steps", "20", "--hidden", "2", "--repeats", "2", "--min-seconds", "0")
    members = ("training", "drmad K=T", "drmad K=T (func)", "drmad K=T/10", "truncated K=T/10", "truncated K=100")
    members += ("implicit i=20",)
    assert {(r["method"], r["T"]) for r in records} == {(m, 20) for m in (*members, "online", "forward", "exact")}
    hvps = {"training": 0, "online": 0, "drmad K=T/10": 2, "truncated K=T/10": 2, "implicit i=20": 30, "forward": 80}
    hvps["truncated K=100"] = 20  # K = min(100, T)
    for r in records:  # each run timed beside a training run in its process: the median of the pairs' ratios
        ratios = [a / b for a, b in zip(r["seconds_all"], r["training_seconds_all"], strict=True)]
        assert len(ratios) == 2 and r["seconds_over_training"] == pytest.approx(statistics.median(ratios))
        assert r["seconds"] == statistics.median(r["seconds_all"]) and r["calls_per_repeat"] == 1
        assert r["K"] == hvps.get(r["method"], r["T"])
        if r["K"]:  # seconds added per reverse step, over seconds per training step
            assert r["reverse_step_over_training_step"] == pytest.approx(
                (r["seconds_over_training"] - 1) * r["T"] / r["K"]
            )
        assert r["peak_bytes"] >= r["peak_above_start_bytes"] >= 0
    assert next(r for r in records if r["method"] == "training")["seconds_over_training"] == 1


@pytest.mark.slow
def test_hypergrad_benchmark_against_d_measures_each_member_at_each_number_of_loss_weights(tmp_path):
    arguments = ["--dims", "1,1000", "--dataset", "digits", "--steps", "10", "--repeats", "1", "--min-seconds", "0"]
    done, records = perf(tmp_path, "hypergrad", *arguments)
    by = {(r["method"], r["d"]): r for r in records}
    assert len(by) == 2 * 10 and all(r["T"] == 10 for r in records)
    for d in (1, 1000):
        assert by[("online", d)]["refused"].endswith("no loss weights")  # online tunes none
        assert by[("exact", d)]["tuned"] == 3 + d and by[("exact", d)]["K"] == 10  # lr, momentum, l2 and d weights
        assert by[("implicit i=20", d)]["tuned"] == 1 + d  # the L2 penalty and the weights
    assert by[("forward", 1)]["K"] == 10 * 4 and by[("forward", 1000)]["refused"].startswith("method.max_tangents=64")
    assert "T=10, d=1,000" in done.stdout and "refused: method.max_tangents=64" in done.stdout


def test_agreement_is_perfect_where_the_trajectory_is_a_line(tmp_path):
    overrides = "+task.space.hidden_nodes.fixed=3 task.space.learning_rate.default=0.5"
    _, records = perf(tmp_path, "agreement", "--tasks", "bikeshare", "--steps", "1", "--overrides", overrides)
    methods = ["drmad K=T", "drmad K=T/10", "truncated K=T/10", "implicit i=10", "implicit i=50", "forward"]
    assert [r["method"] for r in records] == methods
    assert all(r["config"]["hidden_nodes"] == 3 and r["config"]["learning_rate"] == 0.5 for r in records)
    exact = [r for r in records if not r["method"].startswith("implicit")]  # K = T = 1: every reverse pass is exact
    assert all(abs(r["cosine"] - 1) < 1e-12 and abs(r["norm_ratio"] - 1) < 1e-12 for r in exact)
    assert {r["entries"] for r in records} == {"all", "l2"}


TINY_RNN = (
    "task.max_vocabulary=300 task.max_length=12 task.space.embedding_size.low=4 task.space.embedding_size.default=4 "
    "task.space.hidden_units.low=4 task.space.hidden_units.default=4 task.space.batch_size.default=256"
)


@pytest.mark.slow
def test_agreement_sets_t_on_a_task_that_counts_epochs(tmp_path):
    """text_rnn counts its training in epochs: --steps 1 still means T = 1, where DrMAD is exact."""
    _, records = perf(tmp_path, "agreement", "--tasks", "text_rnn", "--steps", "1", "--overrides", TINY_RNN)
    assert [(r["task"], r["T"], r["dataset"]) for r in records] == [("text_rnn", 1, "rotten_tomatoes")] * 6
    assert all(abs(r["cosine"] - 1) < 1e-12 for r in records if not r["method"].startswith("implicit"))


@pytest.mark.slow
def test_text_benchmark_times_cold_disk_and_warm_trials_and_drmad_against_training(tmp_path):
    done, records = perf(tmp_path, "text", "--linear-trials", "2", "--epochs", "1", "--overrides", TINY_RNN)
    linear = [r for r in records if r["benchmark"] == "text_linear"]
    assert len(linear) == 2 and all(r["vectorised"] == [1, 0] for r in linear)  # cold builds, disk reads
    assert all(r["cold_over_warm"] == r["cold_seconds"] / r["warm_seconds"] for r in linear)
    (epoch,) = [r for r in records if r["benchmark"] == "text_rnn_epoch"]
    assert epoch["steps"] == 40 and epoch["config"]["hidden_units"] == 4  # 10,200 texts / 256
    hyper = {r["method"]: r for r in records if r["benchmark"] == "text_rnn_hypergradient"}
    assert set(hyper) == {"drmad K=T (autograd)", "drmad K=T (finite_difference)", "drmad K=T/10 (autograd)"}
    assert hyper["drmad K=T (autograd)"]["cosine_with_autograd_k_t"] == pytest.approx(1)
    assert hyper["drmad K=T (finite_difference)"]["cosine_with_autograd_k_t"] > 0.999
    assert [hyper[m]["reverse_steps"] for m in sorted(hyper)] == [40, 40, 4]
    assert all(r["over_training"] == r["seconds"] / epoch["seconds"] for r in hyper.values())
    assert "| drmad K=T (finite_difference)" in done.stdout


def test_batched_benchmark_times_both_paths_on_the_same_networks(tmp_path):
    done, records = perf(tmp_path, "batched", "--q", "2,4", "--iterations", "60", "--devices", "cpu")
    assert [(r["space"], r["q"], r["device"]) for r in records] == [
        ("fixed shape", 2, "cpu"),
        ("fixed shape", 4, "cpu"),
        ("full space", 2, "cpu"),
        ("full space", 4, "cpu"),
    ]
    for record in records:
        assert record["speedup"] == record["sequential_seconds"] / record["batched_seconds"]
        assert record["same_status"] and record["max_relative_difference"] < 1e-4
    assert "| fixed shape | cpu | 4 |" in done.stdout


def test_importance_benchmark_times_fanova_on_the_tasks_space(tmp_path):
    done, records = perf(tmp_path, "importance", "--trials", "20,30", "--task", "branin")
    assert [(r["trials"], r["hyperparameters"]) for r in records] == [(20, 2), (30, 2)]
    assert all(r["top"] == "x1" and r["seconds"] > 0 for r in records)  # the objective's bowl is in x1
    assert "hyperparameters |" in done.stdout and "| x1" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["hypergrad", "--steps", "0"], "error: --steps '0': give whole numbers of at least 1, comma-separated"),
        (["methods", "--sizes", "x"], "error: --sizes 'x': give whole numbers of at least 1, comma-separated"),
        (["methods", "--repeats", "0"], "error: --repeats 0: give a whole number of at least 1"),
        (
            ["agreement", "--tasks", "nope"],
            "error: --tasks nope: allowed: bikeshare, branin, hartmann6, hyper_cleaning, learning_",
        ),
        (["text", "--epochs", "0"], "error: --epochs 0: give a whole number of at least 1"),
        (["text", "--skip", "all"], "error: --skip 'all': allowed: linear, rnn"),
        (["batched", "--iterations", "10"], "error: --iterations 10: give a whole number of at least 50"),
        (["report", "--runs", "0"], "error: --runs 0: give a whole number of at least 1"),
        (["importance", "--trials", "5"], "error: --trials '5': give whole numbers of at least 10, comma-separated"),
        (["importance", "--task", "nope"], "error: unknown task 'nope'; allowed: bikeshare, branin,"),
        (["numerics", "--rounds", "0"], "error: --rounds 0: give a whole number of at least 1"),
        (["hypergrad", "--dims", "7"], "error: --dims 7: allowed 1, 10, a multiple of 10 below n, or n = 5000"),
        (
            ["numerics", "--settings", "fast"],
            "error: --settings 'fast': choose among native, pinned, portable, mkl, intel",
        ),
    ],
)
def test_bad_benchmark_arguments_are_one_line_errors(arguments, message, capsys):
    """The command line's own main, in this process: exit status 2 and one line naming the value."""
    from bench.perf.__main__ import main

    assert main(arguments) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith(message), stderr
