"""Gaussian-process Bayesian optimisation with BoTorch: one surrogate, two acquisitions.

Surrogate (shared). ``SingleTaskGP`` on the unit-cube encoding of the space (``bench.space``):
Matern-5/2 kernel with one lengthscale per encoded input (ARD), an explicit input transform
(``Normalize`` to the unit cube) and outcome transform (``Standardize``), hyperparameters fitted by
maximising the exact marginal likelihood. Priors (``priors``): ``dim_scaled``, BoTorch's default
(a log-normal lengthscale prior scaled with the dimension, Hvarfner et al. 2024), or ``gamma``,
BoTorch's earlier Gamma priors (``dim_scaled`` chosen by median regret on held-out hartmann6
seeds, where the paired test favours ``gamma``: results/reference/hartmann6_bo.md). The first
fit runs L-BFGS-B to convergence; later fits start from the previous hyperparameters and take at
most ``refit_maxiter`` steps (the marginal likelihood moves little with one more observation, and
a full refit dominated the suggestion time at a few hundred observations: ``python -m bench.perf
methods``). Noise (``noise_std``): learned with the likelihood's prior when null; a known
standard deviation gives a fixed-noise likelihood, and 0 (a deterministic objective, as the
synthetic tasks declare) a jitter of 1e-6 of the outcome variance, as BoTorch advises for
noise-free data. BoTorch maximises, so the model sees ``-objective``; with
``log_objective`` it sees ``-log(objective)`` (shifted to be positive first when it is not).

Integer and categorical dimensions. The acquisition is optimised over the continuous relaxation
of the encoding (an integer is one coordinate, a categorical a one-hot block) and each optimum is
rounded to the nearest configuration (``SearchSpace.decode``). A rounded point that was already
observed, or is already in the batch, is replaced by the best unseen configuration of a candidate
pool (Sobol points and perturbations of the best observations, rounded) scored by the same
acquisition: the method never proposes a configuration twice.

- ``GPExpectedImprovement``: ``qLogExpectedImprovement`` (Ament et al. 2023); the q points of a
  batch are optimised jointly by multi-start L-BFGS-B (``optimize_acqf``). A single point with
  nothing pending takes ``LogExpectedImprovement``, the closed form qLogEI estimates by QMC: the
  same acquisition without sampling error, and cheaper.
- ``GPThompsonSampling``: one posterior sample per suggestion. ``sampler=discrete`` (default)
  draws joint samples over the candidate pool and takes each one's argmax; ``sampler=pathwise``
  draws Matheron paths (Wilson et al. 2020) and maximises each over the relaxation. With
  probability ``greedy`` a suggestion maximises the posterior mean instead (epsilon-greedy TS,
  Do et al. 2024, whose epsilon is 1 - greedy): vanilla TS keeps exploring to the end of a small
  budget and settles loosely in the basin it has found. Default ``greedy=0.5``, chosen from
  {0, 0.1, 0.25, 0.5} on held-out hartmann6 seeds 100-119 (results/reference/hartmann6_bo.md).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from botorch.acquisition import LogExpectedImprovement, PosteriorMean, qLogExpectedImprovement
from botorch.acquisition.thompson_sampling import PathwiseThompsonSampling
from botorch.exceptions import ModelFittingError
from botorch.exceptions.warnings import BotorchWarning
from botorch.fit import fit_gpytorch_mll
from botorch.generation import MaxPosteriorSampling
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.models.utils.gpytorch_modules import (
    get_covar_module_with_dim_scaled_prior,
    get_gaussian_likelihood_with_gamma_prior,
    get_gaussian_likelihood_with_lognormal_prior,
    get_matern_kernel_with_gamma_prior,
)
from botorch.optim import optimize_acqf
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.utils.warnings import GPInputWarning, NumericalWarning
from scipy.stats import qmc

from bench.errors import BenchError
from bench.space import Config, SearchSpace
from methods.model_based import ModelBasedMethod, check_noise_std

log = logging.getLogger(__name__)
DTYPE = torch.float64
KERNEL_AND_MEAN = ("covar_module.", "mean_module.")  # what a warm start carries over ...
HYPERPARAMETERS = (*KERNEL_AND_MEAN, "likelihood.")  # ... and the learned noise, when it is learned
PRIORS = ("dim_scaled", "gamma")
NOISE_FREE_JITTER = 1.001e-6  # noise_std=0: noise variance over outcome variance (gpytorch rounds below 1e-6 up)
Scorer = Callable[[torch.Tensor], torch.Tensor]
"""Acquisition value of each row of an ``(n, d)`` tensor of encoded configurations -> ``(n,)``."""


class GPBayesOpt(ModelBasedMethod):
    """The shared surrogate and candidate handling; subclasses choose the acquisition."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        n_initial: int | None = None,
        log_objective: bool = False,
        num_restarts: int = 10,
        raw_samples: int = 512,
        pool_size: int = 1024,
        priors: str = "dim_scaled",
        maxiter: int = 50,
        refit_maxiter: int = 25,
        noise_std: float | None = None,
    ) -> None:
        super().__init__(space, seed, n_initial)
        check_noise_std(noise_std, log_objective)
        self.noise_std = noise_std
        if priors not in PRIORS:
            raise BenchError(f"method.priors={priors!r}: allowed: {', '.join(PRIORS)}")
        self.priors = priors
        for name, value in (
            ("num_restarts", num_restarts),
            ("raw_samples", raw_samples),
            ("pool_size", pool_size),
            ("maxiter", maxiter),
            ("refit_maxiter", refit_maxiter),
        ):
            if value < 1:
                raise BenchError(f"method.{name}={value}: must be at least 1")
        self.log_objective = log_objective
        self.num_restarts, self.raw_samples, self.pool_size = num_restarts, raw_samples, pool_size
        self.maxiter, self.refit_maxiter = maxiter, refit_maxiter
        self.bounds = torch.stack([torch.zeros(space.n_encoded), torch.ones(space.n_encoded)]).to(DTYPE)
        self.hyperparameters: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------------------ surrogate
    def fit(self) -> SingleTaskGP:
        """The GP on all observations, hyperparameters by marginal likelihood (warm-started)."""
        x = torch.tensor(self.space.encode(self.configs), dtype=DTYPE)
        y = torch.tensor(-self.modelled(self.targets()), dtype=DTYPE).unsqueeze(-1)
        d = x.shape[-1]
        if self.priors == "gamma":
            kernel, likelihood = get_matern_kernel_with_gamma_prior(d), get_gaussian_likelihood_with_gamma_prior()
        else:
            kernel = get_covar_module_with_dim_scaled_prior(d, use_rbf_kernel=False)
            likelihood = get_gaussian_likelihood_with_lognormal_prior()
        variance = None
        if self.noise_std is not None:  # known noise: a fixed-noise likelihood, floored at a jitter
            floor = NOISE_FREE_JITTER * max(float(y.var()), 1e-12) if len(y) > 1 else 1e-12
            variance, likelihood = torch.full_like(y, max(self.noise_std**2, floor)), None
        model = SingleTaskGP(
            x,
            y,
            train_Yvar=variance,
            covar_module=kernel,
            likelihood=likelihood,
            input_transform=Normalize(d=d, bounds=self.bounds),
            outcome_transform=Standardize(m=1),
        )
        options = None
        if self.hyperparameters:  # warm start: a few L-BFGS-B steps from the last fit
            model.load_state_dict(self.hyperparameters, strict=False)
            options = {"options": {"maxiter": self.refit_maxiter}}
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=(BotorchWarning, NumericalWarning, GPInputWarning))
            try:
                fit_gpytorch_mll(mll, optimizer_kwargs=options)
            except ModelFittingError as error:  # keep the warm-start (or prior) values and go on
                log.warning("GP fit failed (%s); using the previous hyperparameters", error)
        model.eval()
        carried = HYPERPARAMETERS if self.noise_std is None else KERNEL_AND_MEAN  # a fixed noise is per point
        self.hyperparameters = {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(carried)}
        return model

    def modelled(self, y: np.ndarray) -> np.ndarray:
        """The objective as the model sees it (before negation): ``y`` or a log of it."""
        if not self.log_objective:
            return y
        low = y.min()
        if low > 0:
            return np.log(y)
        return np.log(y - low + 1e-3 * (y.max() - low) + 1e-12)

    # ------------------------------------------------------------------------------ proposals
    def propose(self, n: int, pending: list[Config]) -> list[Config]:
        with torch.random.fork_rng():
            torch.manual_seed(self.rng_seed())
            model = self.fit()
            x_pending = torch.tensor(self.space.encode(pending), dtype=DTYPE) if pending else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=(BotorchWarning, NumericalWarning))
                relaxed, score = self.acquire(model, n, x_pending)
                return self.round_new(relaxed, score, pending)

    def acquire(self, model: SingleTaskGP, n: int, x_pending: torch.Tensor | None) -> tuple[torch.Tensor, Scorer]:
        """``n`` points of the relaxed unit cube, shape ``(n, d)``, and a scorer for replacements."""
        raise NotImplementedError

    def maximise(self, acquisition, q: int, retry: bool = True) -> torch.Tensor:
        """Multi-start L-BFGS-B over the relaxed unit cube (``optimize_acqf``), ``(q, d)``; with
        ``retry``, BoTorch starts again from new points when a start's line search fails."""
        relaxed, _ = optimize_acqf(
            acquisition,
            self.bounds,
            q=q,
            num_restarts=self.num_restarts,
            raw_samples=self.raw_samples,
            options={"maxiter": self.maxiter},
            retry_on_optimization_warning=retry,
        )
        return relaxed

    def round_new(self, relaxed: torch.Tensor, score: Scorer, pending: list[Config]) -> list[Config]:
        """Round each relaxed optimum; replace repeats by the best unseen pool configuration."""
        chosen: list[Config] = []
        pool: list[Config] | None = None
        ranked: list[int] = []
        for config in self.space.decode(relaxed.detach().cpu().numpy()):
            if not self.is_new(config, pending + chosen):
                if pool is None:
                    pool = self.pool(pending + chosen)
                    values = score(torch.tensor(self.space.encode(pool), dtype=DTYPE)) if pool else torch.empty(0)
                    ranked = values.argsort(descending=True).tolist()
                config = next((pool[i] for i in ranked if self.is_new(pool[i], pending + chosen)), None)
                if config is None:
                    continue
            chosen.append(config)
        return chosen

    def pool(self, pending: list[Config]) -> list[Config]:
        """Unseen configurations near the best observations and spread over the space, rounded."""
        d = self.space.n_encoded
        spread = qmc.Sobol(d, scramble=True, seed=self.rng).random(self.pool_size)
        best = np.argsort(self.targets())[: min(5, len(self.configs))]
        centres = self.space.encode([self.configs[i] for i in best])
        near = centres[self.rng.integers(len(centres), size=self.pool_size)] + self.rng.normal(
            0.0, 0.05, size=(self.pool_size, d)
        )
        unique = {self.key(c): c for c in self.space.decode(np.vstack([spread, near]))}
        return [c for c in unique.values() if self.is_new(c, pending)]


class GPExpectedImprovement(GPBayesOpt):
    """Log expected improvement: qLogEI for batches (q points optimised jointly) and next to
    pending points; one point alone takes its exact closed form, which qLogEI estimates by QMC."""

    def acquire(self, model: SingleTaskGP, n: int, x_pending: torch.Tensor | None) -> tuple[torch.Tensor, Scorer]:
        best = model.outcome_transform.untransform(model.train_targets.unsqueeze(-1))[0].max()
        if n == 1 and x_pending is None:
            acquisition = LogExpectedImprovement(model, best_f=best)
        else:
            acquisition = qLogExpectedImprovement(model, best_f=best, X_pending=x_pending)
        return self.maximise(acquisition, n), lambda x: acquisition(x.unsqueeze(-2)).detach()


class GPThompsonSampling(GPBayesOpt):
    """One posterior sample per suggestion: pathwise (optimised) or discrete (over a pool); with
    probability ``greedy`` a suggestion maximises the posterior mean instead (epsilon-greedy TS)."""

    SAMPLERS = ("pathwise", "discrete")

    def __init__(
        self, space: SearchSpace, seed: int, sampler: str = "discrete", greedy: float = 0.5, **options: Any
    ) -> None:
        """``options``: those of ``GPBayesOpt``, the surrogate shared with gp_ei."""
        if sampler not in self.SAMPLERS:
            raise BenchError(f"method.sampler={sampler!r}: allowed: {', '.join(self.SAMPLERS)}")
        if not 0.0 <= greedy <= 1.0:
            raise BenchError(f"method.greedy={greedy}: allowed: a probability in [0, 1]")
        super().__init__(space, seed, **options)
        self.sampler, self.greedy = sampler, greedy

    def acquire(self, model: SingleTaskGP, n: int, x_pending: torch.Tensor | None) -> tuple[torch.Tensor, Scorer]:
        # greedy=0 draws nothing, so vanilla TS keeps the random stream (and the trials) it had before
        n_greedy = int((self.rng.random(n) < self.greedy).sum()) if self.greedy > 0 else 0
        picks = []
        if n_greedy:  # one maximiser, repeated: round_new replaces the repeats by the next-best pool configurations
            # No retry: a noise-free posterior mean is flat to rounding at its maximum, where L-BFGS-B's
            # line search ends "ABNORMAL"; the best of the starts is kept.
            picks = [self.maximise(PosteriorMean(model), 1, retry=False)] * n_greedy
        n_sampled = n - n_greedy
        if self.sampler == "pathwise" and n_sampled:
            picks.append(self.maximise(PathwiseThompsonSampling(model), n_sampled))
            replacement = PathwiseThompsonSampling(model)  # a fresh sample scores replacements, one point at a time
            return torch.cat(picks), lambda x: replacement(x.unsqueeze(-2)).detach()
        if n_sampled:
            x = torch.tensor(self.space.encode(self.pool([])), dtype=DTYPE)
            picks.append(MaxPosteriorSampling(model, replacement=False)(x, num_samples=min(n_sampled, len(x))))
        return torch.cat(picks), lambda x: model.posterior(x).mean.squeeze(-1).detach()
