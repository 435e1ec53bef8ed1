"""Pinned CPU numerics (bench/numerics): one number on every CPU code path, recorded in
``run.json``, and a resume that either continues bit for bit or refuses in one line.

A process's environment stands in for another processor, as far as one machine can ask for it:
``NPY_ENABLE_CPU_FEATURES`` caps NumPy's SIMD loops, ``ATEN_CPU_CAPABILITY`` picks PyTorch's
kernels, ``OPENBLAS_CORETYPE`` OpenBLAS's, ``ONEDNN_MAX_CPU_ISA`` oneDNN's, ``MKL_ENABLE_INSTRUCTIONS``
caps MKL's instruction set, and ``mkl_as_amd.c`` (preloaded) makes MKL take the code paths it takes
on an AMD processor. Each test first shows, with ``BENCH_NUMERICS=native``, that the environments
do compute different numbers here, so its pinned half can fail.
"""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from bench.errors import BenchError
from bench.numerics import (
    PORTABLE,
    X86_64_V3,
    check_replayable,
    cpu_vendor,
    exports,
    level,
    numerics,
    probe,
    replay_key,
    settings,
    without_pins,
)
from bench.records import RUN_FILE, comparable
from bench.report.load import read_trials
from tests.bench.test_resume import SLOW_ENOUGH, kill_after
from tests.helpers import ROOT, run_bench

FAST_CPU = {"MKL_CBWR": "AUTO", "ATEN_CPU_CAPABILITY": "avx2"}
OLD_CPU = {
    "NPY_ENABLE_CPU_FEATURES": "X86_V2",  # NumPy's baseline loops
    "ATEN_CPU_CAPABILITY": "default",
    "OPENBLAS_CORETYPE": "Prescott",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
}
"""A processor of before AVX2, as far as this one can ask for its code paths (the native ones are
the other processor); with ``amd_mkl`` preloaded, an AMD one's MKL besides."""
GP_RUNS = {  # short runs: 2 Sobol points, then 3 or 4 of the GP's proposals, 300 training steps each
    "gp_ei": ["method=gp_ei", "method.n_initial=2", "budget.evaluations=6"],
    "gp_ts": ["method=gp_ts", "method.n_initial=2", "method.pool_size=256", "budget.evaluations=5"],
}


@pytest.fixture(scope="module")
def amd_mkl(tmp_path_factory) -> dict[str, str]:
    """``LD_PRELOAD`` of ``mkl_as_amd.c``, built here (empty where no C compiler is)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return {}
    library = tmp_path_factory.mktemp("shim") / "mkl_as_amd.so"
    built = subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(library), str(ROOT / "tests/bench/mkl_as_amd.c"), "-ldl"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    return {"LD_PRELOAD": str(library)}


def environment(mode: str, paths: dict[str, str]) -> dict[str, str]:
    """This process's environment without the pins it inherited, under ``mode``, asking for ``paths``."""
    return {**without_pins(os.environ), "BENCH_NUMERICS": mode, **paths}


def gp_run(tmp_path, method: str, name: str, mode: str, paths: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    directory = tmp_path / name
    arguments = [*SLOW_ENOUGH, *GP_RUNS[method], "incumbent_repeats=0", "seed=1", f"hydra.run.dir={directory}"]
    done = run_bench(*arguments, cwd=tmp_path, env=environment(mode, paths), inherit=False)
    assert done.returncode == 0, done.stderr
    return comparable(read_trials(directory)), json.loads((directory / RUN_FILE).read_text())["numerics"]


@pytest.mark.parametrize("method", ["gp_ei", pytest.param("gp_ts", marks=pytest.mark.slow)])
def test_a_gp_run_gives_one_trial_table_on_two_processors_code_paths(tmp_path, method, amd_mkl):
    """Native: this processor's code paths and an older (and, with a C compiler, AMD's MKL) give
    other trial tables. Pinned (the default): one trial table and one probe, whatever the
    environment asks for."""
    other = {**OLD_CPU, **amd_mkl}
    here, here_numerics = gp_run(tmp_path, method, "native_here", "native", {})
    there, there_numerics = gp_run(tmp_path, method, "native_there", "native", other)
    assert there_numerics["numpy_dispatch"] == [] and there_numerics["torch_cpu_capability"] == "DEFAULT"
    if here_numerics["probe"] == there_numerics["probe"] or here.equals(there):
        pytest.skip(
            f"this processor's own code paths give {method} the older ones' numbers: the pinned half shows nothing"
        )
    native_probes = f"{here_numerics['probe']} here, {there_numerics['probe']} there"
    pinned_here, here_numerics = gp_run(tmp_path, method, "pinned_here", "pinned", {})
    pinned_there, there_numerics = gp_run(tmp_path, method, "pinned_there", "pinned", other)
    pd.testing.assert_frame_equal(pinned_here, pinned_there)
    assert here_numerics["probe"] == there_numerics["probe"]
    assert here_numerics["level"] == there_numerics["level"] == level("pinned")
    assert here_numerics["settings"]["NPY_ENABLE_CPU_FEATURES"] == there_numerics["settings"]["NPY_ENABLE_CPU_FEATURES"]
    assert there_numerics["settings"]["MKL_ENABLE_INSTRUCTIONS"] == "SSE4_2"  # asked for, and recorded
    print(f"{method}, asking for {', '.join(f'{k}={v}' for k, v in other.items())}")
    print(f"  native: probe {native_probes}, {first_difference(here, there)}")
    print(
        f"  pinned ({here_numerics['level']}): probe {here_numerics['probe']} in both, {len(pinned_here)} trials equal"
    )


def first_difference(one: pd.DataFrame, other: pd.DataFrame) -> str:
    """Where two trial tables part, in words."""
    if len(one) != len(other):
        return f"{len(one)} against {len(other)} trials"
    rows = [
        i
        for i in range(len(one))
        if not one.iloc[[i]].reset_index(drop=True).equals(other.iloc[[i]].reset_index(drop=True))
    ]
    return (
        f"trial tables differ in {len(rows)} of {len(one)} trials, the first at trial {rows[0]}"
        if rows
        else "trial tables equal"
    )


MKL_DIGEST = """
import hashlib, torch
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
a, b = torch.randn(67, 259, generator=g), torch.randn(259, 131, generator=g)
m = torch.randn(300, 400, generator=g, dtype=torch.float64)
parts = [a @ b, a.double() @ b.double(), torch.linalg.cholesky(m @ m.T + 400 * torch.eye(300, dtype=torch.float64))]
print(hashlib.sha256(b"".join(p.numpy().tobytes() for p in parts)).hexdigest()[:16])
"""


def mkl_digest(paths: dict[str, str]) -> str:
    """A digest of MKL's GEMM and Cholesky in a fresh process asking for ``paths`` (nothing pinned)."""
    done = subprocess.run(
        [sys.executable, "-c", MKL_DIGEST], capture_output=True, text=True, env={**without_pins(os.environ), **paths}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_mkls_avx2_branch_holds_on_intel_only_and_its_compatible_branch_on_amd_too(amd_mkl):
    """Why the pins keep MKL on its COMPATIBLE branch at every level: Intel documents the AVX2
    branch as reproducible across Intel processors only (on AMD MKL takes its AUTO branch), and
    COMPATIBLE across both. With MKL shown an AMD processor, the AVX2 branch computes other numbers
    and the COMPATIBLE branch the same ones, and so does the whole probe under the pins."""
    if not amd_mkl:
        pytest.skip("no C compiler here to build tests/bench/mkl_as_amd.c, which shows MKL an AMD processor")
    if cpu_vendor() != "GenuineIntel":
        pytest.skip(f"this processor is not an Intel one ({cpu_vendor()}): MKL takes its own code paths for it here")
    intel, amd = mkl_digest({"MKL_CBWR": "AVX2"}), mkl_digest({"MKL_CBWR": "AVX2", **amd_mkl})
    assert intel != amd
    assert mkl_digest({"MKL_CBWR": "COMPATIBLE"}) == mkl_digest({"MKL_CBWR": "COMPATIBLE", **amd_mkl})
    pinned = "import bench, bench.numerics as n; print(n.probe())"
    probes = [
        subprocess.run([sys.executable, "-c", pinned], capture_output=True, text=True, env={**os.environ, **shown})
        for shown in ({}, amd_mkl)
    ]
    assert all(p.returncode == 0 for p in probes), [p.stderr for p in probes]
    assert probes[0].stdout == probes[1].stdout == f"{probe()}\n"


@pytest.mark.slow
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
    assert pinned["level"] == level("pinned") and pinned["torch_threads"] == torch.get_num_threads()
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


def test_a_record_made_before_levels_is_compared_on_its_own_probe_and_the_portable_level(tmp_path):
    """Records of 2026-12-05 to -07 carry probe version 1 and no level (they were pinned at what is
    now the portable level): a resume compares this machine's version-1 probe with theirs."""
    current = numerics()
    old = {k: v for k, v in current.items() if k not in ("level", "probe_version")}
    if current["level"] == PORTABLE:
        check_replayable(tmp_path, {"numerics": {**old, "probe": probe(1)}}, current)
    else:
        with pytest.raises(BenchError, match=f"level: recorded '{PORTABLE}', here '{X86_64_V3}'"):
            check_replayable(tmp_path, {"numerics": {**old, "probe": probe(1)}}, current)
    with pytest.raises(BenchError, match=f"probe: recorded '0123456789abcdef', here '{probe(1)}'"):
        check_replayable(tmp_path, {"numerics": {**old, "probe": "0123456789abcdef"}}, {**current, "level": PORTABLE})
    assert probe(1) != probe(2)


def test_an_unknown_numerics_mode_is_one_line(tmp_path):
    done = run_bench("task=branin", "budget.evaluations=2", cwd=tmp_path, env={"BENCH_NUMERICS": "fast"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: BENCH_NUMERICS='fast': must be one of pinned, portable, native"
    assert not (tmp_path / "results").exists()


def test_a_job_scripts_export_line_sets_this_machines_pins_and_keeps_its_thread_counts(tmp_path):
    """What a Slurm task's script runs before Python loads NumPy (``exports``): in an environment
    that holds nothing of this process's, it sets the level's variables for the mode asked for."""
    script = f"export OMP_NUM_THREADS=3 NPY_DISABLE_CPU_FEATURES=X86_V4; {exports()}; env"
    clean = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=clean, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    exported = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert exported["BENCH_NUMERICS"] == "pinned" and exported["OMP_NUM_THREADS"] == "3"
    assert {name: exported.get(name) for name in settings(level("pinned"))} == settings(level("pinned"))
    assert "NPY_DISABLE_CPU_FEATURES" not in exported
