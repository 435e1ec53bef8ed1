"""``python -m bench.report.compare``: a sweep run twice repeats its record; a changed trial, a
changed retraining and a missing run are each named, with the first differing trial."""

import json
import shutil

import pytest

from bench.records import RUN_FILE, TRIALS_JSONL
from tests.helpers import TINY_FIXED, run_bench, run_module

SWEEP = ["-m", *TINY_FIXED, "method=random,gp_ei", "budget.evaluations=8", "seed=0,1", "progress=false"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The same tiny sweep (random and gp_ei, seeds 0 and 1), run twice."""
    root = tmp_path_factory.mktemp("compare")
    for name in ("recorded", "again"):
        done = run_bench(*SWEEP, f"hydra.sweep.dir={root / name}", cwd=root)
        assert done.returncode == 0, done.stderr
    return root


def compare(recorded, repeated, cwd):
    return run_module("bench.report.compare", str(recorded), str(repeated), cwd=cwd)


def test_a_sweep_run_again_repeats_its_record_trial_for_trial(sweeps):
    done = compare(sweeps / "recorded", sweeps / "again", sweeps)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("\nequal ") + done.stdout.startswith("equal ") == 4
    assert "4 of 4 recorded runs repeated trial for trial" in done.stdout


def test_a_changed_trial_a_changed_retraining_and_a_missing_run_are_named(sweeps, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(sweeps / "again", changed)
    gp_run = next(p.parent for p in changed.rglob(RUN_FILE) if "gp_ei_s1" in p.parent.name)
    rows = [json.loads(line) for line in (gp_run / TRIALS_JSONL).read_text().splitlines()]
    rows[2]["config"]["learning_rate"] = rows[2]["config"]["learning_rate"] * (1 + 2**-52)  # one bit
    (gp_run / TRIALS_JSONL).write_text("".join(json.dumps(row) + "\n" for row in rows))
    random_run = next(p.parent for p in changed.rglob(RUN_FILE) if "random_s0" in p.parent.name)
    meta = json.loads((random_run / RUN_FILE).read_text())
    meta["final"]["evaluations"][0]["objective"] += 1e-9
    (random_run / RUN_FILE).write_text(json.dumps(meta))
    shutil.rmtree(next(p.parent for p in changed.rglob(RUN_FILE) if "random_s1" in p.parent.name))

    done = compare(sweeps / "recorded", changed, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split(" (")[0].split(maxsplit=1)[1]: line for line in done.stdout.splitlines() if "seed" in line}
    assert lines["bikeshare gp_ei seed 1"].startswith("DIFFERS")
    assert ": from trial 2 of 8: config.learning_rate recorded " in lines["bikeshare gp_ei seed 1"]
    assert "numerics both pinned" in lines["bikeshare gp_ei seed 1"]  # the same code paths promised the same numbers
    assert "from the incumbent's retrainings: recorded [" in lines["bikeshare random seed 0"]
    assert lines["bikeshare random seed 1"].startswith("MISSING")
    assert lines["bikeshare gp_ei seed 0"].startswith("equal")
    assert "1 of 4 recorded runs repeated" in done.stdout


def test_a_folder_without_runs_is_one_line(sweeps, tmp_path):
    done = compare(sweeps / "recorded", tmp_path, tmp_path)
    assert done.returncode == 2 and done.stderr == f"error: {tmp_path}: no runs (folders holding run.json) under it\n"
