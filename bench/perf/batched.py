"""``python -m bench.perf batched``: q bikeshare configurations trained one after another
(``evaluate``) against together (``evaluate_batch``, one vectorised training per group of similar
shapes), on a CPU with one torch thread and on CUDA when a GPU is visible.

    python -m bench.perf batched [--json FILE] [--q 8,32,128] [--iterations 500] [--devices cpu,cuda]

Two spaces: *fixed shape*, the space of the ``bo_vs_hypergrad`` preset (16 hidden units, learning
rate, momentum and L2 drawn, ``--iterations`` steps each), where every configuration shares one
shape; and *full space*, bikeshare's whole space with iterations up to ``--iterations``, where
widths and lengths differ and ``similar_shapes`` splits the batch. The configurations are random
search's first q draws for seed 0, trained with the runner's trial seeds, so both paths train the
same networks; ``max_relative_difference`` is the largest relative difference of their validation
objectives (float32; a configuration at the edge of divergence can differ visibly, see
``tests/tasks/test_bikeshare.py``). Seconds are wall-clock after a warm-up.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.build import build
from bench.perf.common import at_least, compose_config, progress, whole_numbers, write_records
from bench.provenance import provenance
from bench.runner import trial_seed

HELP = "bikeshare trials one by one against one vectorised training"

SPACES = {
    "fixed shape": ["+task.space.hidden_nodes.fixed=16", "+task.space.iterations.fixed={iterations}"],
    "full space": ["task.space.iterations.high={iterations}", "task.space.iterations.default=50"],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument("--q", default="8,32,128", help="batch sizes (default 8,32,128)")
    parser.add_argument("--iterations", type=int, default=500, help="training steps, fixed or at most (default 500)")
    parser.add_argument("--devices", default="", help="cpu,cuda (default: cpu, and cuda when a GPU is visible)")


def measure(space: str, q: int, device: str, iterations: int) -> dict:
    overrides = [o.format(iterations=iterations) for o in SPACES[space]]
    task = build(compose_config(["task=bikeshare", f"device={device}", *overrides])).task
    configs = task.space.sample(q, np.random.default_rng([0, 0x5EED]))  # random search's first draws, seed 0
    seeds = [trial_seed(0, i) for i in range(q)]
    task.evaluate_batch(configs[:2], seeds[:2])  # warm-up: kernels, allocator
    synchronise = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
    tic = time.perf_counter()
    alone = [task.evaluate(config, seed) for config, seed in zip(configs, seeds, strict=True)]
    synchronise()
    sequential = time.perf_counter() - tic
    tic = time.perf_counter()
    together = task.evaluate_batch(configs, seeds)
    synchronise()
    batched = time.perf_counter() - tic
    differences = [
        abs(b.objective - a.objective) / abs(a.objective) for a, b in zip(alone, together, strict=True) if a.ok and b.ok
    ]
    return {
        "space": space,
        "q": q,
        "device": device,
        "iterations": iterations,
        "sequential_seconds": sequential,
        "batched_seconds": batched,
        "speedup": sequential / batched,
        "max_relative_difference": max(differences, default=float("nan")),
        "same_status": all(a.status == b.status for a, b in zip(alone, together, strict=True)),
    }


def main(args: argparse.Namespace) -> int:
    sizes = whole_numbers(args.q, "--q")
    at_least(50, iterations=args.iterations)
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    torch.set_num_threads(1)
    records = []
    for device in devices:
        for space in SPACES:
            for q in sizes:
                progress(f"{space}, q = {q}, {device} ...")
                records.append(measure(space, q, device, args.iterations))
    machine = provenance()
    print(f"\nBikeshare trials one by one and batched, 1 torch thread on the CPU, {machine['platform']}:\n")
    print(table(records))
    return write_records(records, args.json)


def table(records: list[dict]) -> str:
    rows = ["| space | device | q | sequential s | batched s | speedup | max rel. difference | same status |"]
    rows.append("|:--|:--|--:|--:|--:|--:|--:|:--|")
    for r in records:
        rows.append(
            f"| {r['space']} | {r['device']} | {r['q']} | {r['sequential_seconds']:.2f} | {r['batched_seconds']:.2f} "
            f"| {r['speedup']:.2f} | {r['max_relative_difference']:.1e} | {'yes' if r['same_status'] else 'no'} |"
        )
    return "\n".join(rows)
