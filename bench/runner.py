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

Rungs. A multi-fidelity method (``FidelityMethod``) asks for rungs, partial trainings that may
continue one it paused (``bench.fidelity``): each is a trial recording its ``fidelity`` and the
trial it ``continues``, costing its new steps; a continued training keeps its first seed. The best
so far and the incumbent are the best at the highest fidelity an ``ok`` trial reached. A rung's
new steps are known before it trains, so a rung that would pass ``budget.train_steps`` is not
started: a multi-fidelity run stops inside its step budget.

How one training runs (faults, timeouts, batches) is ``bench.evaluations``. ``run`` reads as
those steps: ``_replay`` (recorded trials), ``_fresh`` (new evaluations, one by one or as one
batch), ``_Ledger.record`` (clock, steps, best so far) and ``_retrain`` (the incumbent).
``RunSettings`` holds, and validates in one place, how a run runs.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.budget import Budget, Spent
from bench.errors import BenchError, Unsupported
from bench.evaluations import Evaluate, EvaluateBatch, evaluate_all, evaluate_once, in_worker
from bench.fidelity import FidelityRun, PausedTrainings, check_untimed
from bench.protocols import (
    BatchTask,
    DifferentiableTask,
    Evaluation,
    FidelityMethod,
    Method,
    Rung,
    Task,
    TrainingLoopMethod,
)
from bench.records import NOTHING_LEFT, RunResult, Trial
from bench.space import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """How a run runs, beside its budget and seed; validated here and nowhere else."""

    batch_size: int = 1
    """Configurations per ``ask()``."""
    incumbent_repeats: int = 1
    """Fresh-seed retrainings of the incumbent (0: none; the run then has no retrained score)."""
    trial_timeout_s: float | None = None
    """A trial running longer fails (it then runs in a forked worker); None: no limit."""
    vectorise: bool = True
    """A batch of a ``BatchTask``: one vectorised training; False: one after another."""

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise BenchError(f"batch_size={self.batch_size}: must be a positive whole number")
        if isinstance(self.incumbent_repeats, bool) or not isinstance(self.incumbent_repeats, int):
            raise BenchError(f"incumbent_repeats={self.incumbent_repeats}: must be a whole number, zero or more")
        if self.incumbent_repeats < 0:
            raise BenchError(f"incumbent_repeats={self.incumbent_repeats}: must be a whole number, zero or more")
        timeout = self.trial_timeout_s
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
            raise BenchError(f"trial_timeout_s={timeout}: must be a positive number of seconds, or null for no limit")


def trial_seed(seed: int, index: int) -> int:
    """The training seed of trial ``index`` in a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, 1, index]).generate_state(1)[0])


def final_seed(seed: int, repeat: int) -> int:
    """The training seed of the incumbent's ``repeat``-th re-evaluation: never a trial's seed."""
    return int(np.random.SeedSequence([seed, 2, repeat]).generate_state(1)[0])


def reached(fidelity: int | None) -> float:
    """The fidelity a trial's training reached: its rung's steps, inf for a full training (None)."""
    return math.inf if fidelity is None else fidelity


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class _Ledger:
    """What a run has done so far: its trials, what it spent, its best objective and its clock."""

    start: float = field(default_factory=time.perf_counter)
    spent: Spent = field(default_factory=Spent)
    best: float = math.nan
    offset: float = 0.0
    """Simulated minus measured evaluation time and, on resume, the recorded clock's lead."""
    trials: list[Trial] = field(default_factory=list)
    top: float = -math.inf
    """The highest fidelity an ``ok`` trial reached (inf: a full training); ``best`` is among those."""

    def clock(self) -> float:
        """Seconds the run has spent: wall clock since its start, plus ``offset``."""
        return time.perf_counter() - self.start + self.offset

    def replayed(self, trial: Trial) -> None:
        """A recorded trial: its costs, clock and best so far as recorded."""
        self.spent.evaluations += 1
        self.spent.train_steps += trial.evaluation.cost_steps
        self.offset = trial.cumulative_seconds - (time.perf_counter() - self.start)
        self.spent.seconds = trial.cumulative_seconds
        self.best = trial.best_so_far
        if trial.evaluation.ok:
            self.top = max(self.top, reached(trial.fidelity))
        self.trials.append(trial)

    def record(self, evaluation: Evaluation, measured: float, clock: float, **trial: object) -> Trial:
        """A new trial, which finished at ``clock`` (before its own cost) after ``measured`` seconds;
        a task's simulated ``cost_seconds`` replaces the measured ones on the run's clock."""
        cost = measured if evaluation.cost_seconds is None else evaluation.cost_seconds
        self.offset += cost - measured
        self.spent.evaluations += 1
        self.spent.train_steps += evaluation.cost_steps
        self.spent.seconds = clock + cost
        if evaluation.ok:
            level = reached(trial.get("fidelity"))  # type: ignore[arg-type]
            if level > self.top:  # a higher fidelity: scores below it no longer compare
                self.top, self.best = level, math.nan
            if level == self.top and (math.isnan(self.best) or evaluation.objective < self.best):
                self.best = evaluation.objective
        made = Trial(
            index=len(self.trials),
            evaluation=evaluation,
            cost_seconds=cost,
            cumulative_seconds=self.spent.seconds,
            cumulative_steps=self.spent.train_steps,
            best_so_far=self.best,
            **trial,  # type: ignore[arg-type]
        )
        self.trials.append(made)
        return made


def run(
    task: Task,
    method: Method,
    budget: Budget,
    seed: int,
    settings: RunSettings = RunSettings(),  # noqa: B008 - frozen, so one shared default is safe
    *,
    history: Sequence[Trial] = (),
    on_trial: Callable[[Trial], None] | None = None,
    progress: bool = False,
    label: str = "",
    paused: PausedTrainings | None = None,
) -> RunResult:
    """Tune ``task`` with ``method`` until ``budget`` is spent or the method has nothing to ask.

    ``on_trial`` receives every new trial before the method is told about it (the store appends
    it to disk there, so a crash keeps every finished trial); replayed ``history`` is not passed.
    ``paused`` keeps a multi-fidelity method's paused trainings (``bench.fidelity``; default: in
    memory only).
    """
    evaluate, evaluate_batch = _evaluators(task, method, settings)
    trains_itself = isinstance(method, TrainingLoopMethod)
    public = tuple(task.public_metrics)
    seed_everything(seed)
    fidelity = FidelityRun(task, method, paused) if isinstance(method, FidelityMethod) else None
    if fidelity is not None:
        check_untimed(settings.trial_timeout_s, type(method).__name__)
    recorded = list(history)
    ledger = _Ledger()
    method_errors: list[str] = []
    # disable=None: tqdm draws only on a terminal, so logs and parallel workers get no bar
    bar = tqdm(
        total=budget.evaluations, desc=label or "trials", unit="trial", disable=None if progress else True, leave=False
    )
    try:
        while (stop_reason := budget.exhausted(ledger.spent)) is None:
            left = budget.evaluations_left(ledger.spent)
            n = settings.batch_size if left is None else min(settings.batch_size, left)
            proposal = _propose(task, method, n, fidelity)
            method_errors += proposal.errors
            if not proposal.configs:
                stop_reason = NOTHING_LEFT
                break
            if fidelity is not None and (stop_reason := fidelity.passes(budget, ledger.spent, proposal.rungs)):
                break
            first = len(ledger.trials)
            seeds = proposal.seeds(seed, first)
            evaluations = _replay(ledger, recorded[first : first + len(seeds)], proposal, seeds, task, method)
            bar.update(len(evaluations))
            trainer = evaluate  # a rung trains from its paused state (bench.fidelity)
            if fidelity is not None:
                trainer = fidelity.evaluator(proposal.rungs, first, len(evaluations))
            fresh = _fresh(trainer, evaluate_batch, proposal.configs, seeds, len(evaluations), settings.trial_timeout_s)
            restore = method.restore if trains_itself and settings.trial_timeout_s is not None else None
            for trial in _recorded(ledger, fresh, proposal, seeds, len(evaluations), task, restore):
                if on_trial is not None:
                    on_trial(trial)  # on disk before the method hears of it
                evaluations.append(trial.evaluation)
                bar.update(1)
                bar.set_postfix(best=f"{ledger.best:.4g}")
            _tell(method, proposal.asked, [e.observed(public) for e in evaluations], method_errors)
            ledger.spent.seconds = ledger.clock()
    finally:
        bar.close()
    if len(ledger.trials) < len(recorded):
        raise BenchError(
            f"cannot resume: the record holds {len(recorded)} trials, but this budget stops after {len(ledger.trials)}"
        )
    result = RunResult(
        trials=ledger.trials, stop_reason=stop_reason, seconds=ledger.spent.seconds, method_errors=method_errors
    )
    ok = [t for t in ledger.trials if t.evaluation.ok and reached(t.fidelity) == ledger.top]  # at the highest fidelity
    if ok:
        result.incumbent = min(ok, key=lambda t: t.evaluation.objective)
        result.final_seeds = [final_seed(seed, repeat) for repeat in range(settings.incumbent_repeats)]
        result.final = _retrain(evaluate, result.incumbent.config, result.final_seeds, settings.trial_timeout_s)
    return result


def check_differentiable(task: Task, method: Method) -> None:
    """A one-line refusal of a method that trains through the training loop on a task it cannot
    differentiate (checked when the run is built, and again here for a caller of ``run``)."""
    if isinstance(method, TrainingLoopMethod) and not isinstance(task, DifferentiableTask):
        raise Unsupported(
            f"method {type(method).__name__} tunes through the training loop and needs a differentiable "
            f"task (one with training_problem()); task {type(task).__name__} is not"
        )


def _evaluators(task: Task, method: Method, settings: RunSettings) -> tuple[Evaluate, EvaluateBatch | None]:
    """How one configuration is evaluated (the task, or a method that trains itself; in a worker
    under a timeout) and, where a batch trains as one vectorised run, how a batch is."""
    trains_itself = isinstance(method, TrainingLoopMethod)
    if trains_itself:
        check_differentiable(task, method)
        evaluate: Evaluate = functools.partial(method.evaluate, task)
    else:
        evaluate = task.evaluate
    if settings.trial_timeout_s is not None:
        return in_worker(evaluate, settings.trial_timeout_s), None  # a timed trial runs alone
    batched = settings.vectorise and settings.batch_size > 1 and isinstance(task, BatchTask)
    batched = batched and not trains_itself and not isinstance(method, FidelityMethod)
    return evaluate, task.evaluate_batch if batched else None


def _replay(
    ledger: _Ledger, recorded: Sequence[Trial], proposal: _Proposal, seeds: list[int], task: Task, method: Method
) -> list[Evaluation]:
    """Resume: the recorded outcomes of the first ``len(recorded)`` configurations of a batch, not
    new trainings, after checking that the method proposed them again (a rung: to the same steps,
    continuing the same trial)."""
    evaluations = []
    for k, record in enumerate(recorded):
        config, rung = proposal.configs[k], proposal.rung(k)
        trial = _replayed(record, len(ledger.trials), config, seeds[k], type(method).__name__, rung)
        if isinstance(method, TrainingLoopMethod):
            method.restore(task, config, seeds[k], trial.evaluation)
        if proposal.fidelity is not None:
            proposal.fidelity.replayed(proposal.rungs[k], trial.index, seeds[k], trial.evaluation.status == "failed")
        ledger.replayed(trial)
        evaluations.append(trial.evaluation)
    return evaluations


def _fresh(
    evaluate: Evaluate,
    evaluate_batch: EvaluateBatch | None,
    configs: list[Config],
    seeds: list[int],
    replayed: int,
    timeout_s: float | None,
) -> Iterator[tuple[Evaluation, float]]:
    """The new evaluations of a batch whose first ``replayed`` configurations were replayed, each
    with its seconds. A vectorised batch cut by a kill is trained whole again, grouped as it was,
    so its new trials round as they would have; they share the whole batch's seconds."""
    if evaluate_batch is None or not 0 < replayed < len(configs):
        yield from evaluate_all(evaluate, evaluate_batch, configs[replayed:], seeds[replayed:], timeout_s)
        return
    whole = list(evaluate_all(evaluate, evaluate_batch, configs, seeds, timeout_s))
    share = sum(seconds for _, seconds in whole) / (len(configs) - replayed)
    yield from ((evaluation, share) for evaluation, _ in whole[replayed:])


def _retrain(evaluate: Evaluate, config: Config, seeds: list[int], timeout_s: float | None) -> list[Evaluation]:
    """The incumbent retrained once per seed (seeds no trial used): its unselected scores."""
    return [evaluate_once(evaluate, config, seed, timeout_s) for seed in seeds]


@dataclass
class _Proposal:
    """What one ``ask`` gave: configurations inside the space, who proposed them, its seconds; for
    a multi-fidelity method, the rungs (each a configuration, its fidelity and its lineage)."""

    configs: list[Config]
    proposed_by: str
    method_error: str | None
    ask_seconds: float
    """Each configuration's share of the ask's seconds."""
    errors: list[str]
    rungs: list[Rung] = field(default_factory=list)
    fidelity: FidelityRun | None = None
    continues: list[int | None] = field(default_factory=list)
    """Per rung, the trial whose paused training it continues (known before any is trained)."""

    @property
    def asked(self) -> list[Any]:
        """What the method is told about: its rungs, or its configurations."""
        return self.rungs if self.fidelity is not None else self.configs

    def rung(self, k: int) -> dict[str, int | None]:
        """What the ``k``-th trial records of its rung (nothing for a full training)."""
        if self.fidelity is None:
            return {}
        return {"fidelity": self.rungs[k].fidelity, "continues": self.continues[k]}

    def seeds(self, seed: int, first: int) -> list[int]:
        """Trial ``first + k`` trains with ``trial_seed(seed, first + k)``; a continued rung keeps
        the seed its training started with."""
        seeds = [trial_seed(seed, first + k) for k in range(len(self.configs))]
        if self.fidelity is None:
            return seeds
        return [self.fidelity.seed(rung, new) for rung, new in zip(self.rungs, seeds, strict=True)]


def _propose(task: Task, method: Method, n: int, fidelity: FidelityRun | None = None) -> _Proposal:
    """Up to ``n`` configurations from ``method`` (or its fallback), each checked against the space."""
    errors: list[str] = []
    tic = time.perf_counter()
    asked, proposed_by, method_error = _ask(method, n, errors)
    ask_seconds = (time.perf_counter() - tic) / max(len(asked), 1)
    if len(asked) > n:
        raise RuntimeError(f"{type(method).__name__}.ask({n}) returned {len(asked)} configurations")
    if fidelity is None:
        configs = [_suggestion(task, method, config) for config in asked]
        return _Proposal(configs, proposed_by, method_error, ask_seconds, errors)
    rungs = fidelity.check(list(asked), f"{type(method).__name__}.ask({n})")
    rungs = [replace(rung, config=_suggestion(task, method, rung.config)) for rung in rungs]
    continues = [fidelity.continues(rung) for rung in rungs]
    configs = [rung.config for rung in rungs]
    return _Proposal(configs, proposed_by, method_error, ask_seconds, errors, rungs, fidelity, continues)


def _recorded(
    ledger: _Ledger,
    fresh: Iterator[tuple[Evaluation, float]],
    proposal: _Proposal,
    seeds: list[int],
    start: int,
    task: Task,
    restore: Callable[[Task, Config, int, Evaluation], None] | None,
) -> Iterator[Trial]:
    """Each new evaluation of a batch (from its ``start``-th configuration) as a recorded trial; a
    method that trained in a worker first takes the state the worker left (``restore``)."""
    clock = ledger.clock()
    for k, (evaluation, measured) in enumerate(fresh, start=start):
        if restore is not None:
            restore(task, proposal.configs[k], seeds[k], evaluation)
        trial = ledger.record(
            evaluation,
            measured,
            clock,
            config=proposal.configs[k],
            seed=seeds[k],
            ask_seconds=proposal.ask_seconds,
            proposed_by=proposal.proposed_by,
            method_error=proposal.method_error,
            **proposal.rung(k),
        )
        clock = ledger.spent.seconds
        log.debug(
            "trial %d %s: objective %.6g (%s), best %.6g, %.2f s",
            trial.index,
            trial.config,
            evaluation.objective,
            evaluation.status,
            ledger.best,
            trial.cost_seconds,
        )
        yield trial


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


def _replayed(trial: Trial, index: int, config: Config, seed: int, method: str, rung: dict[str, int | None]) -> Trial:
    """A recorded trial, after checking that the method proposed it again with the same seed (and a
    rung to the same fidelity, continuing the same trial)."""
    if trial.index != index:
        raise BenchError(f"cannot resume: record {index} holds trial {trial.index}; the trials.jsonl is damaged")
    recorded_rung = {"fidelity": trial.fidelity, "continues": trial.continues} if rung else {}
    if _plain(config) != _plain(trial.config) or seed != trial.seed or rung != recorded_rung:
        raise BenchError(
            f"cannot resume: at trial {trial.index} {method} proposes {_plain(config)} {rung or ''}, but the record "
            f"holds {_plain(trial.config)} {recorded_rung or ''} (seed {trial.seed}): the record was made by another "
            "method, code or configuration"
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
