"""The conformance checks every method and every task must pass (as scikit-learn's
``check_estimator``): one place that says what the protocols mean in practice.

    check_method(make, budget, seeds=(11, 12))   # make(seed) -> (task, method), freshly built
    check_task(task)

A method, run through the real runner on a task it accepts:

- runs its whole budget (it may not stop asking early) and produces at least one ``ok`` trial;
- answers ``ask(n)`` with at most ``n`` configurations, each inside the search space (a
  multi-fidelity method: at most ``n`` rungs, each configuration inside the space, and at least
  one rung continued from a paused training);
- is reproducible: the same seed gives the same trials, value by value (NaN equal to NaN);
- uses its seed: another seed gives other proposals, unless the method declares
  ``uses_seed = False`` (the default configuration, which has nothing random to seed).

A task: ``describe()`` is JSON (no NaN, no objects), ``test_metric`` is a key of its evaluations'
``test``, ``public_metrics`` names metrics it reports, ``pass_criteria`` names pass/fail (bool)
metrics it reports, and evaluating the default configuration
twice with one seed gives the same objective. A task that trains batches (``BatchTask``) gives,
for the default configuration and another seed trained together, what it gives for each alone
(status and steps equal, objective within a relative 1e-4: float rounding, not another training).
A task that trains part of the way (``FidelityTask``, with one training length) continues a
training paused at a third of it to the full length with the same paused state and objective,
bit for bit, as one trained straight through, each call counting only its own steps, and its full
training scores what ``evaluate`` does (within a relative 1e-4).

A failed check raises ``ConformanceError`` with one line saying which rule broke and how.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from bench.budget import Budget
from bench.errors import BenchError
from bench.protocols import BatchTask, Evaluation, FidelityTask, Method, Rung, Task, missing_members
from bench.records import RunResult
from bench.runner import RunSettings, run
from bench.space import Config


class ConformanceError(AssertionError):
    """A method or task breaks the protocol; the message says which rule and how."""


class _Watched:
    """A method seen through its protocol: every ``ask`` is checked before the runner sees it."""

    def __init__(self, method: Method, space: Any) -> None:
        self._method, self._space = method, space
        self.proposals: list[Config | Rung] = []

    def ask(self, n: int) -> list[Config | Rung]:
        asked = self._method.ask(n)
        name = type(self._method).__name__
        if len(asked) > n:
            raise ConformanceError(f"{name}.ask({n}) returned {len(asked)} configurations; at most {n} are allowed")
        for item in asked:
            try:
                self._space.check(item.config if isinstance(item, Rung) else item)
            except BenchError as error:
                raise ConformanceError(f"{name} proposed a configuration outside its space: {error}") from None
        self.proposals.extend(asked)
        return asked

    def tell(self, asked: Sequence[Config | Rung], evaluations: Sequence[Evaluation]) -> None:
        self._method.tell(asked, evaluations)

    def __getattr__(self, name: str) -> Any:  # evaluate() of a training-loop method, and the rest
        return getattr(self._method, name)


def check_method(
    make: Callable[[int], tuple[Task, Method]], budget: Budget, seeds: tuple[int, int] = (11, 12), batch_size: int = 2
) -> None:
    """Run the method three times (``seeds[0]`` twice, ``seeds[1]`` once) and check the rules."""

    def once(seed: int) -> tuple[RunResult, list[Config], str]:
        task, method = make(seed)
        watched = _Watched(method, task.space)
        settings = RunSettings(batch_size=batch_size, incumbent_repeats=0)
        result = run(task, watched, budget, seed, settings)  # type: ignore[arg-type]
        return result, watched.proposals, type(method).__name__

    first, proposals, name = once(seeds[0])
    if not first.stop_reason.startswith("budget."):  # Budget.exhausted names the limit reached
        raise ConformanceError(
            f"{name} stopped before its budget was spent ({first.stop_reason}, after {len(first.trials)} trials)"
        )
    if not any(trial.evaluation.ok for trial in first.trials):
        statuses = sorted({trial.evaluation.status for trial in first.trials})
        raise ConformanceError(f"{name} produced no ok trial in {len(first.trials)} (statuses: {statuses})")
    if any(isinstance(item, Rung) for item in proposals) and all(t.continues is None for t in first.trials):
        raise ConformanceError(f"{name} continued no paused training in its {len(first.trials)} rungs")
    again, _, _ = once(seeds[0])
    if not same_trials(_table(first), _table(again)):
        raise ConformanceError(f"{name} is not reproducible: seed {seeds[0]} gave different trials on a second run")
    _, other, _ = once(seeds[1])
    _, method = make(seeds[1])
    if getattr(method, "uses_seed", True) and other == proposals:
        raise ConformanceError(
            f"{name} ignores its seed: seeds {seeds[0]} and {seeds[1]} gave the same {len(other)} proposals"
        )


def check_task(task: Task, seed: int = 0) -> None:
    name = type(task).__name__
    if not isinstance(task, Task):
        raise ConformanceError(f"{name} lacks part of the Task protocol: {', '.join(missing_members(task, Task))}")
    try:
        json.dumps(task.describe(), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConformanceError(f"{name}.describe() is not JSON: {error}") from None
    first, second = (task.evaluate(task.space.default, seed) for _ in range(2))
    if task.test_metric not in first.test:
        raise ConformanceError(
            f"{name}.test_metric={task.test_metric!r} is not a key of its evaluation's test metrics "
            f"{sorted(first.test)}"
        )
    unknown = [key for key in task.public_metrics if key not in first.metrics]
    if unknown:
        raise ConformanceError(f"{name}.public_metrics names {unknown}, which its evaluations do not report")
    not_bool = [key for key in task.pass_criteria if not isinstance(first.metrics.get(key), bool)]
    if not_bool:
        raise ConformanceError(
            f"{name}.pass_criteria names {not_bool}, which its evaluations do not report as pass/fail (bool) metrics"
        )
    if not _same(first.objective, second.objective):
        raise ConformanceError(
            f"{name}: the default configuration with seed {seed} gave objectives {first.objective!r} and "
            f"{second.objective!r}"
        )
    if isinstance(task, FidelityTask) and task.full_fidelity is not None:
        check_fidelity_task(task, seed)
    if isinstance(task, BatchTask):
        configs, seeds = [task.space.default, task.space.default], [seed, seed + 1]
        alone = [first, task.evaluate(configs[1], seeds[1])]
        for k, together in enumerate(task.evaluate_batch(configs, seeds)):
            close = together.objective == alone[k].objective or math.isclose(
                together.objective, alone[k].objective, rel_tol=1e-4
            )
            if (together.status, together.cost_steps) != (alone[k].status, alone[k].cost_steps) or not close:
                raise ConformanceError(
                    f"{name}.evaluate_batch: seed {seeds[k]} trained in a batch gave {together.status} "
                    f"{together.objective!r} in {together.cost_steps} steps, alone {alone[k].status} "
                    f"{alone[k].objective!r} in {alone[k].cost_steps} steps"
                )


def check_fidelity_task(task: FidelityTask, seed: int = 0) -> None:
    """A training paused at a third of its length and continued equals one trained straight through."""
    name, full, config = type(task).__name__, task.full_fidelity, task.space.default
    assert full is not None
    pause = max(1, full // 3)
    if pause == full:
        return  # a one-step training cannot pause
    first, paused = task.train_to(config, seed, pause)
    continued, after = task.train_to(config, seed, full, paused)
    straight, state = task.train_to(config, seed, full)
    if (first.cost_steps, continued.cost_steps, straight.cost_steps) != (pause, full - pause, full):
        raise ConformanceError(
            f"{name}.train_to counts {first.cost_steps} + {continued.cost_steps} steps for a training paused at "
            f"{pause} of {full}, and {straight.cost_steps} straight through; each call must count only its own steps"
        )
    if not (_same(continued.objective, straight.objective) and _same(after, state)):
        raise ConformanceError(
            f"{name}.train_to: paused at step {pause} and continued to {full} gives objective {continued.objective!r}, "
            f"straight through {straight.objective!r} (or another paused state): a continued training must be the same"
        )
    whole = task.evaluate(config, seed)
    if not math.isclose(whole.objective, straight.objective, rel_tol=1e-4) and not _same(
        whole.objective, straight.objective
    ):
        raise ConformanceError(
            f"{name}: train_to the full {full} steps gives {straight.objective!r}, evaluate {whole.objective!r}"
        )


def _table(result: RunResult) -> list[tuple[Any, ...]]:
    return [
        (t.config, t.evaluation.status, t.evaluation.objective, t.evaluation.cost_steps, t.fidelity, t.continues)
        for t in result.trials
    ]


def same_trials(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Value-by-value equality of trial rows, NaN equal to NaN whatever the object (Python's ``==``
    on tuples calls two NaNs equal only when they are the same object)."""
    return len(a) == len(b) and all(
        len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y, strict=True)) for x, y in zip(a, b, strict=True)
    )


def _same(a: Any, b: Any) -> bool:
    """Equal value by value: NaN equal to NaN, dicts key by key, tensors (a paused training's) bit for bit."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b
