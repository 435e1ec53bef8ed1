"""A sweep cell whose method cannot tune its task (``bench.errors.Unsupported``): with
``unsupported=record`` the sweep records it as refused and runs the rest; the report lists it."""

import json

from bench.records import REFUSED_FILE, RUN_FILE
from tests.helpers import TINY, run_bench, run_module


def test_a_recorded_sweep_runs_the_rest_and_the_report_lists_the_refused_cell(tmp_path):
    sweep = tmp_path / "sweep"
    arguments = ["-m", *TINY, "method=random,drmad", "seed=0,1", "budget.evaluations=2", "incumbent_repeats=0"]
    done = run_bench(*arguments, "unsupported=record", f"hydra.sweep.dir={sweep}", "progress=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted(path.parent.name for path in sweep.rglob(RUN_FILE))
    refused = sorted(sweep.rglob(REFUSED_FILE))
    assert runs == ["0_bikeshare_random_s0", "1_bikeshare_random_s1"]
    assert [path.parent.name for path in refused] == ["2_bikeshare_drmad_s0", "3_bikeshare_drmad_s1"]
    record = json.loads(refused[0].read_text())
    assert (record["status"], record["method"], record["seed"]) == ("refused", "drmad", 0)
    assert record["reason"].startswith("method DrMAD tunes only learning_rate, momentum, l2")
    assert "pre-flight: method=drmad is unsupported, recorded as refused" in done.stdout + done.stderr
    line = "Refused before running, the method unable to tune the cell: method=drmad (2 seeds): method DrMAD tunes"
    assert line in (sweep / "report.md").read_text()
    report = run_module("bench.report", str(sweep), cwd=tmp_path)
    assert report.returncode == 0 and line in report.stdout, report.stderr[-2000:]

    # resumed, the refused cells are refused again and the completed runs kept as they are
    before = {path: path.stat().st_mtime_ns for path in sweep.rglob(RUN_FILE)}
    again = run_bench(
        *arguments, "unsupported=record", "resume=true", f"hydra.sweep.dir={sweep}", "progress=false", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert {path: path.stat().st_mtime_ns for path in sweep.rglob(RUN_FILE)} == before
    assert sorted(sweep.rglob(REFUSED_FILE)) == refused
