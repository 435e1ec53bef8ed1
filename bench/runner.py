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

Faults. An exception inside training, or a trial that runs past ``trial_timeout_s`` (it then runs
in a forked worker process, through ``pebble``, which kills it at the limit), becomes a ``failed``
trial with its reason; a non-finite objective a ``diverged`` one; the method is told and the run
goes on. An exception inside the method's ``ask`` is retried once through the method's declared
``fallback`` (model-based methods: random unseen configurations), and the trials it proposes say
so (``proposed_by``); one inside ``tell`` is retried once. A run in which no trial succeeded is
marked by ``all_failed``.

Batches. When a method asks for several configurations at once (``batch_size`` > 1) and the task
can train them together (``BatchTask``: one vectorised run for small models), they are, unless
``vectorise`` is off; the batch's seconds are shared evenly among its trials.

Resume. ``history`` holds the trials a killed run recorded. They are replayed, not re-run: the
method is asked exactly as before (so its random streams, designs and fitted models reach the
state they had), each proposal is checked against the record, and the method is told the
recorded outcomes (a method that trains itself restores its meta-state from the record,
``TrainingLoopMethod.restore``). The run then goes on from the first unrecorded trial, with the
same seeds, clock and step count, so its trials equal an uninterrupted run's.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from pebble import concurrent
from tqdm.auto import tqdm

from bench.budget import Budget, Spent
from bench.errors import BenchError
from bench.protocols import BatchTask, DifferentiableTask, Evaluation, Method, Task, TrainingLoopMethod
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
    proposed_by: str = "method"
    """``method``, or ``fallback`` when the method's ``ask`` raised (``method_error`` says what)."""
    method_error: str | None = None


@dataclass
class RunResult:
    trials: list[Trial]
    stop_reason: str
    seconds: float
    incumbent: Trial | None = None
    final: list[Evaluation] = field(default_factory=list)
    final_seeds: list[int] = field(default_factory=list)
    method_errors: list[str] = field(default_factory=list)
    """Exceptions the method raised in ``ask`` or ``tell`` (each retried once)."""

    @property
    def all_failed(self) -> bool:
        """Trials ran and none of them succeeded."""
        return bool(self.trials) and self.incumbent is None

    def failure_summary(self) -> str:
        """One line: how many trials failed, and the commonest reason."""
        reasons = Counter(t.evaluation.error or t.evaluation.status for t in self.trials)
        reason, count = reasons.most_common(1)[0]
        return f"all {len(self.trials)} trials failed; the commonest reason ({count}x): {reason}"


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
    trial_timeout_s: float | None = None,
    vectorise: bool = True,
    history: Sequence[Trial] = (),
    on_trial: Callable[[Trial], None] | None = None,
    progress: bool = False,
    label: str = "",
) -> RunResult:
    """Tune ``task`` with ``method`` until ``budget`` is spent or the method has nothing to ask.

    ``on_trial`` receives every new trial before the method is told about it (the store appends
    it to disk there, so a crash keeps every finished trial); replayed ``history`` is not passed.
    """
    if batch_size < 1:
        raise BenchError(f"batch_size={batch_size}: must be a positive whole number")
    if incumbent_repeats < 0:
        raise BenchError(f"incumbent_repeats={incumbent_repeats}: must be zero or more")
    if trial_timeout_s is not None and not trial_timeout_s > 0:
        raise BenchError(f"trial_timeout_s={trial_timeout_s}: must be a positive number of seconds, or null")
    trains_itself = isinstance(method, TrainingLoopMethod)
    if trains_itself:
        if not isinstance(task, DifferentiableTask):
            raise BenchError(
                f"method {type(method).__name__} tunes through the training loop and needs a differentiable "
                f"task (one with training_problem()); task {type(task).__name__} is not"
            )
        evaluate = functools.partial(method.evaluate, task)
    else:
        evaluate = task.evaluate
    if trial_timeout_s is not None:
        evaluate = in_worker(evaluate, trial_timeout_s)
    evaluate_batch = None  # one vectorised training for a batch: black-box trials, no timeout
    if vectorise and batch_size > 1 and isinstance(task, BatchTask) and not trains_itself and trial_timeout_s is None:
        evaluate_batch = task.evaluate_batch
    public = tuple(task.public_metrics)
    seed_everything(seed)
    recorded = list(history)
    trials: list[Trial] = []
    method_errors: list[str] = []
    spent = Spent()
    best = math.nan
    simulated_extra = 0.0  # simulated minus measured evaluation time (and, on resume, the recorded clock)
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
            configs, proposed_by, method_error = _ask(method, n, method_errors)
            ask_seconds = (time.perf_counter() - tic) / max(len(configs), 1)
            if not configs:
                stop_reason = NOTHING_LEFT
                break
            if len(configs) > n:
                raise RuntimeError(f"{type(method).__name__}.ask({n}) returned {len(configs)} configurations")
            evaluations = []
            configs = [_suggestion(task, method, config) for config in configs]
            first = len(trials)
            seeds = [trial_seed(seed, first + k) for k in range(len(configs))]
            replayed = max(0, min(len(configs), len(recorded) - first))
            for k in range(replayed):  # resume: the recorded outcomes, not new trainings
                trial = _replayed(recorded[first + k], first + k, configs[k], seeds[k], type(method).__name__)
                if trains_itself:
                    method.restore(task, configs[k], seeds[k], trial.evaluation)
                spent.evaluations += 1
                spent.train_steps += trial.evaluation.cost_steps
                simulated_extra = trial.cumulative_seconds - (time.perf_counter() - start)
                spent.seconds = trial.cumulative_seconds
                best = trial.best_so_far
                trials.append(trial)
                evaluations.append(trial.evaluation)
                bar.update(1)
            clock = time.perf_counter() - start + simulated_extra
            if evaluate_batch is not None and 0 < replayed < len(configs):
                # a batch cut by a kill: trained whole again, grouped as it was, so that its new trials
                # round as they would have; they carry the whole batch's seconds
                whole = list(_evaluations(evaluate, evaluate_batch, configs, seeds, trial_timeout_s))
                share = sum(seconds for _, seconds in whole) / (len(configs) - replayed)
                fresh = iter([(evaluation, share) for evaluation, _ in whole[replayed:]])
            else:
                fresh = _evaluations(evaluate, evaluate_batch, configs[replayed:], seeds[replayed:], trial_timeout_s)
            for k, (evaluation, measured) in enumerate(fresh, start=replayed):
                config, training_seed = configs[k], seeds[k]
                if trains_itself and trial_timeout_s is not None:  # trained in a worker: take its state
                    method.restore(task, config, training_seed, evaluation)
                cost = measured if evaluation.cost_seconds is None else evaluation.cost_seconds
                simulated_extra += cost - measured
                clock += cost
                spent.evaluations += 1
                spent.train_steps += evaluation.cost_steps
                spent.seconds = clock
                if evaluation.ok and (math.isnan(best) or evaluation.objective < best):
                    best = evaluation.objective
                trial = Trial(
                    index=first + k,
                    config=config,
                    evaluation=evaluation,
                    seed=training_seed,
                    ask_seconds=ask_seconds,
                    cost_seconds=cost,
                    cumulative_seconds=spent.seconds,
                    cumulative_steps=spent.train_steps,
                    best_so_far=best,
                    proposed_by=proposed_by,
                    method_error=method_error,
                )
                if on_trial is not None:
                    on_trial(trial)
                log.debug(
                    "trial %d %s: objective %.6g (%s), best %.6g, %.2f s",
                    trial.index,
                    config,
                    evaluation.objective,
                    evaluation.status,
                    best,
                    cost,
                )
                trials.append(trial)
                evaluations.append(evaluation)
                bar.update(1)
                bar.set_postfix(best=f"{best:.4g}")
            _tell(method, configs, [e.observed(public) for e in evaluations], method_errors)
            spent.seconds = time.perf_counter() - start + simulated_extra
    finally:
        bar.close()
    if len(trials) < len(recorded):
        raise BenchError(
            f"cannot resume: the record holds {len(recorded)} trials, but this budget stops after {len(trials)}"
        )
    result = RunResult(trials=trials, stop_reason=stop_reason, seconds=spent.seconds, method_errors=method_errors)
    ok = [t for t in trials if t.evaluation.ok]
    if ok:
        result.incumbent = min(ok, key=lambda t: t.evaluation.objective)
        for repeat in range(incumbent_repeats):
            result.final_seeds.append(final_seed(seed, repeat))
            retraining = _evaluate(evaluate, result.incumbent.config, result.final_seeds[-1], trial_timeout_s)
            result.final.append(retraining)
    return result


def _ask(method: Method, n: int, errors: list[str]) -> tuple[list[Config], str, str | None]:
    """``method.ask(n)``; if it raises, once more through the method's ``fallback(n)``."""
    try:
        return method.ask(n), "method", None
    except BenchError:
        raise
    except Exception as error:  # noqa: BLE001 - a method's numerical failure must not end the run
        fallback = getattr(method, "fallback", None)
        message = f"ask: {type(error).__name__}: {error}"
        errors.append(message)
        if fallback is None:
            raise
        log.warning("%s.%s; proposing through its fallback", type(method).__name__, message)
        log.debug("%s", traceback.format_exc())
        return fallback(n), "fallback", message


def _tell(method: Method, configs: list[Config], evaluations: list[Evaluation], errors: list[str]) -> None:
    """``method.tell``; retried once if it raises."""
    for attempt in (1, 2):
        try:
            method.tell(configs, evaluations)
            return
        except BenchError:
            raise
        except Exception as error:
            errors.append(f"tell: {type(error).__name__}: {error}")
            if attempt == 2:
                raise
            log.warning("%s.tell raised %s: %s; retrying once", type(method).__name__, type(error).__name__, error)


def _replayed(trial: Trial, index: int, config: Config, seed: int, method: str) -> Trial:
    """A recorded trial, after checking that the method proposed it again with the same seed."""
    if trial.index != index:
        raise BenchError(f"cannot resume: record {index} holds trial {trial.index}; the trials.jsonl is damaged")
    if _plain(config) != _plain(trial.config) or seed != trial.seed:
        raise BenchError(
            f"cannot resume: at trial {trial.index} {method} proposes {_plain(config)}, but the record holds "
            f"{_plain(trial.config)} (seed {trial.seed}): the record was made by another method, code or configuration"
        )
    return replace(trial, config=config)


def _plain(config: Config) -> dict:
    """A configuration as its JSON record reads back (tuples as lists)."""
    return json.loads(json.dumps(config))


def _suggestion(task: Task, method: Method, config: Config) -> Config:
    try:
        return task.space.check(config, where=f"{type(method).__name__} suggestion")
    except BenchError as error:  # a method proposing outside its space is a bug, not user input
        raise RuntimeError(str(error)) from None


class TrialTimeout(Exception):  # noqa: N818 - named for what happened, as TimeoutError
    """A trial ran past ``trial_timeout_s`` and its worker was stopped."""


def in_worker(evaluate: Callable[[Config, int], Evaluation], timeout_s: float) -> Callable[[Config, int], Evaluation]:
    """``evaluate`` in a forked worker process that ``pebble`` kills after ``timeout_s`` seconds.

    Forked, so the task and its data are not pickled (only the ``Evaluation`` comes back); a
    method that trains itself gets its state back through ``TrainingLoopMethod.restore``.
    """
    worker = concurrent.process(timeout=timeout_s, context=multiprocessing.get_context("fork"))(evaluate)

    def evaluate_with_timeout(config: Config, seed: int) -> Evaluation:
        try:
            return worker(config, seed).result()
        except TimeoutError as error:
            if error.args[:1] == ("Task Timeout",):  # pebble's, not one the task raised itself
                raise TrialTimeout(timeout_s) from None
            raise

    return evaluate_with_timeout


def _evaluations(
    evaluate: Callable[[Config, int], Evaluation],
    evaluate_batch: Callable[[list[Config], list[int]], list[Evaluation]] | None,
    configs: list[Config],
    seeds: list[int],
    timeout_s: float | None,
) -> Iterator[tuple[Evaluation, float]]:
    """Each configuration's evaluation and its seconds, as each finishes. With ``evaluate_batch``
    (a task that trains several configurations in one vectorised run) the whole batch finishes at
    once and shares its seconds evenly; if it raises, each trial fails with its error."""
    if evaluate_batch is not None and len(configs) > 1:
        tic = time.perf_counter()
        try:
            evaluations = evaluate_batch(configs, seeds)
        except BenchError:
            raise
        except Exception as error:  # noqa: BLE001 - as _evaluate, for the whole batch
            log.warning(
                "batched evaluation of %d configurations failed: %s: %s", len(configs), type(error).__name__, error
            )
            evaluations = [_failed(error)] * len(configs)
        each = (time.perf_counter() - tic) / len(configs)
        yield from ((evaluation, each) for evaluation in evaluations)
        return
    for config, seed in zip(configs, seeds, strict=True):
        tic = time.perf_counter()
        evaluation = _evaluate(evaluate, config, seed, timeout_s)
        yield evaluation, time.perf_counter() - tic


def _failed(error: Exception) -> Evaluation:
    return Evaluation(objective=math.nan, status="failed", error=f"{type(error).__name__}: {error}")


def _evaluate(
    evaluate: Callable[[Config, int], Evaluation], config: Config, seed: int, timeout_s: float | None = None
) -> Evaluation:
    """Run one evaluation; an exception inside training, or a timeout, becomes a ``failed`` trial."""
    try:
        return evaluate(config, seed)
    except BenchError:
        raise
    except TrialTimeout:
        log.warning("evaluation of %s ran past trial_timeout_s=%g s and was stopped", config, timeout_s)
        error = f"timeout: ran past trial_timeout_s={timeout_s:g} s"
        return Evaluation(objective=math.nan, status="failed", error=error)
    except Exception as error:  # noqa: BLE001 - a crashing configuration must not end the run
        log.warning("evaluation of %s failed: %s: %s", config, type(error).__name__, error)
        log.debug("%s", traceback.format_exc())
        return _failed(error)
