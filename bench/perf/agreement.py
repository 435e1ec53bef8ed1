"""``python -m bench.perf agreement``: how close each approximate hypergradient is to the exact one.

    python -m bench.perf agreement [--json FILE] [--tasks bikeshare,mnist_mlp] [--steps 100,1000]
                                   [--overrides '+task.space.hidden_nodes.fixed=16 ...']

Per task and T, from the task's default configuration (T training steps, per-layer L2, seed 0,
float64): the cosine similarity and the norm ratio against exact reverse mode of DrMAD's
hypergradient with K = T and K = T/10 points, truncated reverse mode over the last T/10 steps, and
implicit differentiation with i = 10 and 50 Neumann terms (on the L2 entries only, the ones it sees),
and forward mode (exact: a check). ``--overrides`` changes the task first (Hydra
overrides: another fixed architecture, another default configuration). T sets the number of
training steps whatever the task counts them in (bikeshare's ``iterations``; text_rnn's epochs
times batches).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from bench.config import group_options
from bench.errors import BenchError
from bench.perf.common import hypergradient_experiment, progress, whole_numbers, write_records

HELP = "cosine similarity of each approximate hypergradient with the exact one"

MEMBERS = (  # label, method config, its overrides; the first is the reference
    ("exact", "exact_hypergrad", []),
    ("drmad K=T", "drmad", []),
    ("drmad K=T/10", "drmad", ["method.reverse_fraction=0.1"]),
    ("truncated K=T/10", "truncated_hypergrad", ["method.reverse_fraction=0.1"]),
    ("implicit i=10", "implicit_hypergrad", ["method.terms=10"]),
    ("implicit i=50", "implicit_hypergrad", ["method.terms=50"]),
    ("forward", "forward_hypergrad", []),
)
"""Every member with a hypergradient of the trained validation loss. Online hypergradients are not
here: theirs are one-step hypergradients of other losses (the next batch's training loss, the
validation loss one step ahead), not estimates of this one."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument("--tasks", default="bikeshare,mnist_mlp", help="default bikeshare,mnist_mlp")
    parser.add_argument("--steps", default="100,1000", help="training lengths T (default 100,1000)")
    parser.add_argument(
        "--overrides",
        default="",
        help="Hydra overrides of the task, space-separated (e.g. '+task.space.hidden_nodes.fixed=16')",
    )


def agreement(task_name: str, steps: int, seed: int = 0, overrides: tuple[str, ...] = ()) -> list[dict]:
    """DrMAD (K = T, T/10) against exact reverse mode on one task at T = ``steps``, from the
    task's default configuration (after ``overrides``, Hydra overrides of the task)."""
    records = []
    exact = None
    extra = list(overrides)
    for label, method_name, overrides in MEMBERS:  # noqa: B020 - the method's own overrides
        experiment = hypergradient_experiment(
            [f"task={task_name}", "task.l2_granularity=per_layer", f"method={method_name}", "task.dtype=float64"]
            + [*overrides, *extra]
        )
        config = dict(experiment.task.space.default)
        if "iterations" in config:  # a task that counts its training in steps (bikeshare, mnist_mlp)
            config["iterations"] = steps
        problem = replace(experiment.task.training_problem(config, seed), steps=steps)
        gradient = experiment.method.hypergradient(problem, experiment.method.initial(config, problem)).gradient
        if exact is None:
            exact = gradient
            continue
        seen = torch.ones_like(exact, dtype=torch.bool)
        if "learning_rate" not in experiment.method.TUNES:  # implicit: the L2 entries only
            seen[:2] = False
        cosine = float(gradient[seen] @ exact[seen] / (gradient[seen].norm() * exact[seen].norm()))
        records.append(
            {
                "task": task_name,
                "dataset": experiment.task.describe().get("dataset"),
                "T": steps,
                "method": label,
                "config": config,
                "entries": "all" if bool(seen.all()) else "l2",
                "cosine": cosine,
                "norm_ratio": float(gradient[seen].norm() / exact[seen].norm()),
                "hyperparameters": ["log_learning_rate", "logit_momentum", *(f"log_l2.{n}" for n in problem.l2_names)],
                "exact": exact.tolist(),
                "hypergradient": gradient.tolist(),
            }
        )
    return records


def main(args: argparse.Namespace) -> int:
    steps = whole_numbers(args.steps, "--steps")
    known = [name for name in group_options("task") if "/" not in name]
    unknown = [name for name in args.tasks.split(",") if name not in known]
    if unknown:
        raise BenchError(f"--tasks {','.join(unknown)}: allowed: {', '.join(known)}")
    records = []
    for task_name in args.tasks.split(","):
        for t in steps:
            progress(f"  {task_name}, T={t} ...")
            records.extend(agreement(task_name, t, overrides=tuple(args.overrides.split())))
    frame = pd.DataFrame(records)[["task", "dataset", "T", "method", "entries", "cosine", "norm_ratio"]]
    print(
        "\nEach hypergradient against exact reverse mode, from each task's default configuration (per-layer L2, "
        "float64; entries: the hyperparameters compared, l2 where a method sees only the penalties):\n"
    )
    print(frame.to_markdown(index=False, floatfmt=".4g"))
    return write_records(records, args.json)
