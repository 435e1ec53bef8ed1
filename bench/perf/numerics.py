"""``python -m bench.perf numerics``: what pinning the CPU numerics costs (``bench/numerics``):
trainings and GP asks under the native code paths, under each level of pins, and under the one pin
that the level cannot avoid, so the cost can be traced to a library.

    python -m bench.perf numerics [--json FILE] [--repeats 3] [--rounds 1] [--settings native,pinned,portable,mkl,intel]

Settings (each in a fresh process, since the code paths are chosen when the libraries load):
*native* (``BENCH_NUMERICS=native``, nothing pinned), *pinned* (the default: the widest level this
processor has), *portable* (``BENCH_NUMERICS=portable``), *mkl* (native with
``MKL_CBWR=COMPATIBLE`` alone: what MKL's one cross-vendor branch costs by itself) and *intel*
(pinned, but MKL on its AVX2 branch, which gives the same numbers on Intel processors only: what
identical numbers on AMD cost). Workloads, one torch thread: one training of the GRU of issue 26's
reproduction (``fair_baseline_text/text_rnn`` at its default configuration, 638 steps), one
bikeshare training of 2,000 steps, 32 bikeshare trainings of 500 steps trained together (the
fixed-shape batch of ``python -m bench.perf batched --q 32``), and the median seconds of
``--repeats`` asks of ``gp_ei`` (BoTorch) and ``skopt_gp`` (scikit-learn's GP on OpenBLAS) with 30
observations on hartmann6. Seconds per training step for the trainings, per batch for the batch;
``probe`` is the settings' numerics digest (equal digests: the same numbers). Wall-clock on this
machine; the ratio column is the setting over native. With ``--rounds N`` every setting runs N
times, the rounds in alternating order (forward, backward, ...) so that a machine that slows down
or speeds up over the measurement does not favour one setting, and each workload keeps its
fastest round (the one least disturbed by anything else on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.build import build
from bench.errors import BenchError
from bench.numerics import LEVELS, X86_64_V3, numerics, without_pins
from bench.perf.common import at_least, compose_config, progress, write_records
from bench.perf.methods import method_overhead
from bench.provenance import provenance
from bench.runner import trial_seed

HELP = "a training step and a GP ask, with the CPU numerics pinned and not"

SETTINGS = {
    "native": {"BENCH_NUMERICS": "native"},
    "pinned": {"BENCH_NUMERICS": "pinned"},
    "portable": {"BENCH_NUMERICS": "portable"},
    "mkl": {"BENCH_NUMERICS": "native", "MKL_CBWR": "COMPATIBLE"},
    "intel": {"BENCH_NUMERICS": "native", **LEVELS[X86_64_V3], "MKL_CBWR": "AVX2"},
}
TRAININGS = {
    "text_rnn training (GRU, 638 steps)": ["task=fair_baseline_text/text_rnn"],
    "bikeshare training (2,000 steps)": ["task=bikeshare", "+task.space.iterations.fixed=2000"],
}
BATCH = 32  # bikeshare configurations trained together, as python -m bench.perf batched --q 32 (fixed shape)
ASKS = {"gp_ei ask (n = 30)": "gp_ei", "skopt_gp ask (n = 30)": "skopt_gp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument("--repeats", type=int, default=3, help="trainings and asks timed per workload (default 3)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="each setting run this many times, interleaved (default 1)"
    )
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"of {', '.join(SETTINGS)} (default all)")


def add_one_arguments(parser: argparse.ArgumentParser) -> None:
    """``numerics-one``: the workloads in this process, under the environment it was started with."""
    parser.add_argument("repeats", type=int)


def one_main(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    record: dict = {"numerics": numerics(), "workloads": {}}
    for name, overrides in TRAININGS.items():
        task = build(compose_config(overrides)).task
        config = task.space.default
        seconds, steps = [], 0
        for repeat in range(args.repeats + 1):  # the first is a warm-up (data, kernels)
            tic = time.perf_counter()
            evaluation = task.evaluate(config, trial_seed(0, repeat))
            if repeat:
                seconds.append(time.perf_counter() - tic)
                steps = evaluation.cost_steps or 1
        record["workloads"][name] = sorted(seconds)[len(seconds) // 2] / steps
    record["workloads"][f"bikeshare batch (q = {BATCH}, 500 steps)"] = batch_seconds(args.repeats)
    for name, method in ASKS.items():
        asks = method_overhead(method, "hartmann6", [30], args.repeats)
        record["workloads"][name] = asks[0]["ask_seconds_median"]
    print(json.dumps(record))
    return 0


def batch_seconds(repeats: int) -> float:
    """Median seconds of one vectorised training of ``BATCH`` fixed-shape bikeshare configurations
    (random search's first draws for seed 0, the runner's trial seeds), after a warm-up."""
    overrides = ["task=bikeshare", "+task.space.hidden_nodes.fixed=16", "+task.space.iterations.fixed=500"]
    task = build(compose_config(overrides)).task
    configs = task.space.sample(BATCH, np.random.default_rng([0, 0x5EED]))
    seeds = [trial_seed(0, i) for i in range(BATCH)]
    seconds = []
    for repeat in range(repeats + 1):  # the first is a warm-up
        tic = time.perf_counter()
        task.evaluate_batch(configs, seeds)
        if repeat:
            seconds.append(time.perf_counter() - tic)
    return sorted(seconds)[len(seconds) // 2]


def main(args: argparse.Namespace) -> int:
    at_least(repeats=args.repeats, rounds=args.rounds)
    names = [name.strip() for name in args.settings.split(",") if name.strip()]
    unknown = [name for name in names if name not in SETTINGS]
    if unknown or not names:
        raise BenchError(f"--settings {args.settings!r}: choose among {', '.join(SETTINGS)}")
    base = without_pins(os.environ)
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    for number in range(args.rounds):
        for name in names if number % 2 == 0 else names[::-1]:
            progress(f"round {number + 1} of {args.rounds}: {name} ...")
            done = subprocess.run(
                [sys.executable, "-m", "bench.perf", "numerics-one", str(args.repeats)],
                capture_output=True,
                text=True,
                env={**base, **SETTINGS[name]},
            )
            if done.returncode != 0:
                raise RuntimeError(f"setting {name} failed:\n{done.stderr[-2000:]}")
            rounds[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    records = []
    for name, ones in rounds.items():
        fastest = {workload: min(one["workloads"][workload] for one in ones) for workload in ones[0]["workloads"]}
        records.append(
            {"setting": name, "environment": SETTINGS[name], **ones[0], "workloads": fastest, "rounds": ones}
        )
    print(f"\nCPU numerics: seconds per training step and per ask, 1 torch thread, {provenance()['platform']}:\n")
    print(table(records))
    return write_records(records, args.json)


def table(records: list[dict]) -> str:
    native = next((r for r in records if r["setting"] == "native"), None)
    header = "| workload | " + " | ".join(r["setting"] for r in records) + " |"
    rows = [header, "|:--|" + "--:|" * len(records)]
    for workload in records[0]["workloads"]:
        cells = []
        for r in records:
            seconds = r["workloads"][workload]
            ratio = f" ({seconds / native['workloads'][workload]:.2f}x)" if native and r is not native else ""
            cells.append(f"{seconds * 1e3:.3g} ms{ratio}")
        unit = " per step" if "training" in workload else ""
        rows.append(f"| {workload}{unit} | " + " | ".join(cells) + " |")
    rows.append("| probe | " + " | ".join(f"`{r['numerics']['probe'][:8]}`" for r in records) + " |")
    return "\n".join(rows)
