"""Cheap synthetic functions with known minima, for testing methods and sanity checks.

Definitions as in Surjanovic and Bingham's Virtual Library of Simulation Experiments:

- ``branin`` on x1 in [-5, 10], x2 in [0, 15]: minimum 0.397887 at (-pi, 12.275), (pi, 2.275)
  and (9.42478, 2.475);
- ``hartmann6`` on [0, 1]^6: minimum -3.32237 at (0.20169, 0.150011, 0.476874, 0.275332,
  0.311652, 0.6573).

The objective is f(x) plus optional Gaussian noise (``noise_std``, drawn from the trial's seed);
the test metric is the noise-free simple regret f(x) - f*, so a run's incumbent, chosen on noisy
values, is scored by its true regret. The noise-free value f(x) is recorded with the test metrics
(``test.value``), where no method sees it: with noise, it is the answer a method must not be told.
``dimensions`` embeds the function in more dimensions: the space gets inputs x(k+1) .. xD declared
as x1 is, which the function ignores (the usual test of high-dimensional methods, as in Wang et al.
2016 and Eriksson and Jankowiak 2021). ``cost_seconds`` simulates an expensive evaluation: it is the
cost reported for every evaluation and counted against ``budget.seconds``. An evaluation counts as
one training step, so a budget in ``train_steps`` is a number of function evaluations here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.errors import BenchError
from bench.protocols import Evaluation
from bench.space import Config, SearchSpace


def branin(x: np.ndarray) -> float:
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


HARTMANN6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
HARTMANN6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
HARTMANN6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(x: np.ndarray) -> float:
    return float(-(HARTMANN6_ALPHA * np.exp(-(HARTMANN6_A * (x - HARTMANN6_P) ** 2).sum(axis=1))).sum())


FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], float], int, float]] = {
    "branin": (branin, 2, 0.397887),
    "hartmann6": (hartmann6, 6, -3.32237),
}


class SyntheticTask:
    test_metric = "regret"
    public_metrics = ()
    pass_criteria: dict[str, str] = {}

    def __init__(
        self,
        space: SearchSpace,
        device: str = "cpu",
        function: str = "hartmann6",
        noise_std: float = 0.0,
        cost_seconds: float | None = None,
        dimensions: int | None = None,
    ) -> None:
        if function not in FUNCTIONS:
            raise BenchError(f"task.function={function!r}: allowed: {', '.join(FUNCTIONS)}")
        self.function, dimension, self.minimum = FUNCTIONS[function]
        self.name = function
        self.inputs = [f"x{i}" for i in range(1, dimension + 1)]
        if space.names != self.inputs:
            raise BenchError(
                f"task.space for {function} must declare {', '.join(self.inputs)} in order; got {space.names}"
            )
        if dimensions is not None and not (isinstance(dimensions, int) and dimensions >= dimension):
            raise BenchError(
                f"task.dimensions={dimensions!r}: must be a whole number of at least {dimension} ({function}'s own "
                "inputs), or null for just those"
            )
        self.dimensions = dimensions or dimension
        if self.dimensions > dimension:  # inputs the function ignores: x7 .. xD, each declared as x1 is
            extra = [f"x{i}" for i in range(dimension + 1, self.dimensions + 1)]
            space = space.extended(self.inputs[0], extra)
        if not noise_std >= 0:
            raise BenchError(f"task.noise_std={noise_std}: must be zero or more")
        if cost_seconds is not None and not cost_seconds >= 0:
            raise BenchError(f"task.cost_seconds={cost_seconds}: must be zero or more, or null to measure")
        self.space = space
        self.noise_std = noise_std
        self.cost_seconds = cost_seconds

    def evaluate(self, config: Config, seed: int) -> Evaluation:
        value = self.function(np.array([config[name] for name in self.inputs], dtype=float))
        noise = np.random.default_rng(seed).normal(0.0, self.noise_std) if self.noise_std else 0.0
        return Evaluation(
            objective=value + noise,
            test={"regret": value - self.minimum, "value": value},
            cost_steps=1,  # one evaluation of the function is the unit of compute here
            cost_seconds=self.cost_seconds,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "function": self.name,
            "dimensions": self.dimensions,
            "minimum": self.minimum,
            "noise_std": self.noise_std,
            "cost_seconds": self.cost_seconds,
            "definition": "Surjanovic and Bingham, Virtual Library of Simulation Experiments",
        }
