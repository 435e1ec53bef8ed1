"""What makes two runs the same experiment: everything that defines it except the seed.

A run's identity is its task (options and search space), its method (options), its budget, its
batch size, how often the incumbent is retrained, the checksum of the data it read, and the
versions of the packages whose numerics decide its trials. Runs that share an identity differ only
in their seed and are pooled in a report; runs that do not are never pooled, even when they share
a task and a method name (``gp_ts`` with ``greedy=0`` and ``greedy=1``, or one method under two
budgets).

Left out on purpose: the seed (what repetitions vary), the device and thread count (they change
the last bits of a float, not the experiment), progress bars, and the code's git commit (recorded
in ``run.json`` beside the identity, so a report can still tell commits apart).

Numbers are compared as numbers: ``greedy=0`` and ``greedy=0.0`` are the same experiment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

RESULT_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "scikit-optimize", "gpytorch", "botorch", "optuna")
"""Packages whose versions can change a trial's numbers."""
DEFINING = ("task", "method", "budget", "batch_size", "incumbent_repeats")
"""Top-level keys of the run configuration that define the experiment."""


def experiment_identity(
    config: Mapping[str, Any], packages: Mapping[str, Any], data_sha256: str | None = None
) -> dict[str, Any]:
    """The identity of a run from its resolved configuration (``run.json``'s ``config``), the
    package versions it ran with and the checksum of its data (None for data-free tasks)."""
    identity: dict[str, Any] = {key: config.get(key) for key in DEFINING}
    if config.get("trial_timeout_s") is not None:  # a limit that fails slow trials changes the experiment
        identity["trial_timeout_s"] = config["trial_timeout_s"]
    identity["data_sha256"] = data_sha256
    identity["packages"] = {name: packages.get(name) for name in RESULT_PACKAGES}
    return identity


def digest(identity: Mapping[str, Any]) -> str:
    """A short hex digest of an identity (12 characters of the sha256 of its canonical JSON)."""
    text = json.dumps(_canonical(identity), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def flatten(identity: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"method": {"greedy": 0}}`` -> ``{"method.greedy": 0}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in identity.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def differences(identities: Sequence[Mapping[str, Any]]) -> list[str]:
    """The flattened keys whose values differ among ``identities`` (a key missing from one counts
    as different), in a stable order."""
    flats = [{k: _canonical(v) for k, v in flatten(identity).items()} for identity in identities]
    keys = sorted(set().union(*flats)) if flats else []
    return [key for key in keys if len({json.dumps(flat.get(key, "<unset>"), sort_keys=True) for flat in flats}) > 1]


def label(method: str, identity: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``gp_ts[greedy=0]``: the method name and the values of ``keys`` (method options without
    their ``method.`` prefix, other keys in full)."""
    if not keys:
        return method
    flat = flatten(identity)
    parts = [f"{key.removeprefix('method.')}={_text(flat.get(key))}" for key in keys]
    return f"{method}[{','.join(parts)}]"


def run_labels(runs: pd.DataFrame) -> pd.Series:
    """Each run's row label: the method name, plus the options that tell it apart from the other
    experiments of that method on that task (``gp_ts[greedy=0]``)."""
    out = pd.Series(runs["method"].astype(str).to_numpy(), index=runs.index)
    for _, same_name in runs.groupby(["task", "method"], sort=False):
        experiments = same_name.drop_duplicates("experiment")
        if len(experiments) < 2:
            continue
        keys = differences(experiments["identity"].tolist())
        for experiment, identity in zip(experiments["experiment"], experiments["identity"], strict=True):
            rows = same_name.index[same_name["experiment"] == experiment]
            out[rows] = label(str(same_name["method"].iloc[0]), identity, keys)
    return out


def diff_text(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    """``method.greedy: 0 != 1; budget.train_steps: 1000 != 2000``: how two identities differ."""
    a, b = flatten(ours), flatten(theirs)
    return "; ".join(f"{key}: {_text(a.get(key))} != {_text(b.get(key))}" for key in differences([ours, theirs]))


def _canonical(value: Any) -> Any:
    """Numbers as floats (bools kept), tuples as lists, mappings with string keys."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return str(value)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)
