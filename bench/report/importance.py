"""Hyperparameter importance by functional ANOVA, as Greff et al. (2017) measured it.

fANOVA (Hutter et al. 2014) fits a random forest to (configuration, validation objective) pairs
and splits the variance of its prediction over the search space into the main effect of each
hyperparameter, their interactions, and the rest. Greff et al. report that the learning rate's
main effect alone explains more than two thirds of the variance of LSTM performance.

Here Optuna's ``FanovaImportanceEvaluator`` is fed the trial table: every ``ok`` trial of an
experiment (all its seeds pooled; failed trials have no objective and are left out), each
hyperparameter on the scale its prior is uniform in (the space's unit-cube encoding: log for a
log-uniform one, log(1 - value) for Greff et al.'s momentum, linear otherwise), a categorical by
the index of its choice. fANOVA marginalises uniformly over each hyperparameter's range, so this
choice of scale matters: a learning rate drawn log-uniformly is averaged over its decades, as in
Greff et al., not over its raw range, where the top decade would hold 90% of the weight.

Two numbers per hyperparameter: ``variance_share``, the fraction of the forest's variance
explained by its main effect (Optuna with ``normalize=False``; what Greff et al. report; the
shares sum to less than 1, the rest being interactions), and ``normalised``, the shares rescaled
to sum to 1 (what Optuna's default ``normalize=True`` returns). Random search is the method to
read importance from: a model-based method's trials crowd where it believes the optimum is, which
is not a uniform sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import create_trial
from skopt.space import Categorical

from bench.errors import BenchError
from bench.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

MIN_TRIALS = 10
"""Fewer ok trials than this give no importance: a forest on a handful of points says nothing."""
MAX_TRIALS = 500
"""An experiment with more ok trials is read from a seeded random subsample of this many: Optuna's
fANOVA grows faster than linearly in the trials (``python -m bench.perf importance`` measures it),
and 500 uniform draws already pin the main effects down."""


def unit_values(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, float | int]:
    """The tuned hyperparameters of ``config`` on their prior's uniform scale in [0, 1], a
    categorical as the index of its choice."""
    config = space.check({name: config[name] for name in space.names if name in config})
    values: dict[str, float | int] = {}
    for dim in space.dimensions:
        if isinstance(dim, Categorical):
            values[dim.name] = dim.categories.index(config[dim.name])
        else:
            values[dim.name] = float(np.clip(dim.transform([config[dim.name]])[0], 0.0, 1.0))
    return values


def fanova(
    space: SearchSpace, configs: Sequence[Mapping[str, Any]], objectives: Sequence[float], seed: int = 0
) -> pd.DataFrame:
    """fANOVA importance of each tuned hyperparameter. Returns one row per hyperparameter, most
    important first: ``hyperparameter``, ``variance_share``, ``normalised``."""
    if len(configs) < MIN_TRIALS:
        raise BenchError(f"fANOVA needs at least {MIN_TRIALS} ok trials; got {len(configs)}")
    distributions = {
        dim.name: CategoricalDistribution(list(range(len(dim.categories))))
        if isinstance(dim, Categorical)
        else FloatDistribution(0.0, 1.0)
        for dim in space.dimensions
    }
    study = optuna.create_study(direction="minimize")
    study.add_trials(
        [
            create_trial(params=unit_values(space, config), distributions=distributions, value=float(value))
            for config, value in zip(configs, objectives, strict=True)
        ]
    )
    evaluator = FanovaImportanceEvaluator(seed=seed)
    with warnings.catch_warnings():  # normalize= is marked experimental in Optuna 5
        warnings.simplefilter("ignore", ExperimentalWarning)
        shares = get_param_importances(study, evaluator=evaluator, normalize=False)
    total = sum(shares.values())
    table = pd.DataFrame(
        {
            "hyperparameter": list(shares),
            "variance_share": list(shares.values()),
            "normalised": [value / total if total > 0 else 0.0 for value in shares.values()],
        }
    )
    return table.sort_values("variance_share", ascending=False, kind="stable").reset_index(drop=True)


def experiment_importance(
    runs: pd.DataFrame, trials: pd.DataFrame, seed: int = 0, max_trials: int = MAX_TRIALS
) -> pd.DataFrame:
    """fANOVA per experiment (task and labelled method, seeds pooled) over ``load_runs``'s
    frames, from at most ``max_trials`` ok trials each (a seeded subsample). Experiments with fewer
    than ``MIN_TRIALS`` ok trials are left out. Returns the rows of ``fanova`` with ``task``,
    ``method`` and ``trials`` (the ok trials read) in front."""
    tables = []
    for (task, _), group in runs.groupby(["task", "experiment"], sort=True):
        rows = trials[trials["run_id"].isin(group["run_id"]) & (trials["status"] == "ok")]
        if len(rows) < MIN_TRIALS:
            continue
        if len(rows) > max_trials:
            rows = rows.sample(max_trials, random_state=seed)
        space = SearchSpace.from_config(group["identity"].iloc[0]["task"]["space"])
        for name, members in group["space_groups"].iloc[0].items():  # the space the run tuned: one entry per group
            space = space.grouped(name, [member[len(name) + 1 :] for member in members])
        configs = [_config(row, space) for _, row in rows.iterrows()]
        table = summed_groups(fanova(space, configs, rows["objective"].to_numpy(float), seed=seed), space)
        tables.append(table.assign(task=task, method=group["label"].iloc[0], trials=len(rows)))
    if not tables:
        raise BenchError(f"no experiment here has the {MIN_TRIALS} ok trials fANOVA needs")
    columns = ["task", "method", "trials", "hyperparameter", "variance_share", "normalised"]
    return pd.concat(tables, ignore_index=True)[columns]


def summed_groups(table: pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """One row per declared entry: a grouped one (``task.l2_granularity``) as ``l2 (G groups)``,
    the sum of its groups' main-effect shares, so hundreds of groups read as one line."""
    if not space.groups:
        return table
    names = {member: f"{name} ({len(members)} groups)" for name, members in space.groups.items() for member in members}
    summed = table.assign(hyperparameter=table["hyperparameter"].map(lambda n: names.get(n, n)))
    summed = summed.groupby("hyperparameter", as_index=False, sort=False)[["variance_share", "normalised"]].sum()
    return summed.sort_values("variance_share", ascending=False, kind="stable").reset_index(drop=True)


def _config(row: pd.Series, space: SearchSpace) -> dict[str, Any]:
    """A trial row's configuration (``config.<name>`` columns; a tuple choice may come back from
    Parquet as an array)."""
    config = {}
    for name in space.tuned:
        value = row[f"config.{name}"]
        config[name] = tuple(np.asarray(value).tolist()) if isinstance(value, (list, np.ndarray)) else value
    return config
