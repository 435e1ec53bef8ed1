"""scikit-optimize's GP optimiser, the classic baseline a user would reach for.

``skopt.Optimizer(base_estimator="GP", acq_func="gp_hedge")`` through ask/tell, started from the
shared Sobol design (``n_initial_points=0``: the design comes from ``ModelBasedMethod``), batches
by the constant liar (``strategy="cl_min"``). With ``noise_std`` known (a synthetic task declares
it), the same GP is built by ``cook_estimator`` with that noise variance (1e-10 when noise-free,
as scikit-optimize's documentation advises) instead of a learned one, as gp_ei and gp_ts are told.
The optimiser keeps its own state, so each trial is told once, when its configuration is next
asked; a failed trial is told as the worst objective observed by then. A configuration
scikit-optimize proposes again is dropped and replaced by a random unseen one
(``ModelBasedMethod``). Categorical choices reach it as their indices (it would turn a tuple choice
into an array); its points carry NumPy scalars; they leave as plain Python values.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
from skopt import Optimizer
from skopt.space import Categorical
from skopt.utils import cook_estimator

from bench.space import Config, SearchSpace
from methods.model_based import ModelBasedMethod, check_noise_std


class SkoptGP(ModelBasedMethod):
    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        n_initial: int | None = None,
        acq_func: str = "gp_hedge",
        noise_std: float | None = None,
    ) -> None:
        super().__init__(space, seed, n_initial)
        check_noise_std(noise_std)
        # scikit-optimize resets transformers on what it is given, and turns a tuple choice (an n-gram
        # range) into an array: it gets copies, with every categorical's choices as their indices
        dimensions = [
            Categorical(list(range(len(d.categories))), transform="onehot", name=d.name)
            if isinstance(d, Categorical)
            else copy.deepcopy(d)
            for d in space.dimensions
        ]
        estimator = "GP"  # scikit-optimize's own GP, its noise learned (noise="gaussian")
        if noise_std is not None:  # the same GP told the noise variance (1e-10 for noise-free, as its docs say)
            state = np.random.RandomState((self.rng_seed() + 1) % 2**32).randint(np.iinfo(np.int32).max)
            estimator = cook_estimator("GP", space=dimensions, random_state=state, noise=max(noise_std**2, 1e-10))
        self.optimizer = Optimizer(
            dimensions,
            base_estimator=estimator,
            acq_func=acq_func,
            n_initial_points=0,
            random_state=np.random.RandomState(self.rng_seed()),
        )
        self.told = 0

    def propose(self, n: int, pending: list[Config]) -> list[Config]:
        new = range(self.told, len(self.configs))
        if new:
            worst = float(np.nanmax(self.objectives))
            values = [y if math.isfinite(y) else worst for y in self.objectives[self.told :]]
            self.optimizer.tell([self._point(self.configs[i]) for i in new], values)
            self.told = len(self.configs)
        with warnings.catch_warnings():  # a repeat is dropped and replaced by ModelBasedMethod anyway
            warnings.filterwarnings("ignore", message="The objective has been evaluated at point", category=UserWarning)
            points = self.optimizer.ask(n_points=n, strategy="cl_min") if n > 1 else [self.optimizer.ask()]
        return [self.space.check(self._config(point)) for point in points]

    def _point(self, config: Config) -> list:
        """A configuration as scikit-optimize's point (categorical choices as indices)."""
        return list(self.space.indexed(config).values())

    def _config(self, point: list) -> Config:
        return self.space.from_indexed(dict(zip(self.space.tuned, point, strict=True)))
