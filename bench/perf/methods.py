"""``python -m bench.perf methods``: the suggestion overhead of each method.

    python -m bench.perf methods [--json FILE] [--sizes 10,50,100,200] [--repeats 5]
                                 [--methods random,gp_ei,gp_ts,skopt_gp] [--task hartmann6]

Each method runs through the real runner on the task (hartmann6 by default, a cheap function, so
the time is the method's) until it holds ``max(sizes) + repeats`` observations; the runner records
every ``ask()``'s seconds, and the table gives the median over the ``repeats`` asks made with n,
n+1, ... observations for each n. Model-based methods use ``n_initial = min(sizes)``, so every
timed ask is a model suggestion (fit included), not a point of the initial design. Prints a
Markdown table; ``--json`` writes one record per (method, n) with ``method``, ``n_observations``,
``ask_seconds_median`` and the raw seconds. Timings are wall-clock on this machine with
``--torch-threads`` threads (default 1).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd
import torch

from bench.budget import Budget
from bench.build import build
from bench.perf.common import at_least, compose_config, whole_numbers, write_records
from bench.provenance import provenance
from bench.runner import RunSettings, run

HELP = "median seconds per ask() against the number of observations"
METHODS = ("random", "gp_ei", "gp_ts", "skopt_gp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument("--sizes", default="10,50,100,200", help="observation counts (default 10,50,100,200)")
    parser.add_argument("--repeats", type=int, default=5, help="asks timed per size (default 5)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"default {','.join(METHODS)}")
    parser.add_argument("--task", default="hartmann6", help="task to run on (default hartmann6)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (default 1)")


def method_overhead(method: str, task: str, sizes: list[int], repeats: int, seed: int = 0) -> list[dict]:
    """One record per n in ``sizes``: the median seconds of ``repeats`` asks made with n.. observations."""
    cfg = compose_config([f"task={task}", f"method={method}", f"seed={seed}"])
    if "n_initial" in cfg.method:
        cfg.method.n_initial = min(sizes)
    experiment = build(cfg)
    budget = Budget(evaluations=max(sizes) + repeats)
    result = run(
        experiment.task, experiment.method, budget, seed, RunSettings(incumbent_repeats=0), progress=True, label=method
    )
    records = []
    for n in sizes:
        seconds = [trial.ask_seconds for trial in result.trials[n : n + repeats]]
        records.append(
            {
                "method": method,
                "n_observations": n,
                "ask_seconds_median": statistics.median(seconds),
                "ask_seconds": seconds,
                "task": task,
                "torch_threads": torch.get_num_threads(),
            }
        )
    return records


def table(records: list[dict]) -> str:
    frame = pd.DataFrame(records).pivot(index="method", columns="n_observations", values="ask_seconds_median")
    frame.columns = [f"n={n}" for n in frame.columns]
    return frame.map(lambda s: f"{s:.3f}").to_markdown()


def main(args: argparse.Namespace) -> int:
    sizes = whole_numbers(args.sizes, "--sizes")
    at_least(repeats=args.repeats, torch_threads=args.torch_threads)
    torch.set_num_threads(args.torch_threads)
    records = []
    for method in args.methods.split(","):
        records.extend(method_overhead(method, args.task, sizes, args.repeats))
    print(
        f"\nMedian seconds per ask() on {args.task}, {args.repeats} asks per size, "
        f"{args.torch_threads} torch thread(s), {provenance()['platform']}:\n"
    )
    print(table(records))
    return write_records(records, args.json)
