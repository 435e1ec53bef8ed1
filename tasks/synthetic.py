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
from bench.protocols import Evaluation, PausedTraining
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


# ------------------------------------------------------------------------- learning curves
CURVE_HEIGHT = 3.0
"""A: how far above its final value every curve starts."""


def curve(x1: float, x2: float, progress: float) -> float:
    """The noise-free validation loss of configuration (x1, x2) after ``progress`` (r / R) of its
    training: ``final(x) + A exp(-k(x1) progress)``, final(x) = (x1 - 0.75)^2 + 0.5 (x2 - 0.5)^2,
    k(x1) = 2 + 18 (1 - x1). Small x1 learns fast and ends worse: the curves cross, so the best
    configuration after a short training is not the best after a full one (at r / R = 1/27 x1 = 0
    scores 2.0 and x1 = 0.75 2.4; at r = R 0.56 and 0.005)."""
    final = (x1 - 0.75) ** 2 + 0.5 * (x2 - 0.5) ** 2
    return float(final + CURVE_HEIGHT * math.exp(-(2 + 18 * (1 - x1)) * progress))


def _curve_minimum() -> float:
    """min over [0, 1]^2 of ``curve(x, 1)`` (x2 = 0.5; x1 on a grid of 10^6 + 1 points, then the
    grid's best refined by golden-section search)."""
    grid = np.linspace(0.0, 1.0, 1_000_001)
    values = (grid - 0.75) ** 2 + CURVE_HEIGHT * np.exp(-(2 + 18 * (1 - grid)))
    low, high = grid[max(values.argmin() - 1, 0)], grid[min(values.argmin() + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if curve(a, 0.5, 1.0) < curve(b, 0.5, 1.0):
            high = b
        else:
            low = a
    return curve(float(low + high) / 2, 0.5, 1.0)


class LearningCurveTask:
    """Synthetic learning curves for testing multi-fidelity methods (a ``FidelityTask``): a
    configuration (x1, x2) in [0, 1]^2 "trains" for ``steps`` steps, and its objective after r of
    them is ``curve(x1, x2, r / steps)`` plus Gaussian noise of ``noise_std`` drawn from (seed, r),
    so a paused training continued to r2 scores what a straight one does. A step costs nothing real;
    ``cost_steps`` counts them as a network's would. Test metric: the noise-free regret at full
    training, ``curve(x, 1) - min curve(., 1)``."""

    test_metric = "regret"
    public_metrics = ()
    pass_criteria: dict[str, str] = {}

    def __init__(self, space: SearchSpace, device: str = "cpu", steps: int = 81, noise_std: float = 0.01) -> None:
        if space.names != ["x1", "x2"]:
            raise BenchError(f"task.space for learning_curves must declare x1, x2 in order; got {space.names}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise BenchError(f"task.steps={steps!r}: must be a positive whole number")
        if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or not noise_std >= 0:
            raise BenchError(f"task.noise_std={noise_std!r}: must be a number, zero or more")
        self.space, self.full_fidelity, self.noise_std = space, steps, noise_std
        self.minimum = _curve_minimum()

    def evaluate(self, config: Config, seed: int) -> Evaluation:
        return self.train_to(config, seed, self.full_fidelity)[0]

    def train_to(
        self, config: Config, seed: int, steps: int, paused: PausedTraining | None = None
    ) -> tuple[Evaluation, PausedTraining]:
        start = 0 if paused is None else int(paused["step"])
        if not start < steps <= self.full_fidelity:
            raise ValueError(f"train_to: {steps} steps from step {start}; allowed {start + 1} .. {self.full_fidelity}")
        x1, x2 = float(config["x1"]), float(config["x2"])
        value = curve(x1, x2, steps / self.full_fidelity)
        noise = np.random.default_rng([seed, steps]).normal(0.0, self.noise_std) if self.noise_std else 0.0
        final = curve(x1, x2, 1.0)
        evaluation = Evaluation(
            objective=value + noise,
            test={"regret": final - self.minimum, "value": value},
            cost_steps=steps - start,
        )
        return evaluation, {"step": steps}

    def describe(self) -> dict[str, Any]:
        return {
            "function": "learning curves: (x1 - 0.75)^2 + 0.5 (x2 - 0.5)^2 + 3 exp(-(2 + 18 (1 - x1)) r / R)",
            "steps": self.full_fidelity,
            "minimum": self.minimum,
            "noise_std": self.noise_std,
        }
