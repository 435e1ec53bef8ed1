"""``python -m bench.perf text``: what a text trial costs.

    python -m bench.perf text [--json FILE] [--dataset rotten_tomatoes] [--linear-trials 8]
                              [--epochs 1] [--overrides '...'] [--skip linear|rnn]

- ``text_linear``: seconds of one trial for ``--linear-trials`` configurations drawn from the space
  (seeded): *cold* (a new task and an empty representation folder: tokenize, vectorise, write the
  ``.npz``, fit), *disk* (a new task, as another job would be: read the ``.npz``, fit) and *warm*
  (the same task again: the representation in memory, fit only). The median ratio cold / warm is
  what the representation cache saves.
- ``text_rnn`` epoch: seconds of ``--epochs`` epochs of plain training of the task's default
  configuration (after ``--overrides``), and per epoch.
- ``text_rnn`` hypergradient: one hyper-iteration of DrMAD (K = T, with the double-backward and the
  finite-difference Hessian-vector product; K = T/10) on that same training, against the training
  run alone, with each hypergradient's cosine against DrMAD K = T with double backward.

Every timing is wall-clock with one torch thread, after a warm-up; the records name the machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.build import build
from bench.errors import BenchError
from bench.perf.common import at_least, compose_config, hypergradient_experiment, progress, write_records
from bench.provenance import provenance

HELP = "seconds per text_linear trial (cold, warm) and text_rnn epoch and DrMAD"

HYPERGRADIENT_VARIANTS = {  # label -> DrMAD method overrides
    "drmad K=T (autograd)": [],
    "drmad K=T (finite_difference)": ["method.hvp=finite_difference"],
    "drmad K=T/10 (autograd)": ["method.reverse_fraction=0.1"],
}


def linear_costs(dataset: str, trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """Cold, disk and warm seconds of ``trials`` text_linear configurations."""
    records = []
    with tempfile.TemporaryDirectory() as folder:
        overrides = ["task=text_linear", "method=random", f"task.dataset={dataset}"]
        overrides.append(f"task.representation_cache={folder}")
        first = build(compose_config(overrides)).task
        configs = first.space.sample(trials, np.random.default_rng(seed))
        first.evaluate(configs[0], 0)  # warm-up (imports, first allocations)
        for index, config in enumerate(configs):
            for path in first.folder.glob("*.npz"):  # cold: no configuration's representation on disk
                path.unlink()
            cold_task, disk_task = build(compose_config(overrides)).task, build(compose_config(overrides)).task
            cold = _seconds(lambda c=config, t=cold_task: t.evaluate(c, 0))
            disk = _seconds(lambda c=config, t=disk_task: t.evaluate(c, 0))
            warm = _seconds(lambda c=config, t=cold_task: t.evaluate(c, 0))
            records.append(
                {
                    "benchmark": "text_linear",
                    "dataset": dataset,
                    "trial": index,
                    "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
                    "cold_seconds": cold,
                    "disk_seconds": disk,
                    "warm_seconds": warm,
                    "cold_over_warm": cold / warm,
                    "vectorised": [cold_task.built, disk_task.built],
                }
            )
    return records


def rnn_costs(dataset: str, epochs: int, overrides: list[str], seed: int = 0) -> list[dict[str, Any]]:
    """Training and one DrMAD hyper-iteration of text_rnn's default configuration for ``epochs``."""
    base = ["task=text_rnn", f"task.dataset={dataset}", "device=cpu", *overrides]
    records: list[dict[str, Any]] = []
    reference = None
    for label, method_overrides in HYPERGRADIENT_VARIANTS.items():
        experiment = hypergradient_experiment([*base, "method=drmad", *method_overrides])
        task, method = experiment.task, experiment.method
        config = {**task.space.default, "epochs": epochs}
        problem = task.training_problem(config, seed)
        hyper = method.initial(config, problem)
        if reference is None:  # the training run alone, once, after a short warm-up
            method.train_only(task.training_problem({**config, "epochs": 1}, seed), hyper)
            training = _seconds(lambda m=method, p=problem, h=hyper: m.train_only(p, h))
            records.append(
                {
                    "benchmark": "text_rnn_epoch",
                    "dataset": dataset,
                    "config": config,
                    "steps": problem.steps,
                    "parameters": int(problem.w0.numel()),
                    "seconds": training,
                    "seconds_per_epoch": training / epochs,
                    "seconds_per_step": training / problem.steps,
                }
            )
        tic = time.perf_counter()
        hypergradient = method.hypergradient(problem, hyper)
        seconds = time.perf_counter() - tic
        gradient = hypergradient.gradient
        reference = gradient if reference is None else reference
        records.append(
            {
                "benchmark": "text_rnn_hypergradient",
                "dataset": dataset,
                "method": label,
                "steps": problem.steps,
                "reverse_steps": hypergradient.reverse_hvps,
                "seconds": seconds,
                "over_training": seconds / training,
                "cosine_with_autograd_k_t": float(gradient @ reference / (gradient.norm() * reference.norm())),
            }
        )
    return records


def tables(records: list[dict[str, Any]]) -> str:
    frame = pd.DataFrame(records)
    out = []
    linear = frame[frame["benchmark"] == "text_linear"]
    if len(linear):
        shown = linear[["trial", "cold_seconds", "disk_seconds", "warm_seconds", "cold_over_warm"]].copy()
        shown["trial"] = shown["trial"].astype(int).astype(str)
        shown["representation"] = [_representation(c) for c in linear["config"]]
        medians = {"trial": "median", "representation": ""} | {
            key: statistics.median(linear[key]) for key in ("cold_seconds", "disk_seconds", "warm_seconds")
        }
        medians["cold_over_warm"] = medians["cold_seconds"] / medians["warm_seconds"]
        shown = pd.concat([shown, pd.DataFrame([medians])], ignore_index=True)
        out.append(
            f"text_linear on {linear['dataset'].iloc[0]}: seconds per trial, cold (vectorise and fit), disk "
            "(read the cached .npz and fit), warm (in memory, fit only)\n\n"
            + shown[
                ["trial", "representation", "cold_seconds", "disk_seconds", "warm_seconds", "cold_over_warm"]
            ].to_markdown(index=False, floatfmt=".3g")
        )
    hyper = frame[frame["benchmark"] == "text_rnn_hypergradient"]
    for row in (SimpleNamespace(**r) for r in records if r["benchmark"] == "text_rnn_epoch"):
        shown = pd.DataFrame(
            [{"run": "training", "seconds": row.seconds, "over training": 1.0, "cosine": float("nan")}]
            + [
                {
                    "run": r.method,
                    "seconds": r.seconds,
                    "over training": r.over_training,
                    "cosine": r.cosine_with_autograd_k_t,
                }
                for r in hyper.itertuples()
            ]
        )
        config = row.config
        out.append(
            f"text_rnn on {row.dataset}: {config['cell']} {config['layers']}x{config['hidden_units']}, embedding "
            f"{config['embedding_size']}, batch {config['batch_size']}, {row.parameters:,} weights; "
            f"{row.steps} steps ({config['epochs']} epoch(s)), {row.seconds_per_epoch:.3g} s per epoch, "
            f"{1000 * row.seconds_per_step:.3g} ms per step. One hyper-iteration against the training run "
            "(cosine: with DrMAD K = T, autograd):\n\n" + shown.to_markdown(index=False, floatfmt=".4g")
        )
    return "\n\n".join(out)


def _representation(config: dict[str, Any]) -> str:
    return (
        f"{config['weighting']}, ngrams {tuple(config['ngram_range'])}, stop words {config['stop_words']}, "
        f"min_df {config['min_df']}"
    )


def _seconds(work: Any) -> float:
    tic = time.perf_counter()
    work()
    return time.perf_counter() - tic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument("--dataset", default="rotten_tomatoes", help="corpus (default rotten_tomatoes)")
    parser.add_argument("--linear-trials", type=int, default=8, help="text_linear configurations timed (default 8)")
    parser.add_argument("--epochs", type=int, default=1, help="text_rnn epochs timed (default 1)")
    parser.add_argument(
        "--overrides", default="", help="Hydra overrides of text_rnn, space-separated (e.g. another default)"
    )
    parser.add_argument("--skip", default="", help="linear or rnn: leave that part out")


def main(args: argparse.Namespace) -> int:
    """The ``text`` benchmark of ``python -m bench.perf``: records, tables, and ``--json``."""
    at_least(linear_trials=args.linear_trials, epochs=args.epochs)
    if args.skip not in ("", "linear", "rnn"):
        raise BenchError(f"--skip {args.skip!r}: allowed: linear, rnn")
    records: list[dict] = []
    if args.skip != "linear":
        progress(f"  text_linear, {args.linear_trials} configurations ...")
        records += linear_costs(args.dataset, args.linear_trials)
    if args.skip != "rnn":
        progress(f"  text_rnn, {args.epochs} epoch(s) of training and three hypergradients ...")
        records += rnn_costs(args.dataset, args.epochs, args.overrides.split())
    machine = provenance()
    for record in records:
        record.update(torch_threads=torch.get_num_threads(), platform=machine["platform"])
    print(f"\nOne torch thread, {machine['platform']}:\n")
    print(tables(records))
    return write_records(records, args.json)
