"""TuRBO-1 (Eriksson, Pearce, Gardner, Turner and Poloczek, NeurIPS 2019): Bayesian optimisation
in a trust region, the high-dimensional BO method of the suite (``method=turbo``).

A global GP is hard to fit and its acquisition hard to optimise in hundreds of dimensions; TuRBO
keeps the GP (here the one of ``methods/gp.py``: BoTorch's ``SingleTaskGP``, Matern-5/2 ARD with
dimension-scaled priors, fitted on every observation) but proposes only inside a box around the
best observation. The box's side in the unit-cube encoding is ``length`` x each input's
lengthscale over their geometric mean (long in the directions the objective barely varies along),
clipped to the cube. Proposals are Thompson samples: ``n_candidates`` points of the box, each the
centre with a random subset of its coordinates (each with probability min(1, 20 / d)) replaced by
a Sobol point of the box, scored by one joint posterior sample; the best ``n`` are proposed.

The box adapts after each batch the model proposed (not the initial design): a batch that
improves the best objective by more than 1e-3 of its magnitude is a success, any other a failure;
``success_tolerance`` successes in a row double the length (at most ``length_max``),
``failure_tolerance`` failures in a row halve it (default ceil(max(4, d) / q), q the batch size,
as the paper). Below ``length_min`` the region restarts at ``length_init`` around the best point
(the paper starts a fresh design there; with the suite's budgets the region rarely shrinks that
far, and the data are kept). The state is a function of the told outcomes, so a resumed run,
which replays them, proposes the same configurations.

Numeric spaces only: a categorical entry has no box to move in, and the method refuses it in one
line before the run starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from botorch.generation import MaxPosteriorSampling
from botorch.models import SingleTaskGP
from scipy.stats import qmc
from skopt.space import Categorical

from bench.errors import BenchError, Unsupported
from bench.protocols import Evaluation
from bench.space import Config, SearchSpace
from methods.gp import DTYPE, GPBayesOpt, Scorer

PERTURBED = 20.0
"""Each candidate replaces a coordinate of the centre with probability min(1, PERTURBED / d)."""


class TuRBO(GPBayesOpt):
    """TuRBO-1: Thompson sampling in an adaptive trust region (see the module)."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        n_initial: int | None = None,
        n_candidates: int | None = None,
        length_init: float = 0.8,
        length_min: float = 0.5**7,
        length_max: float = 1.6,
        success_tolerance: int = 3,
        failure_tolerance: int | None = None,
        **options: object,
    ) -> None:
        """``options``: those of the GP surrogate shared with gp_ei (``methods/gp.py``)."""
        categorical = [dim.name for dim in space.dimensions if isinstance(dim, Categorical)]
        if categorical:
            fixes = " ".join(f"+task.space.{name}.fixed={space.default[name]!r}" for name in categorical)
            raise Unsupported(
                f"method turbo moves a box over numeric hyperparameters; the space tunes the categorical "
                f"{', '.join(categorical)}: fix them, e.g. {fixes}"
            )
        if not 0 < length_min <= length_init <= length_max:
            raise BenchError(
                f"method.length_min={length_min}, length_init={length_init}, length_max={length_max}: need "
                "0 < length_min <= length_init <= length_max"
            )
        for name, value in (("success_tolerance", success_tolerance), ("failure_tolerance", failure_tolerance)):
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise BenchError(f"method.{name}={value!r}: must be a whole number, 1 or more")
        if n_candidates is not None and not (isinstance(n_candidates, int) and n_candidates >= 1):
            raise BenchError(f"method.n_candidates={n_candidates!r}: must be a whole number, 1 or more, or null")
        super().__init__(space, seed, n_initial, **options)  # type: ignore[arg-type]
        d = space.n_encoded
        self.n_candidates = n_candidates or min(5000, max(2000, 200 * d))
        self.length_init, self.length_min, self.length_max = length_init, length_min, length_max
        self.success_tolerance, self.failure_tolerance = success_tolerance, failure_tolerance
        self.length = length_init
        self.successes = self.failures = 0
        self.restarts = 0

    # ------------------------------------------------------------------------------ the region
    def tell(self, configs: Sequence[Config], evaluations: Sequence[Evaluation]) -> None:
        before = self.targets()
        best_before = None if before is None else float(before.min())
        proposed = len(self.configs) >= self.n_initial  # a batch after the design: the region's own
        super().tell(configs, evaluations)
        if not proposed or best_before is None:
            return
        values = [e.objective for e in evaluations if e.ok and math.isfinite(e.objective)]
        if values and min(values) < best_before - 1e-3 * abs(best_before):
            self.successes, self.failures = self.successes + 1, 0
        else:
            self.successes, self.failures = 0, self.failures + 1
        tolerance = self.failure_tolerance or math.ceil(max(4, self.space.n_encoded) / max(1, len(configs)))
        if self.successes >= self.success_tolerance:
            self.length, self.successes = min(2 * self.length, self.length_max), 0
        elif self.failures >= tolerance:
            self.length, self.failures = self.length / 2, 0
        if self.length < self.length_min:
            self.length, self.restarts = self.length_init, self.restarts + 1

    def acquire(self, model: SingleTaskGP, n: int, x_pending: torch.Tensor | None) -> tuple[torch.Tensor, Scorer]:
        x = torch.tensor(self.space.encode(self.configs), dtype=DTYPE)
        centre = x[int(np.argmin(self.targets()))]
        kernel = getattr(model.covar_module, "base_kernel", model.covar_module)  # priors=gamma: a ScaleKernel
        lengthscale = kernel.lengthscale.detach().reshape(-1).to(DTYPE)
        weights = lengthscale / lengthscale.log().mean().exp()  # geometric mean 1
        low = (centre - weights * self.length / 2).clamp(0.0, 1.0)
        high = (centre + weights * self.length / 2).clamp(0.0, 1.0)
        d = len(centre)
        power = math.ceil(math.log2(self.n_candidates))  # Sobol points keep their balance in powers of two
        sobol = qmc.Sobol(d, scramble=True, seed=self.rng).random_base2(power)[: self.n_candidates]
        perturbation = low + (high - low) * torch.tensor(sobol, dtype=DTYPE)
        mask = torch.tensor(self.rng.random((self.n_candidates, d)) <= min(1.0, PERTURBED / d))
        empty = ~mask.any(dim=1)  # every candidate moves in at least one coordinate
        mask[empty, torch.tensor(self.rng.integers(d, size=int(empty.sum())), dtype=torch.long)] = True
        candidates = torch.where(mask, perturbation, centre.expand(self.n_candidates, d))
        picked = MaxPosteriorSampling(model, replacement=False)(candidates, num_samples=min(n, self.n_candidates))
        return picked, lambda z: model.posterior(z).mean.squeeze(-1).detach()
