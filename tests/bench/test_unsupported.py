"""A sweep cell whose method cannot tune its task (``bench.errors.Unsupported``): with
``unsupported=record`` the sweep records it as refused and runs the rest; the report lists it."""

import json

import pytest

from bench.build import build
from bench.errors import BenchError, Unsupported
from bench.fidelity import check_fidelity
from bench.records import REFUSED_FILE, RUN_FILE, cells
from bench.runner import check_differentiable
from bench.space import SearchSpace
from methods.drmad import DrMAD
from methods.optuna_samplers import OptunaCmaEs
from methods.turbo import TuRBO
from tests.helpers import TINY, bench_config, run_bench, run_module


def test_a_recorded_sweep_runs_the_rest_and_the_report_lists_the_refused_cell(tmp_path):
    sweep = tmp_path / "sweep"
    arguments = ["-m", *TINY, "budget.evaluations=2", "incumbent_repeats=0", "progress=false"]
    arguments += [f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${method.name}_s${seed}"]  # folders by cell
    done = run_bench(*arguments, "method=random,drmad", "seed=0,1", "unsupported=record", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted(path.parent.name for path in sweep.rglob(RUN_FILE))
    refused = sorted(sweep.rglob(REFUSED_FILE))
    assert runs == ["random_s0", "random_s1"]
    assert [path.parent.name for path in refused] == ["drmad_s0", "drmad_s1"]
    record = json.loads(refused[0].read_text())
    assert (record["status"], record["method"], record["seed"]) == ("refused", "drmad", 0)
    assert record["reason"].startswith("method DrMAD tunes only learning_rate, momentum, l2")
    assert "pre-flight: method=drmad is unsupported, recorded as refused" in done.stdout + done.stderr
    line = "Refused before running, the method unable to tune the cell: method=drmad (2 seeds): method DrMAD tunes"
    assert line in (sweep / "report.md").read_text()
    report = run_module("bench.report", str(sweep), cwd=tmp_path)
    assert report.returncode == 0 and line in report.stdout, report.stderr[-2000:]

    # resumed, the refused cells are refused again, named as before, and the completed runs kept as they are
    before = {path: path.stat().st_mtime_ns for path in sweep.rglob(RUN_FILE)}
    again = run_bench(*arguments, "method=random,drmad", "seed=0,1", "unsupported=record", "resume=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {path: path.stat().st_mtime_ns for path in sweep.rglob(RUN_FILE)} == before
    assert sorted(sweep.rglob(REFUSED_FILE)) == refused
    report = run_module("bench.report", str(sweep), cwd=tmp_path)
    assert report.returncode == 0 and line in report.stdout, report.stderr[-2000:]

    # a refused cell its method can tune now (the space fixed for it) runs in its folder, its refusal gone
    fixed = ["+task.space.iterations.fixed=20", "+task.space.hidden_nodes.fixed=2"]
    now = run_bench(*arguments, "method=drmad", "seed=0", *fixed, "unsupported=record", "resume=true", cwd=tmp_path)
    assert now.returncode == 0, now.stderr[-2000:]
    assert (sweep / "drmad_s0" / RUN_FILE).exists() and not (sweep / "drmad_s0" / REFUSED_FILE).exists()
    assert (sweep / "drmad_s1" / REFUSED_FILE).exists()

    # refuse (the default): the sweep stops before its first job, in one line naming the cell
    stopped = run_bench(*arguments, "method=random,drmad", "seed=3", cwd=tmp_path)
    assert stopped.returncode == 2 and stopped.stderr.startswith("error: method=drmad: method DrMAD tunes only")
    assert not list(sweep.glob("*_s3"))


def test_a_cell_is_named_by_what_its_jobs_do_not_share():
    jobs = [
        ["task=x", "method=random", "seed=0", "resume=true", "hydra.sweep.dir=d"],
        ["task=x", "method=drmad", "+seed=1", "progress=false", "hydra.sweep.dir=d"],
    ]
    assert cells(jobs) == ["method=random", "method=drmad"]
    assert cells([["seed=0"]]) == ["the base configuration"]


def test_a_method_s_limits_are_unsupported_and_bad_values_are_not():
    real = {"type": "real", "low": 0.0, "high": 1.0, "default": 0.5}
    space = SearchSpace.from_config({f"x{i}": real for i in range(300)})
    with pytest.raises(Unsupported, match="full covariance: 300 numeric hyperparameters"):
        OptunaCmaEs(space, seed=0)
    with pytest.raises(BenchError) as bad:
        OptunaCmaEs(space, seed=0, sigma0=-1)
    assert not isinstance(bad.value, Unsupported)
    choice = {"type": "categorical", "choices": ["a", "b"], "default": "a"}
    categorical = SearchSpace.from_config({"x": real, "c": choice})
    with pytest.raises(Unsupported, match="turbo moves a box over numeric hyperparameters"):
        TuRBO(categorical, seed=0)
    with pytest.raises(Unsupported, match="needs a differentiable task"):
        check_differentiable(build(bench_config("task=branin", "method=random")).task, DrMAD.__new__(DrMAD))
    with pytest.raises(Unsupported, match="needs a fidelity task"):
        check_fidelity(build(bench_config("task=branin", "method=random")).task, "asha")
