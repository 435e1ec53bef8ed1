"""Pinned CPU numerics (bench/numerics.py): one number on every CPU code path, recorded in
``run.json``, and a resume that either continues bit for bit or refuses in one line.

A process's environment stands in for another processor: ``MKL_ENABLE_INSTRUCTIONS`` caps MKL's
instruction set as an older CPU would, ``MKL_CBWR`` picks MKL's branch, ``ATEN_CPU_CAPABILITY``
picks PyTorch's kernels. Each test first shows, with ``BENCH_NUMERICS=native``, that the two
environments do compute different numbers here, so its pinned half can fail.
"""

import json
import os

import pandas as pd
import pytest
import torch

from bench.errors import BenchError
from bench.numerics import check_replayable, numerics, replay_key, without_pins
from bench.records import RUN_FILE, TRIALS_JSONL
from bench.report.load import read_trials
from tests.bench.test_resume import SLOW_ENOUGH, kill_after
from tests.helpers import comparable, run_bench

FAST_CPU = {"MKL_CBWR": "AUTO", "ATEN_CPU_CAPABILITY": "avx2"}
OLD_CPU = {"MKL_CBWR": "COMPATIBLE", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ATEN_CPU_CAPABILITY": "default"}
"""Two processors' code paths, as far as one machine can ask for them."""
TEXT_RNN_SEED_3 = [  # issue 26's reproduction: fair_baseline_text/rnn_gp_ei_30 at seed 3, its first training
    "experiment=fair_baseline_text/rnn_gp_ei_30",
    "seed=3",
    "budget.train_steps=null",
    "budget.evaluations=1",
    "incumbent_repeats=0",
    "progress=false",
]


def environment(mode: str, paths: dict[str, str]) -> dict[str, str]:
    """This process's environment without the pins it inherited, under ``mode``, asking for ``paths``."""
    return {**without_pins(os.environ), "BENCH_NUMERICS": mode, **paths}


def first_objective(tmp_path, name: str, mode: str, paths: dict[str, str]) -> tuple[float, dict]:
    directory = tmp_path / name
    done = run_bench(
        *TEXT_RNN_SEED_3, f"hydra.run.dir={directory}", cwd=tmp_path, env=environment(mode, paths), inherit=False
    )
    assert done.returncode == 0, done.stderr
    row = json.loads((directory / TRIALS_JSONL).read_text().splitlines()[0])
    return row["objective"], json.loads((directory / RUN_FILE).read_text())["numerics"]


def test_the_text_rnn_configuration_gives_one_validation_error_on_two_cpu_code_paths(tmp_path):
    """Native: the two code paths end the same GRU training at different validation errors.
    Pinned (the default): one validation error, and one probe, whatever the environment asks."""
    fast, fast_numerics = first_objective(tmp_path, "native_fast", "native", FAST_CPU)
    old, old_numerics = first_objective(tmp_path, "native_old", "native", OLD_CPU)
    if fast_numerics["probe"] == old_numerics["probe"] or fast == old:
        pytest.skip("on this processor the two code paths round alike: the pinned comparison would show nothing")
    pinned_fast, fast_numerics = first_objective(tmp_path, "pinned_fast", "pinned", FAST_CPU)
    pinned_old, old_numerics = first_objective(tmp_path, "pinned_old", "pinned", OLD_CPU)
    assert pinned_fast == pinned_old
    assert fast_numerics["probe"] == old_numerics["probe"]
    assert fast_numerics["mode"] == "pinned" and fast_numerics["settings"]["MKL_CBWR"] == "COMPATIBLE"
    assert fast_numerics["torch_cpu_capability"] == "DEFAULT" and fast_numerics["cpu_model"]


def test_a_run_killed_and_resumed_under_another_cpu_code_path_continues_bit_for_bit_or_refuses(tmp_path):
    arguments = [*SLOW_ENOUGH, "method=gp_ei", "method.n_initial=2", "budget.evaluations=6", "seed=5"]
    whole = run_bench(
        *arguments, f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path, env=environment("pinned", {}), inherit=False
    )
    assert whole.returncode == 0, whole.stderr
    native = run_bench(
        *arguments, f"hydra.run.dir={tmp_path / 'native'}", cwd=tmp_path, env=environment("native", FAST_CPU),
        inherit=False,
    )  # fmt: skip
    assert native.returncode == 0, native.stderr
    assert not read_trials(tmp_path / "native")["objective"].equals(read_trials(tmp_path / "whole")["objective"])

    killed = tmp_path / "killed"
    kill_after(arguments, killed, trials=3)
    before = {p: p.read_bytes() for p in killed.rglob("*") if p.is_file() and ".hydra" not in p.parts}
    refused = run_bench(
        *arguments, "resume=true", f"hydra.run.dir={killed}", cwd=tmp_path, env=environment("native", FAST_CPU),
        inherit=False,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith(f"error: cannot resume {killed} bit for bit here: ")
    assert "mode: recorded 'pinned', here 'native'" in refused.stderr and "probe: recorded" in refused.stderr
    assert "torch_cpu_capability: recorded 'DEFAULT', here 'AVX2'" in refused.stderr
    assert {p: p.read_bytes() for p in killed.rglob("*") if p.is_file() and ".hydra" not in p.parts} == before

    resumed = run_bench(
        *arguments, "resume=true", f"hydra.run.dir={killed}", cwd=tmp_path, env=environment("pinned", OLD_CPU),
        inherit=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((killed / RUN_FILE).read_text())
    assert after["status"] == "completed" and after["resumed"][0]["numerics"]["settings"]["MKL_ENABLE_INSTRUCTIONS"]
    pd.testing.assert_frame_equal(comparable(read_trials(killed)), comparable(read_trials(tmp_path / "whole")))


def test_the_replay_key_ignores_the_processor_model_only_under_pinned_numerics(tmp_path):
    pinned = numerics()
    assert pinned["mode"] == "pinned"  # the test process pins too (tests/conftest.py imports bench first)
    assert pinned["torch_threads"] == torch.get_num_threads()
    check_replayable(tmp_path, {"numerics": {**pinned, "cpu_model": "another CPU"}}, pinned)
    check_replayable(tmp_path, {}, pinned)  # a run recorded before numerics were
    native = {**pinned, "mode": "native"}
    with pytest.raises(BenchError, match="cpu_model: recorded 'another CPU'"):
        check_replayable(tmp_path, {"numerics": {**native, "cpu_model": "another CPU"}}, native)
    with pytest.raises(BenchError, match="gpu: recorded 'NVIDIA H100 80GB HBM3', here None"):
        check_replayable(tmp_path, {"numerics": {**pinned, "gpu": "NVIDIA H100 80GB HBM3"}}, pinned)
    with pytest.raises(BenchError, match="loaded_before_pinning: recorded None, here"):
        check_replayable(tmp_path, {"numerics": pinned}, {**pinned, "loaded_before_pinning": ["torch"]})
    with pytest.raises(BenchError, match="torch_threads: recorded 4, here 1"):
        check_replayable(tmp_path, {"numerics": {**pinned, "torch_threads": 4}}, {**pinned, "torch_threads": 1})
    assert "cpu_model" in replay_key(native) and "cpu_model" not in replay_key(pinned)


def test_an_unknown_numerics_mode_is_one_line(tmp_path):
    done = run_bench("task=branin", "budget.evaluations=2", cwd=tmp_path, env={"BENCH_NUMERICS": "fast"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: BENCH_NUMERICS='fast': must be one of pinned, native"
    assert not (tmp_path / "results").exists()
