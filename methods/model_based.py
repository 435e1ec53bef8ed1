"""What every model-based method shares: the initial design, the observations, failed trials,
and never proposing the same configuration twice.

A subclass implements ``propose(n) -> list[Config]`` from the observations. ``ask`` first hands
out the seeded Sobol design (``SearchSpace.sobol``: the same points for every model-based method
at one seed), then asks the model, and drops any configuration already observed or already in the
batch. All model work happens in ``ask`` (``tell`` only records), so the runner's ``ask_seconds``
is a method's whole suggestion cost.

Failed or diverged trials are kept with their configuration and given the worst finite objective
observed (so the model learns to avoid them instead of breaking on a NaN). Until some trial
succeeds there is nothing to model, and the method proposes random configurations; random unseen
configurations also fill a batch when the model offers fewer new ones than asked. An empty answer
means the space has no unseen configuration left. If ``ask`` raises, the runner proposes through
``fallback`` (random unseen configurations) once, and records that it did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.errors import BenchError
from bench.protocols import Evaluation
from bench.space import Config, SearchSpace


def check_noise_std(noise_std: float | None, log_objective: bool = False) -> None:
    """The ``noise_std`` option of the GP methods: a known noise level >= 0, or None (learned); with
    ``log_objective`` only 0 or None, since a noise level in objective units has no log."""
    if noise_std is not None and (noise_std < 0 or (log_objective and noise_std > 0)):
        allowed = "0 or null with log_objective" if log_objective else "a number >= 0, or null (inferred)"
        raise BenchError(f"method.noise_std={noise_std}: allowed: {allowed}")


class ModelBasedMethod:
    def __init__(self, space: SearchSpace, seed: int, n_initial: int | None = None) -> None:
        if n_initial is not None and n_initial < 1:
            raise BenchError(f"method.n_initial={n_initial}: must be at least 1, or null for 2 x dimensions")
        self.space = space
        self.seed = seed
        self.n_initial = 2 * len(space) if n_initial is None else n_initial
        self.design = space.sobol(self.n_initial, seed)
        self.configs: list[Config] = []
        self.objectives: list[float] = []
        self.seen: set[tuple[Any, ...]] = set()
        self.rng = np.random.default_rng([seed, 0xB0])
        self.asks = 0

    # ------------------------------------------------------------------------------ protocol
    def ask(self, n: int) -> list[Config]:
        self.asks += 1
        batch: list[Config] = []
        while self.design and len(batch) < n:
            self._add(batch, self.design.pop(0))
        if len(batch) < n and self.targets() is not None:
            for config in self.propose(n - len(batch), pending=list(batch))[: n - len(batch)]:
                self._add(batch, config)
        self._fill_randomly(batch, n)  # before any success, or if the model only repeats
        return batch

    def fallback(self, n: int) -> list[Config]:
        """Random unseen configurations: what the runner proposes when ``ask`` raised (a GP whose
        covariance is not positive definite, an optimiser that failed)."""
        batch: list[Config] = []
        self._fill_randomly(batch, n)
        return batch

    def tell(self, configs: Sequence[Config], evaluations: Sequence[Evaluation]) -> None:
        told = [(dict(c), e.objective if e.ok else math.nan) for c, e in zip(configs, evaluations, strict=True)]
        self.configs.extend(config for config, _ in told)  # all or nothing: a tell that raises is retried
        self.objectives.extend(objective for _, objective in told)
        self.seen.update(self.key(config) for config, _ in told)

    # ------------------------------------------------------------------------------ for subclasses
    def propose(self, n: int, pending: list[Config]) -> list[Config]:
        """``n`` new configurations from the model; ``pending`` are already in this batch."""
        raise NotImplementedError

    def targets(self) -> np.ndarray | None:
        """Observed objectives, shape ``(len(configs),)``, failures imputed with the worst finite
        one; None while no trial has succeeded."""
        values = np.array(self.objectives, dtype=float)
        finite = np.isfinite(values)
        if not finite.any():
            return None
        return np.where(finite, values, values[finite].max())

    def key(self, config: Config) -> tuple[Any, ...]:
        return tuple(config[name] for name in self.space.names)

    def is_new(self, config: Config, pending: Sequence[Config] = ()) -> bool:
        key = self.key(config)
        return key not in self.seen and all(self.key(p) != key for p in pending)

    def rng_seed(self) -> int:
        """A seed for this ask: the same run asks the same things at the same point."""
        return int(np.random.SeedSequence([self.seed, self.asks, len(self.configs)]).generate_state(1)[0])

    def _fill_randomly(self, batch: list[Config], n: int) -> None:
        """Add random unseen configurations to ``batch`` until it holds ``n`` (or the space runs out)."""
        for _ in range(10):
            if len(batch) >= n:
                return
            for config in self.space.sample(4 * (n - len(batch)), self.rng):
                if len(batch) < n:
                    self._add(batch, config)

    def _add(self, batch: list[Config], config: Config) -> None:
        config = self.space.check(config, where=f"{type(self).__name__} suggestion")
        if self.is_new(config, batch):
            batch.append(config)
