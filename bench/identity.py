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

Numbers are compared as numbers: ``greedy=0`` and ``greedy=0.0`` are the same experiment. How the
report names experiments that share a method (``gp_ts[greedy=0]``) is ``bench.report.load``'s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

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
    text = json.dumps(canonical(identity), sort_keys=True, separators=(",", ":"))
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


def run_identity(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A run's experiment identity: as recorded in ``run.json``, or rebuilt from its configuration,
    package versions and data checksum for runs recorded before it was."""
    recorded = (meta.get("experiment") or {}).get("identity")
    if recorded is not None:
        return recorded
    packages = (meta.get("provenance") or {}).get("packages") or {}
    return experiment_identity(meta.get("config") or {}, packages, (meta.get("task_info") or {}).get("sha256"))


def canonical(value: Any) -> Any:
    """Numbers as floats (bools kept), tuples as lists, mappings with string keys."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)
