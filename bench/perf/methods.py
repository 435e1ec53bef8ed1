"""``python -m bench.perf methods``: the suggestion overhead of each method.

    python -m bench.perf methods [--json FILE] [--sizes 10,50,100,200] [--repeats 5]
                                 [--methods random,gp_ei,gp_ts,skopt_gp] [--task hartmann6]
                                 [--dims 4,64,512]

Each method runs through the real runner on the task (hartmann6 by default, a cheap function, so
the time is the method's) until it holds ``max(sizes) + repeats`` observations; the runner records
every ``ask()``'s seconds, and the table gives the median over the ``repeats`` asks made with n,
n+1, ... observations for each n. Model-based methods use ``n_initial = min(sizes)``, so every
timed ask is a model suggestion (fit included), not a point of the initial design. Prints a
Markdown table; ``--json`` writes one record per (method, n) with ``method``, ``n_observations``,
``ask_seconds_median`` and the raw seconds. Timings are wall-clock on this machine with
``--torch-threads`` threads (default 1).

``--dims D1,D2,..``: the same against the number of hyperparameters too. The task (``--task``,
here branin by default) is embedded in each D dimensions (``task.dimensions``: inputs the function
ignores), and the table has one column per (D, n); the records add ``dimensions``. Every
black-box method runs by default (``DIM_METHODS``). With ``--task hyper_cleaning``, D is the number
of loss weights (``task.loss_granularity``, as ``bench.perf hypergrad --dims`` sets it; tuned beside
the learning rate, momentum and L2 penalty) on ``--dataset``, each trial a real training, so the
run lasts as long as its trainings; a method that cannot tune D hyperparameters
(``bench.errors.Unsupported``) is a row that says so.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd
import torch

from bench.budget import Budget
from bench.build import build
from bench.errors import Unsupported
from bench.perf.common import at_least, compose_config, whole_numbers, write_records
from bench.perf.hypergrad import TRAIN_IMAGES, hyper_cleaning_overrides
from bench.provenance import provenance
from bench.runner import RunSettings, run

HELP = "median seconds per ask() against the number of observations"
METHODS = ("random", "gp_ei", "gp_ts", "skopt_gp")
DIM_METHODS = ("random", "gp_ei", "gp_ts", "skopt_gp", "optuna_tpe", "optuna_gp", "cmaes", "turbo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument("--sizes", default="10,50,100,200", help="observation counts (default 10,50,100,200)")
    parser.add_argument("--repeats", type=int, default=5, help="asks timed per size (default 5)")
    parser.add_argument("--methods", help=f"default {','.join(METHODS)}; with --dims {','.join(DIM_METHODS)}")
    parser.add_argument("--task", help="task to run on (default hartmann6; with --dims branin)")
    parser.add_argument("--dims", help="numbers of hyperparameters, e.g. 4,64,512 (the task embedded in each)")
    parser.add_argument(
        "--dataset",
        default="fashion_mnist",
        choices=tuple(TRAIN_IMAGES),
        help="with --task hyper_cleaning: its images (default fashion_mnist, n = 5,000; digits: n = 1,000)",
    )
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (default 1)")


def method_overhead(
    method: str,
    task: str,
    sizes: list[int],
    repeats: int,
    seed: int = 0,
    dimensions: int | None = None,
    dataset: str = "fashion_mnist",
) -> list[dict]:
    """One record per n in ``sizes``: the median seconds of ``repeats`` asks made with n.. observations."""
    embedded = [] if dimensions is None else [f"task.dimensions={dimensions}"]
    if task == "hyper_cleaning" and dimensions is not None:
        # the training length fixed as suite=hyper_cleaning fixes it: d weights and the three classic hyperparameters
        embedded = [*hyper_cleaning_overrides(dimensions, dataset), "+task.space.iterations.fixed=500"]
    cfg = compose_config([f"task={task}", f"method={method}", f"seed={seed}", *embedded])
    if "n_initial" in cfg.method:
        cfg.method.n_initial = min(sizes)
    try:
        experiment = build(cfg)
    except Unsupported as error:
        return [{"method": method, "task": task, "dimensions": dimensions, "refused": str(error)}]
    budget = Budget(evaluations=max(sizes) + repeats)
    result = run(
        experiment.task,
        experiment.method,
        budget,
        seed,
        RunSettings(incumbent_repeats=0),
        progress=True,
        label=method if dimensions is None else f"{method}, d={dimensions}",
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
                "dimensions": len(experiment.task.space) if dimensions is None else dimensions,  # the d asked for
                "tuned": len(experiment.task.space),  # hyper_cleaning: d loss weights and 3 classic ones
                "torch_threads": torch.get_num_threads(),
            }
        )
    return records


def table(records: list[dict], by_dimension: bool = False) -> str:
    columns = ["dimensions", "n_observations"] if by_dimension else "n_observations"
    timed = [r for r in records if "refused" not in r]
    refused = [f"{r['method']} at d = {r['dimensions']}: {r['refused']}" for r in records if "refused" in r]
    if not timed:
        return "\n\n".join(f"refused: {line}" for line in refused)
    frame = pd.DataFrame(timed).pivot(index="method", columns=columns, values="ask_seconds_median")
    frame = frame.reindex(list(dict.fromkeys(r["method"] for r in records)))  # the order asked for
    frame.columns = [f"d={c[0]}, n={c[1]}" if by_dimension else f"n={c}" for c in frame.columns]
    shown = frame.map(lambda s: "-" if s != s else f"{s:.3f}")
    return shown.to_markdown() + "".join(f"\n\nrefused: {line}" for line in refused)


def main(args: argparse.Namespace) -> int:
    sizes = whole_numbers(args.sizes, "--sizes")
    at_least(repeats=args.repeats, torch_threads=args.torch_threads)
    torch.set_num_threads(args.torch_threads)
    dims = whole_numbers(args.dims, "--dims") if args.dims else [None]
    task = args.task or ("hartmann6" if args.dims is None else "branin")
    methods = (args.methods or ",".join(METHODS if args.dims is None else DIM_METHODS)).split(",")
    records = []
    for dimensions in dims:
        for method in methods:
            records.extend(
                method_overhead(method, task, sizes, args.repeats, dimensions=dimensions, dataset=args.dataset)
            )
    embedded = "" if args.dims is None else f" embedded in d = {args.dims} dimensions"
    if args.dims is not None and task == "hyper_cleaning":
        embedded = f" ({args.dataset}) with d = {args.dims} loss weights beside the learning rate, momentum and L2"
    print(
        f"\nMedian seconds per ask() on {task}{embedded}, {args.repeats} asks per size, "
        f"{args.torch_threads} torch thread(s), {provenance()['platform']}:\n"
    )
    print(table(records, by_dimension=args.dims is not None))
    return write_records(records, args.json)
