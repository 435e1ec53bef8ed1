"""Multi-fidelity methods: stop poor trainings early and spend the steps on promising ones.

- ``asha``: asynchronous successive halving (Li et al., MLSys 2020) with random configurations:
  Optuna's ``SuccessiveHalvingPruner`` and ``RandomSampler``;
- ``hyperband``: Hyperband (Li et al., JMLR 2018), successive halving in brackets that start at
  different fidelities, hedging against curves that cross: Optuna's ``HyperbandPruner`` and
  ``RandomSampler``;
- ``bohb``: Hyperband whose configurations come from a TPE model instead of at random, Optuna's
  analogue of BOHB (Falkner et al., ICML 2018): ``HyperbandPruner`` and ``TPESampler``. Falkner et
  al. fit one KDE per budget on the largest budget with enough points; Optuna's TPE models the
  trials of the same bracket, ranking stopped trials below finished ones by their last rung;
- ``top_k_early``: the baseline of Egele et al. (2023): train ``candidates`` random configurations
  to ``min_fidelity`` (one epoch), continue the best ``keep`` to a full training, and start over
  while the budget lasts.

Why Optuna. It is pinned already, its pruners are maintained and widely run, and they work through
ask-and-tell (``trial.report`` / ``trial.should_prune``) without a worker pool. Syne Tune pulls
xgboost and a CUDA collective library into the environment, and SMAC3's and DEHB's multi-fidelity
code pulls dask's distributed scheduler; the original BOHB (hpbandster) is unmaintained.

Fidelity is counted in training steps. A full training has R steps (the task's
``full_fidelity``); the rungs are r_k = r_min eta^k for r_k < R_max, then R_max, with r_min =
round(``min_fidelity`` x R) (at least 1), R_max = round(``max_fidelity`` x R) and eta the
``reduction_factor``. Optuna's pruners decide at exactly these steps (their ``min_resource`` is
r_min), and each rung is one trial of the run: a configuration promoted from r_k to r_(k+1)
continues its paused training (``bench.fidelity``), costing r_(k+1) - r_k steps. Optuna's pruners
decide at once, as a trial reaches a rung (no trial waits to be promoted later), so these methods
train one configuration at a time: ``ask(n)`` returns one rung. A failed or diverged rung stops
its training (told as failed).

Defaults (min_fidelity 1/27, reduction_factor 3: four rungs, Hyperband's four brackets) are
Li et al.'s eta = 3; their choice for the suite's tasks is in ``conf/method/multi_fidelity/``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from bench.errors import BenchError
from bench.protocols import Evaluation, Rung
from bench.space import Config, SearchSpace
from methods.optuna_samplers import _distribution

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("optuna").setLevel(logging.ERROR)

PRUNERS = ("successive_halving", "hyperband")
SAMPLERS = ("random", "tpe")


def rungs(full_fidelity: int, min_fidelity: float, max_fidelity: float, reduction_factor: int) -> list[int]:
    """The fidelities in steps: r_min eta^k while below R_max, then R_max (see the module)."""
    top = max(1, round(max_fidelity * full_fidelity))
    low = min(max(1, round(min_fidelity * full_fidelity)), top)
    levels = []
    while low < top:
        levels.append(low)
        low *= reduction_factor
    return [*levels, top]


def check_fidelities(min_fidelity: float, max_fidelity: float, reduction_factor: int | None = None) -> None:
    """One-line errors for the fidelity options every multi-fidelity method shares."""
    for name, value in (("min_fidelity", min_fidelity), ("max_fidelity", max_fidelity)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise BenchError(f"method.{name}={value!r}: a fraction of the full training, in (0, 1]")
    if min_fidelity > max_fidelity:
        raise BenchError(f"method.min_fidelity={min_fidelity} is above method.max_fidelity={max_fidelity}")
    if reduction_factor is not None and (
        isinstance(reduction_factor, bool) or not isinstance(reduction_factor, int) or reduction_factor < 2
    ):
        raise BenchError(f"method.reduction_factor={reduction_factor!r}: a whole number, 2 or more")


class OptunaMultiFidelity:
    """An Optuna sampler and pruner trained rung by rung: ``asha``, ``hyperband``, ``bohb``.

    ``pruner``: successive_halving | hyperband. ``sampler``: random | tpe. ``n_startup_trials``:
    TPE's random configurations before its model (Optuna's default 10); ``bootstrap_count``:
    successive halving's trials a rung needs before it promotes any (Optuna's default 0).
    """

    multi_fidelity = True

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        pruner: str = "successive_halving",
        sampler: str = "random",
        min_fidelity: float = 1 / 27,
        max_fidelity: float = 1.0,
        reduction_factor: int = 3,
        n_startup_trials: int = 10,
        bootstrap_count: int = 0,
    ) -> None:
        if pruner not in PRUNERS:
            raise BenchError(f"method.pruner={pruner!r}: allowed: {', '.join(PRUNERS)}")
        if sampler not in SAMPLERS:
            raise BenchError(f"method.sampler={sampler!r}: allowed: {', '.join(SAMPLERS)}")
        check_fidelities(min_fidelity, max_fidelity, reduction_factor)
        for name, value, low in (("n_startup_trials", n_startup_trials, 0), ("bootstrap_count", bootstrap_count, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise BenchError(f"method.{name}={value!r}: a whole number, {low} or more")
        self.space, self.seed = space, seed
        self.options = {"pruner": pruner, "sampler": sampler, "n_startup_trials": n_startup_trials}
        self.min_fidelity, self.max_fidelity, self.reduction_factor = min_fidelity, max_fidelity, reduction_factor
        self.bootstrap_count = bootstrap_count
        self.distributions = {dim.name: _distribution(dim) for dim in space.dimensions}
        self.levels: list[int] = []
        self.study: optuna.Study | None = None
        self.current: tuple[optuna.Trial, Config, int] | None = None  # the trial in training, its rung index

    def begin(self, full_fidelity: int) -> None:
        self.levels = rungs(full_fidelity, self.min_fidelity, self.max_fidelity, self.reduction_factor)
        r_min, eta = self.levels[0], self.reduction_factor
        if self.options["pruner"] == "hyperband":
            pruner: optuna.pruners.BasePruner = optuna.pruners.HyperbandPruner(
                min_resource=r_min, max_resource=self.levels[-1], reduction_factor=eta
            )
        else:
            pruner = optuna.pruners.SuccessiveHalvingPruner(
                min_resource=r_min, reduction_factor=eta, bootstrap_count=self.bootstrap_count
            )
        state = int(np.random.SeedSequence([self.seed, 0xF1D]).generate_state(1)[0])
        if self.options["sampler"] == "tpe":
            sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                seed=state, n_startup_trials=self.options["n_startup_trials"]
            )
        else:
            sampler = optuna.samplers.RandomSampler(seed=state)
        # a fixed study name: Hyperband assigns trials to brackets by a hash of it
        self.study = optuna.create_study(
            study_name=f"bench-{self.seed}", direction="minimize", sampler=sampler, pruner=pruner
        )

    def ask(self, n: int) -> list[Rung]:
        if self.study is None:
            raise RuntimeError("begin(full_fidelity) must be called before ask")
        if self.current is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                trial = self.study.ask(self.distributions)
            config = self.space.check(self.space.from_indexed(trial.params), where=f"{type(self).__name__} suggestion")
            self.current = (trial, config, 0)
        trial, config, level = self.current
        return [Rung(config=config, fidelity=self.levels[level], lineage=trial.number)]

    def tell(self, rungs_: Sequence[Rung], evaluations: Sequence[Evaluation]) -> None:
        assert self.study is not None and self.current is not None
        (evaluation,) = evaluations
        trial, config, level = self.current
        if not evaluation.ok:
            self.study.tell(trial, state=TrialState.FAIL)
            self.current = None
        elif level == len(self.levels) - 1:  # a full training: a finished trial
            self.study.tell(trial, evaluation.objective)
            self.current = None
        else:
            trial.report(evaluation.objective, step=self.levels[level])
            if trial.should_prune():
                self.study.tell(trial, state=TrialState.PRUNED)
                self.current = None
            else:
                self.current = (trial, config, level + 1)


class TopKEarly:
    """Egele et al.'s (2023) baseline: ``candidates`` random configurations trained to
    ``min_fidelity`` of the full training (one epoch), the ``keep`` best of them continued to
    ``max_fidelity``; then another round, while the budget lasts. Every candidate of a round is
    asked before any is continued (``ask(n)`` hands out up to n of them at once)."""

    multi_fidelity = True

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        candidates: int = 16,
        keep: int = 2,
        min_fidelity: float = 1 / 8,
        max_fidelity: float = 1.0,
    ) -> None:
        check_fidelities(min_fidelity, max_fidelity)
        for name, value in (("candidates", candidates), ("keep", keep)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BenchError(f"method.{name}={value!r}: a positive whole number")
        if keep > candidates:
            raise BenchError(f"method.keep={keep}: at most method.candidates={candidates}")
        self.space, self.candidates, self.keep = space, candidates, keep
        self.min_fidelity, self.max_fidelity = min_fidelity, max_fidelity
        self.rng = np.random.default_rng([seed, 0x70BC])
        self.levels: list[int] = []
        self.queue: list[Rung] = []  # asked next
        self.waiting = 0  # rungs asked, not yet told
        self.round: list[tuple[float, int, Rung]] = []  # this round's short trainings: (objective, order, rung)
        self.lineages = 0

    def begin(self, full_fidelity: int) -> None:
        self.levels = rungs(full_fidelity, self.min_fidelity, self.max_fidelity, full_fidelity + 1)
        if len(self.levels) < 2:
            raise BenchError(
                f"method.min_fidelity={self.min_fidelity} of {full_fidelity} steps is a full training "
                f"(max_fidelity={self.max_fidelity}): nothing would be stopped early; lower it"
            )

    def ask(self, n: int) -> list[Rung]:
        if not self.queue and not self.waiting:
            if self.round:  # the round's short trainings are in: continue the best `keep`
                best = sorted(self.round)[: self.keep]
                self.queue = [Rung(rung.config, self.levels[-1], rung.lineage) for _, _, rung in best]
                self.round = []
            else:
                self.queue = [self._new(config) for config in self.space.sample(self.candidates, self.rng)]
        asked, self.queue = self.queue[:n], self.queue[n:]
        self.waiting += len(asked)
        return asked

    def tell(self, rungs_: Sequence[Rung], evaluations: Sequence[Evaluation]) -> None:
        self.waiting -= len(rungs_)
        for rung, evaluation in zip(rungs_, evaluations, strict=True):
            if rung.fidelity < self.levels[-1] and evaluation.ok:
                self.round.append((evaluation.objective, len(self.round), rung))

    def _new(self, config: Config) -> Rung:
        self.lineages += 1
        return Rung(config=config, fidelity=self.levels[0], lineage=self.lineages - 1)
