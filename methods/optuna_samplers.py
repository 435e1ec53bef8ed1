"""Optuna's samplers as methods: TPE (``optuna_tpe``), Optuna's GP (``optuna_gp``) and CMA-ES
(``cmaes``).

These are what practitioners run today, and TPE is the optimiser Yogatama et al. (2015) tuned
their text representations with. They run through Optuna's ask-and-tell interface on an
in-memory study; the suite's space maps to Optuna's distributions one to one (a real or integer
dimension to ``FloatDistribution`` / ``IntDistribution`` with its log flag, a categorical to
``CategoricalDistribution`` over the indices of its choices, since Optuna's choices must be
scalars and a space may hold tuples such as n-gram ranges).

Initial design: the shared Sobol design of ``ModelBasedMethod``, not Optuna's own random startup
trials. It is the fairer choice: at one seed every model-based method (gp_ei, gp_ts, skopt_gp and
these two) starts from the same configurations, so the differences between them come from the
model and the acquisition, not from the luck of the first draws; and the paired comparison over
seeds has less variance. The sampler's ``n_startup_trials`` is therefore 0: the design points are
handed to the study as completed trials (``Study.add_trial``) before its first ``ask``.

Observations. Every evaluated configuration reaches the study once: a configuration the study
proposed is told through ``Study.tell``; one from the design or a random fill is added as a
finished trial. A failed or diverged evaluation is told as ``TrialState.FAIL`` (Optuna's own
handling: both samplers ignore failed trials). When the sampler proposes a configuration that was
already evaluated, that proposal is told as failed and ``ModelBasedMethod`` fills the slot with a
random unseen configuration: the suite never evaluates a configuration twice.

Batches: TPE's ``constant_liar`` (default on) keeps the q proposals of one ``ask(q)`` apart;
Optuna's GP sampler proposes each in turn and sees the others as running trials.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from skopt.space import Categorical, Integer

from bench.errors import BenchError, Unsupported
from bench.space import Config, SearchSpace
from methods.model_based import ModelBasedMethod, check_noise_std

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("optuna").setLevel(logging.ERROR)  # the GP sampler's note when greenlet is missing


class OptunaSampler(ModelBasedMethod):
    """An Optuna sampler behind ``ModelBasedMethod``: the shared design, then the sampler."""

    def __init__(self, space: SearchSpace, seed: int, n_initial: int | None = None) -> None:
        super().__init__(space, seed, n_initial)
        self.distributions: dict[str, BaseDistribution] = {dim.name: _distribution(dim) for dim in space.dimensions}
        self.study = optuna.create_study(direction="minimize", sampler=self.sampler())
        self.asked: dict[tuple[Any, ...], int] = {}  # configuration key -> the study trial that proposed it
        self.synced = 0  # observations already in the study

    def sampler(self) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def propose(self, n: int, pending: list[Config]) -> list[Config]:
        self.sync()
        chosen: list[Config] = []
        for _ in range(n):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                trial = self.study.ask(self.distributions)
            config = self.space.check(self.decode(trial.params), where=f"{type(self).__name__} suggestion")
            if not self.is_new(config, pending + chosen):  # a repeat: told as failed, never evaluated
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            self.asked[self.key(config)] = trial.number
            chosen.append(config)
        return chosen

    def sync(self) -> None:
        """Hand the study every observation it has not seen yet."""
        for config, objective in zip(self.configs[self.synced :], self.objectives[self.synced :], strict=True):
            ok = math.isfinite(objective)
            number = self.asked.pop(self.key(config), None)
            if number is not None:
                self.study.tell(number, objective if ok else None, state=TrialState.COMPLETE if ok else TrialState.FAIL)
            else:
                self.study.add_trial(
                    create_trial(
                        params=self.encode(config),
                        distributions=self.distributions,
                        value=objective if ok else None,
                        state=TrialState.COMPLETE if ok else TrialState.FAIL,
                    )
                )
        self.synced = len(self.configs)

    def encode(self, config: Config) -> dict[str, Any]:
        """A configuration as Optuna parameters (a categorical as the index of its choice)."""
        return self.space.indexed(config)

    def decode(self, params: dict[str, Any]) -> Config:
        return self.space.from_indexed(params)


class OptunaTPE(OptunaSampler):
    """``optuna.samplers.TPESampler`` (Bergstra et al. 2011; Watanabe 2023), Optuna's default.

    Options are TPE's own: ``multivariate`` (model the hyperparameters jointly), ``constant_liar``
    (batches), ``n_ei_candidates`` (candidates scored by the density ratio per suggestion),
    ``consider_endpoints`` and ``prior_weight``; null keeps Optuna's default.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        n_initial: int | None = None,
        multivariate: bool | None = None,
        constant_liar: bool = True,
        n_ei_candidates: int = 24,
        consider_endpoints: bool | None = None,
        prior_weight: float | None = None,
    ) -> None:
        if n_ei_candidates < 1:
            raise BenchError(f"method.n_ei_candidates={n_ei_candidates}: must be at least 1")
        if prior_weight is not None and not prior_weight > 0:
            raise BenchError(f"method.prior_weight={prior_weight}: must be positive, or null for Optuna's default")
        self.options = {
            "multivariate": multivariate,
            "constant_liar": constant_liar,
            "n_ei_candidates": n_ei_candidates,
            "consider_endpoints": consider_endpoints,
            "prior_weight": prior_weight,
        }
        super().__init__(space, seed, n_initial)

    def sampler(self) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():  # multivariate and constant_liar are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=self.rng_seed(), n_startup_trials=0, **self.options)


class OptunaGP(OptunaSampler):
    """``optuna.samplers.GPSampler``: Optuna's own GP Bayesian optimisation (Matern-5/2 ARD,
    log EI, fitted and optimised with torch).

    ``noise_std``: as for the other GP methods, the objective's known noise; 0 (a noise-free task)
    sets Optuna's ``deterministic_objective``, anything else leaves the noise to be learned (Optuna
    has no fixed-noise option). Default: the task's declared ``noise_std``, else null.
    """

    def __init__(
        self, space: SearchSpace, seed: int, n_initial: int | None = None, noise_std: float | None = None
    ) -> None:
        check_noise_std(noise_std)
        self.deterministic = noise_std == 0
        super().__init__(space, seed, n_initial)

    def sampler(self) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(
                seed=self.rng_seed(), n_startup_trials=0, deterministic_objective=self.deterministic
            )


class OptunaCmaEs(OptunaSampler):
    """``optuna.samplers.CmaEsSampler`` (Hansen 2016; the ``cmaes`` package): CMA-ES, the
    evolution strategy made for many continuous variables, through Optuna.

    Start. CMA-ES learns from the generations it samples itself, not from trials handed to it, so
    the shared Sobol design (evaluated first, as for every model-based method) gives it its start:
    the mean of the first generation is the design's best configuration (``x0``), and the design
    trials are in the study but not in CMA-ES's updates. ``n_initial`` = 1 starts CMA-ES from one
    design point, the space's first Sobol point. (Optuna deprecated ``x0`` and ``sigma0`` in 4.9,
    for removal in 6.0; the suite pins Optuna 5.0.0.)

    Options are CMA-ES's own: ``sigma0`` (the initial step size in the sampler's normalised
    coordinates, log scale where declared; null: Optuna's min range / 6), ``popsize`` (null:
    4 + floor(3 ln d)), ``use_separable_cma`` (a diagonal covariance, sep-CMA-ES: linear in d per
    generation, the usual choice for hundreds of variables), ``lr_adapt`` (learning-rate
    adaptation, Nomura et al. 2023, for noisy or multimodal objectives). A categorical entry is
    sampled at random (``RandomSampler``): CMA-ES has no model of it.

    The full covariance refuses more than ``FULL_MAX_DIMENSIONS`` numeric hyperparameters, before
    the run starts: at d = 512 an ask took 23 s (results/reference/perf_methods_dims_cpu.md; the
    ``cmaes`` package resamples up to 100 times while a sample falls outside the bounds), against
    0.03 s at d = 64 and 0.2-0.4 s for the separable form at d = 512.
    """

    FULL_MAX_DIMENSIONS = 256

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        n_initial: int | None = None,
        sigma0: float | None = None,
        popsize: int | None = None,
        use_separable_cma: bool = False,
        lr_adapt: bool = False,
    ) -> None:
        if sigma0 is not None and not sigma0 > 0:
            raise BenchError(f"method.sigma0={sigma0}: must be positive, or null for Optuna's default")
        if popsize is not None and not (isinstance(popsize, int) and popsize >= 2):
            raise BenchError(f"method.popsize={popsize!r}: must be a whole number of at least 2, or null")
        numeric = sum(not isinstance(dim, Categorical) for dim in space.dimensions)
        if not use_separable_cma and numeric > self.FULL_MAX_DIMENSIONS:
            raise Unsupported(
                f"method=cmaes with a full covariance: {numeric} numeric hyperparameters, allowed at most "
                f"{self.FULL_MAX_DIMENSIONS} (an ask takes about 23 s at 512); set method.use_separable_cma=true"
            )
        self.options = {"sigma0": sigma0, "popsize": popsize, "use_separable_cma": use_separable_cma}
        self.options["lr_adapt"] = lr_adapt
        self.started = False  # the study is made again once the design is in: x0 is its best point
        super().__init__(space, seed, n_initial)

    def sampler(self, x0: dict[str, Any] | None = None) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # x0 and sigma0 are deprecated since Optuna 4.9 (removal planned for 6.0); Optuna is pinned
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.samplers.CmaEsSampler(
                x0=x0,
                seed=self.rng_seed(),
                n_startup_trials=0,
                independent_sampler=optuna.samplers.RandomSampler(seed=self.rng_seed()),
                warn_independent_sampling=False,
                **self.options,
            )

    def propose(self, n: int, pending: list[Config]) -> list[Config]:
        if not self.started:
            targets = self.targets()
            best = self.configs[int(np.argmin(targets))]
            x0 = {dim.name: best[dim.name] for dim in self.space.dimensions if not isinstance(dim, Categorical)}
            self.study = optuna.create_study(direction="minimize", sampler=self.sampler(x0))
            self.synced, self.started = 0, True
        return super().propose(n, pending)


def _distribution(dim: Any) -> BaseDistribution:
    if isinstance(dim, Categorical):
        return CategoricalDistribution(list(range(len(dim.categories))))
    log = dim.prior == "log-uniform"
    if isinstance(dim, Integer):
        return IntDistribution(int(dim.low), int(dim.high), log=log)
    return FloatDistribution(float(dim.low), float(dim.high), log=log)
