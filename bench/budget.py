"""Tuning budgets: evaluations, training steps, seconds. A run stops at the first one reached.

The budget is checked between trials: a trial that starts inside the budget runs to completion,
so a run may overshoot a step or time budget by at most one batch of trials. ``seconds`` counts
the whole tuning loop (the method's own suggestion time plus the evaluations), which is what a
user pays; ``train_steps`` counts optimizer updates reported by the task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError


@dataclass
class Spent:
    """What a run has used so far."""

    evaluations: int = 0
    train_steps: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Budget:
    evaluations: int | None = None
    train_steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        limits = {"evaluations": self.evaluations, "train_steps": self.train_steps, "seconds": self.seconds}
        if all(value is None for value in limits.values()):
            raise BenchError(
                "no budget set: give at least one of budget.evaluations, budget.train_steps, budget.seconds"
            )
        for name, value in limits.items():
            if value is None:
                continue
            whole = name != "seconds"
            valid = (
                not isinstance(value, bool)
                and isinstance(value, (int, float))
                and math.isfinite(value)
                and value > 0
                and (not whole or int(value) == value)
            )
            if not valid:
                kind = "a positive whole number" if whole else "a positive number of seconds"
                raise BenchError(f"budget.{name}={value!r}: must be {kind}, or null for no limit")

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> Budget:
        unknown = sorted(set(node) - {"evaluations", "train_steps", "seconds"})
        if unknown:
            raise BenchError(f"budget: unknown key(s) {unknown}; allowed: evaluations, train_steps, seconds")
        return cls(**dict(node))

    def exhausted(self, spent: Spent) -> str | None:
        """The reason the run must stop now, or None while any budget is left."""
        if self.evaluations is not None and spent.evaluations >= self.evaluations:
            return f"budget.evaluations={self.evaluations} reached"
        if self.train_steps is not None and spent.train_steps >= self.train_steps:
            return f"budget.train_steps={self.train_steps} reached ({spent.train_steps} used)"
        if self.seconds is not None and spent.seconds >= self.seconds:
            return f"budget.seconds={self.seconds:g} reached ({spent.seconds:.1f} s used)"
        return None

    def evaluations_left(self, spent: Spent) -> int | None:
        return None if self.evaluations is None else self.evaluations - spent.evaluations

    def as_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations, "train_steps": self.train_steps, "seconds": self.seconds}
