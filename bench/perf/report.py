"""``python -m bench.perf report``: how long the full report takes on a large results folder.

    python -m bench.perf report [--json FILE] [--runs 1000] [--tasks 4] [--methods 5] [--trials 50]

Builds ``--runs`` synthetic runs (default 1,000: ``--tasks`` tasks x ``--methods`` methods x as
many seeds as it takes, ``--trials`` trials each) written through the real store
(``bench.store.RunStore``: ``run.json``, ``trials.jsonl``, ``trials.parquet``), so the report
reads exactly what a sweep leaves; then times ``load_runs`` and the full report
(``bench.report.page.write_report``: every table, every figure, the HTML page), each in its own
step. A method's objective is a noisy decreasing curve whose level depends on the method, so the
statistics have real differences to find. Prints a table; ``--json`` writes the record.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.identity import digest
from bench.perf.common import at_least, write_records
from bench.protocols import Evaluation
from bench.provenance import provenance
from bench.records import RunResult, Trial
from bench.report.load import load_runs
from bench.store import RunStore

HELP = "seconds of the full report on 1,000 synthetic runs"


def synthetic_runs(root: Path, runs: int, tasks: int, methods: int, trials: int) -> None:
    """Write ``runs`` completed runs under ``root``."""
    rng = np.random.default_rng(0)
    per_cell = math.ceil(runs / (tasks * methods))
    written = 0
    for t in range(tasks):
        for m in range(methods):
            for seed in range(per_cell):
                if written == runs:
                    return
                _one_run(root / f"t{t}_m{m}_s{seed}", f"task{t}", f"method{m}", seed, m, trials, rng)
                written += 1


def _one_run(directory: Path, task: str, method: str, seed: int, level: int, n: int, rng) -> None:
    identity = {"task": {"name": task}, "method": {"name": method}, "budget": {"evaluations": n}}
    meta = {
        "run_id": f"{task}-{method}-s{seed}",
        "task": task,
        "method": method,
        "seed": seed,
        "test_metric": "error",
        "budget": {"evaluations": n, "train_steps": None, "seconds": None},
        "experiment": {"id": digest(identity), "identity": identity},
    }
    store = RunStore.create(directory, meta, "error")
    made, seconds, steps, best = [], 0.0, 0, math.inf
    for i in range(n):
        objective = float(1.0 / (1 + i) + 0.05 * level + rng.normal(0, 0.02))
        cost = float(rng.uniform(0.5, 1.5))
        seconds += cost + 0.01
        steps += 100
        best = min(best, objective)
        evaluation = Evaluation(objective=objective, test={"error": objective + 0.01}, cost_steps=100)
        trial = Trial(i, {"x": float(rng.uniform())}, evaluation, i, 0.01, cost, seconds, steps, best)
        store.append(trial)
        made.append(trial)
    incumbent = min(made, key=lambda trial: trial.evaluation.objective)
    store.finish(RunResult(made, "budget", seconds, incumbent, [incumbent.evaluation], [0]), "completed")


def main(args: argparse.Namespace) -> int:
    at_least(runs=args.runs, tasks=args.tasks, methods=args.methods, trials=args.trials)
    from bench.report.page import write_report  # matplotlib: only for this benchmark, not every bench.perf start

    with tempfile.TemporaryDirectory(prefix="bench-perf-report-") as folder:
        root = Path(folder) / "results"
        tic = time.perf_counter()
        synthetic_runs(root, args.runs, args.tasks, args.methods, args.trials)
        write_seconds = time.perf_counter() - tic
        tic = time.perf_counter()
        runs, trials = load_runs(root)
        load_seconds = time.perf_counter() - tic
        tic = time.perf_counter()
        write_report(runs, trials, root, root / "report")
        report_seconds = time.perf_counter() - tic
        files = len(list((root / "report").iterdir()))
    record = {
        "runs": len(runs),
        "trials": len(trials),
        "tasks": args.tasks,
        "methods": args.methods,
        "write_runs_seconds": write_seconds,
        "load_runs_seconds": load_seconds,
        "report_seconds": report_seconds,
        "total_report_seconds": load_seconds + report_seconds,
        "report_files": files,
        "machine": provenance()["platform"],
    }
    table = pd.DataFrame([record])[
        ["runs", "trials", "tasks", "methods", "load_runs_seconds", "report_seconds", "total_report_seconds"]
    ]
    print(f"\nThe full report (every table, figure and the HTML page) on {len(runs)} synthetic runs:\n")
    print(table.to_markdown(index=False, floatfmt=(".0f", ".0f", ".0f", ".0f", ".3g", ".3g", ".3g")))
    return write_records([record], args.json)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="write the record here")
    parser.add_argument("--runs", type=int, default=1000, help="synthetic runs (default 1000)")
    parser.add_argument("--tasks", type=int, default=4, help="tasks they spread over (default 4)")
    parser.add_argument("--methods", type=int, default=5, help="methods per task (default 5)")
    parser.add_argument("--trials", type=int, default=50, help="trials per run (default 50)")
