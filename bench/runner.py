"""The tuning loop: ask, evaluate, record, tell, until the budget is spent; then re-evaluate the
incumbent with fresh seeds for its test score.

Seeds. ``run`` seeds Python, NumPy and torch from ``seed``. Trial ``i`` trains with
``trial_seed(seed, i)`` whatever the method, so for one seed every method sees the same training
noise at the same trial index (common random numbers). The incumbent (best validation objective
among ``ok`` trials) is retrained ``incumbent_repeats`` times with seeds no trial used, and its
test metric is read from those retrainings: a score selected on validation noise is optimistic.

Time. ``cumulative_seconds`` is the wall clock since the run started (method overhead included),
except that a task reporting a simulated ``cost_seconds`` has that cost counted instead of the
time its evaluation really took.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.budget import Budget, Spent
from bench.errors import BenchError
from bench.protocols import DifferentiableTask, Evaluation, Method, Task, TrainingLoopMethod
from bench.space import Config

log = logging.getLogger(__name__)
NOTHING_LEFT = "the method has nothing left to ask"
"""The stop reason of a run whose method returned no configuration (not a budget limit)."""


@dataclass(frozen=True)
class Trial:
    index: int
    config: Config
    evaluation: Evaluation
    seed: int
    ask_seconds: float
    """This trial's share of the ``ask()`` call that proposed it."""
    cost_seconds: float
    cumulative_seconds: float
    cumulative_steps: int
    best_so_far: float
    """Lowest ``ok`` objective up to and including this trial (nan before the first)."""


@dataclass
class RunResult:
    trials: list[Trial]
    stop_reason: str
    seconds: float
    incumbent: Trial | None = None
    final: list[Evaluation] = field(default_factory=list)
    final_seeds: list[int] = field(default_factory=list)


def trial_seed(seed: int, index: int) -> int:
    """The training seed of trial ``index`` in a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, 1, index]).generate_state(1)[0])


def final_seed(seed: int, repeat: int) -> int:
    """The training seed of the incumbent's ``repeat``-th re-evaluation: never a trial's seed."""
    return int(np.random.SeedSequence([seed, 2, repeat]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run(
    task: Task,
    method: Method,
    budget: Budget,
    seed: int,
    *,
    batch_size: int = 1,
    incumbent_repeats: int = 1,
    on_trial: Callable[[Trial], None] | None = None,
    progress: bool = False,
    label: str = "",
) -> RunResult:
    """Tune ``task`` with ``method`` until ``budget`` is spent or the method has nothing to ask.

    ``on_trial`` receives every finished trial before the method is told about it (the store
    appends it to disk there, so a crash keeps every finished trial).
    """
    if batch_size < 1:
        raise BenchError(f"batch_size={batch_size}: must be a positive whole number")
    if incumbent_repeats < 0:
        raise BenchError(f"incumbent_repeats={incumbent_repeats}: must be zero or more")
    if isinstance(method, TrainingLoopMethod):
        if not isinstance(task, DifferentiableTask):
            raise BenchError(
                f"method {type(method).__name__} tunes through the training loop and needs a differentiable "
                f"task (one with training_problem()); task {type(task).__name__} is not"
            )
        evaluate = functools.partial(method.evaluate, task)
    else:
        evaluate = task.evaluate
    public = tuple(task.public_metrics)
    seed_everything(seed)
    trials: list[Trial] = []
    spent = Spent()
    best = math.nan
    simulated_extra = 0.0  # simulated minus measured evaluation time
    start = time.perf_counter()
    # disable=None: tqdm draws only on a terminal, so logs and parallel workers get no bar
    bar = tqdm(
        total=budget.evaluations, desc=label or "trials", unit="trial", disable=None if progress else True, leave=False
    )
    try:
        while (stop_reason := budget.exhausted(spent)) is None:
            left = budget.evaluations_left(spent)
            n = batch_size if left is None else min(batch_size, left)
            tic = time.perf_counter()
            configs = method.ask(n)
            ask_seconds = (time.perf_counter() - tic) / max(len(configs), 1)
            if not configs:
                stop_reason = NOTHING_LEFT
                break
            if len(configs) > n:
                raise RuntimeError(f"{type(method).__name__}.ask({n}) returned {len(configs)} configurations")
            evaluations = []
            for config in configs:
                config = _suggestion(task, method, config)
                index = len(trials)
                training_seed = trial_seed(seed, index)
                tic = time.perf_counter()
                evaluation = _evaluate(evaluate, config, training_seed)
                measured = time.perf_counter() - tic
                cost = measured if evaluation.cost_seconds is None else evaluation.cost_seconds
                simulated_extra += cost - measured
                spent.evaluations += 1
                spent.train_steps += evaluation.cost_steps
                spent.seconds = time.perf_counter() - start + simulated_extra
                if evaluation.ok and (math.isnan(best) or evaluation.objective < best):
                    best = evaluation.objective
                trial = Trial(
                    index=index,
                    config=config,
                    evaluation=evaluation,
                    seed=training_seed,
                    ask_seconds=ask_seconds,
                    cost_seconds=cost,
                    cumulative_seconds=spent.seconds,
                    cumulative_steps=spent.train_steps,
                    best_so_far=best,
                )
                trials.append(trial)
                evaluations.append(evaluation)
                if on_trial is not None:
                    on_trial(trial)
                log.debug(
                    "trial %d %s: objective %.6g (%s), best %.6g, %.2f s",
                    index,
                    config,
                    evaluation.objective,
                    evaluation.status,
                    best,
                    cost,
                )
                bar.update(1)
                bar.set_postfix(best=f"{best:.4g}")
            method.tell(configs, [e.observed(public) for e in evaluations])
            spent.seconds = time.perf_counter() - start + simulated_extra
    finally:
        bar.close()
    result = RunResult(trials=trials, stop_reason=stop_reason, seconds=spent.seconds)
    ok = [t for t in trials if t.evaluation.ok]
    if ok:
        result.incumbent = min(ok, key=lambda t: t.evaluation.objective)
        for repeat in range(incumbent_repeats):
            result.final_seeds.append(final_seed(seed, repeat))
            result.final.append(_evaluate(evaluate, result.incumbent.config, result.final_seeds[-1]))
    return result


def _suggestion(task: Task, method: Method, config: Config) -> Config:
    try:
        return task.space.check(config, where=f"{type(method).__name__} suggestion")
    except BenchError as error:  # a method proposing outside its space is a bug, not user input
        raise RuntimeError(str(error)) from None


def _evaluate(evaluate: Callable[[Config, int], Evaluation], config: Config, seed: int) -> Evaluation:
    """Run one evaluation; an exception inside training becomes a ``failed`` trial."""
    try:
        return evaluate(config, seed)
    except BenchError:
        raise
    except Exception as error:  # noqa: BLE001 - a crashing configuration must not end the run
        log.warning("evaluation of %s failed: %s: %s", config, type(error).__name__, error)
        log.debug("%s", traceback.format_exc())
        return Evaluation(objective=math.nan, status="failed", error=f"{type(error).__name__}: {error}")
