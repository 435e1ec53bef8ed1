"""``python -m bench.perf importance``: seconds of fANOVA against the number of trials.

    python -m bench.perf importance [--json FILE] [--trials 100,500,1000] [--task text_linear]

The report reads hyperparameter importance from at most ``MAX_TRIALS`` trials of an experiment
(``bench.report.importance``) because Optuna's fANOVA grows faster than linearly in the trials;
this measures how fast. The configurations are draws from the task's search space (its config;
no data is loaded) and the objective a fixed function of them on the prior's scale (a bowl in the
first hyperparameter plus a smaller term in the last) with seeded noise as large as a trained
model's seed-to-seed spread, so the forest has structure to split on and noise to grow deep on, as
it does on real trials.
Seconds are wall-clock, one fit per size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from bench.perf.common import compose_config, progress, whole_numbers, write_records
from bench.provenance import provenance
from bench.space import SearchSpace

HELP = "seconds of fANOVA importance against the number of trials"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument("--trials", default="100,500,1000", help="numbers of trials (default 100,500,1000)")
    parser.add_argument("--task", default="text_linear", help="whose search space (default text_linear)")


def measure(space: SearchSpace, n: int, seed: int = 0) -> dict:
    from bench.report.importance import fanova, unit_values  # Optuna: only for this benchmark

    configs = space.sample(n, np.random.default_rng(seed))
    names = space.tuned
    values = [unit_values(space, config) for config in configs]
    noise = np.random.default_rng([seed, 1]).normal(0.0, 0.05, n)
    objectives = [(v[names[0]] - 0.3) ** 2 + 0.1 * v[names[-1]] + e for v, e in zip(values, noise, strict=True)]
    tic = time.perf_counter()
    table = fanova(space, configs, objectives, seed=seed)
    seconds = time.perf_counter() - tic
    return {"trials": n, "hyperparameters": len(names), "seconds": seconds, "top": table["hyperparameter"].iloc[0]}


def main(args: argparse.Namespace) -> int:
    sizes = whole_numbers(args.trials, "--trials", least=10)
    cfg = compose_config([f"task={args.task}"])
    space = SearchSpace.from_config(OmegaConf.to_container(cfg.task.space, resolve=True), where="task.space")
    from bench.report.importance import MAX_TRIALS

    records = []
    for n in sizes:
        progress(f"  fANOVA on {n} trials ...")
        records.append({"task": args.task, **measure(space, n), "platform": provenance()["platform"]})
    print(
        f"\nSeconds of one fANOVA (Optuna's FanovaImportanceEvaluator) on {args.task}'s space; the report "
        f"reads at most {MAX_TRIALS} trials per experiment:\n"
    )
    print(
        pd.DataFrame(records)[["trials", "hyperparameters", "seconds", "top"]].to_markdown(index=False, floatfmt=".3g")
    )
    return write_records(records, args.json)
