"""Run folders into pandas: one row per run, one row per trial, each run labelled.

``load_runs(root)`` finds every run under ``root`` (a folder holding ``run.json``, at any depth;
the format is ``bench.records``) and returns two tables. Runs are labelled by experiment: runs
that share a task, a method and every option, budget and package version (``bench.identity``)
differ only in their seed and share a label, the method's name; two experiments of one method on
one task (a sweep over one of its options, or two budgets) get labels naming what differs
(``gp_ts[greedy=0]``, ``random[budget.evaluations=3]``). Every table of the report groups by label.

Settings of a task. Where the runs of one task tuned different numbers of hyperparameters d (a
sweep over ``task.l2_granularity``), each d is a setting of its own: the ``task`` column reads
``mnist_mlp[d=934]`` (``task_name`` keeps ``mnist_mlp``), so every table compares, pairs and tests
the methods within one d, and ``bench.report.analysis.crossing`` lines the settings up against d.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError
from bench.identity import canonical, digest, flatten, run_identity
from bench.records import RUN_FILE, TRIALS_JSONL, TRIALS_PARQUET, cells, read_meta, read_refused, read_trials_jsonl

log = logging.getLogger(__name__)


def find_runs(root: Path) -> list[Path]:
    """Every run folder (one holding ``run.json``) under ``root``, sorted."""
    root = Path(root)
    if not root.exists():
        raise BenchError(f"{root}: no such directory")
    return sorted(path.parent for path in root.rglob(RUN_FILE))


def read_trials(directory: Path) -> pd.DataFrame:
    """One run's trials: the parquet file once the run has ended, the JSON lines before."""
    directory = Path(directory)
    if (directory / TRIALS_PARQUET).exists():
        return pd.read_parquet(directory / TRIALS_PARQUET)
    return read_trials_jsonl(directory / TRIALS_JSONL)


def load_runs(root: Path, include_incomplete: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All runs under ``root``: (one row per run, with its ``label``; one row per trial).

    Runs that did not complete (``running`` after a crash, ``interrupted``, ``failed``) are left
    out unless ``include_incomplete``; their trials are still readable with ``read_trials``.
    """
    runs, trials = [], []
    skipped = []
    for directory in find_runs(root):
        meta = read_meta(directory)
        if meta.get("status") != "completed" and not include_incomplete:
            skipped.append(f"{directory} ({meta.get('status')})")
            continue
        frame = read_trials(directory)
        runs.append(_run_row(directory, meta, frame))
        trials.append(frame)
    if skipped:
        log.warning("left out %d incomplete run(s): %s", len(skipped), "; ".join(skipped))
    run_frame = pd.DataFrame(runs)
    if len(run_frame):
        run_frame["task"] = settings(run_frame)
        run_frame["label"] = run_labels(run_frame)
    trial_frame = pd.concat(trials, ignore_index=True) if trials else pd.DataFrame()
    return run_frame, trial_frame


def unfinished_runs(root: Path, counted: pd.DataFrame | None = None) -> list[str]:
    """The runs under ``root`` that did not complete (left out of ``counted``'s run ids), one
    phrase each: ``"<folder> (running, 4 trials on disk)"``."""
    ids = set(counted["run_id"]) if counted is not None and len(counted) else set()
    phrases = []
    for directory in find_runs(root):
        meta = read_meta(directory)
        if meta.get("status") != "completed" and meta.get("run_id") not in ids:
            phrases.append(f"{directory} ({meta.get('status')}, {len(read_trials(directory))} trials on disk)")
    return phrases


def refused_cells(root: Path) -> list[str]:
    """The sweep cells under ``root`` refused as unsupported (``unsupported=record``), one phrase per
    cell, its seeds folded: ``"method=cmaes experiment=d5000 (10 seeds): method=cmaes with ..."``."""
    refused = read_refused(root)
    if not refused:
        return []
    ran = [read_meta(directory).get("overrides") or [] for directory in find_runs(root)]
    names = cells([*ran, *(record.get("overrides") or [] for record in refused)])[len(ran) :]
    found: dict[str, list[dict[str, Any]]] = {}
    for name, record in zip(names, refused, strict=True):
        found.setdefault(name, []).append(record)
    return [
        f"{name} ({len(records)} seed{'s' if len(records) > 1 else ''}): {records[0].get('reason')}"
        for name, records in found.items()
    ]


def _run_row(directory: Path, meta: Mapping[str, Any], trials: pd.DataFrame) -> dict[str, Any]:
    ok = trials[trials["status"] == "ok"] if len(trials) else trials
    final = meta.get("final") or {}
    identity = run_identity(meta)
    budget = meta.get("budget") or {}
    row = {
        "run_id": meta["run_id"],
        "task": meta["task"],
        "task_name": meta["task"],
        "method": meta["method"],
        "method_kind": meta.get("method_kind"),  # hypergradient | black-box (None: recorded before it was)
        "seed": meta["seed"],
        "experiment": digest(identity),
        "identity": identity,
        "status": meta.get("status"),
        "stop_reason": meta.get("stop_reason"),
        "budget_evaluations": budget.get("evaluations"),
        "budget_train_steps": budget.get("train_steps"),
        "budget_seconds": budget.get("seconds"),
        "incumbent_repeats": identity.get("incumbent_repeats"),
        "test_metric_name": meta.get("test_metric"),
        "pass_criteria": dict(meta.get("pass_criteria") or {}),
        "space_groups": dict(meta.get("space_groups") or {}),  # task.l2_granularity: l2 -> l2_<group>, ...
        "dimensions": meta.get("dimensions") or dimensions(identity, meta.get("space_groups") or {}),
        "n_trials": len(trials),
        "best_objective": best_objective(trials, ok),
        "final_objective": _float(final.get("objective")),
        "final_test_metric": _float(final.get("test_metric")),
        "seconds": _float(meta.get("seconds", trials["cumulative_seconds"].max() if len(trials) else None)),
        "train_steps": int(trials["cost_steps"].sum()) if len(trials) else 0,
        "path": str(directory),
    }
    for key, value in ((meta.get("incumbent") or {}).get("metrics") or {}).items():
        row[f"incumbent.{key}"] = value
    for key, value in (final.get("metrics") or {}).items():
        row[f"final.{key}"] = value
    return row


def best_objective(trials: pd.DataFrame, ok: pd.DataFrame) -> float:
    """A run's best validation objective: its last ``best_so_far`` (the incumbent's; for a
    multi-fidelity run the best at the highest fidelity reached, not a shorter training's lucky
    score), or the lowest ``ok`` objective for trials recorded without it."""
    if not len(ok):
        return math.nan
    if "best_so_far" in trials and trials["best_so_far"].notna().any():
        return float(trials.sort_values("trial")["best_so_far"].dropna().iloc[-1])
    return float(ok["objective"].min())


def dimensions(identity: Mapping[str, Any], groups: Mapping[str, Sequence[str]]) -> int:
    """The number of hyperparameters a run tuned, for a ``run.json`` recorded before it held
    ``dimensions``: its task's space entries not fixed, a grouped entry counted once per group
    (``l2`` at ``per_unit``: 934)."""
    space = (identity.get("task") or {}).get("space") or {}
    free = [name for name, spec in space.items() if not (isinstance(spec, Mapping) and spec.get("fixed") is not None)]
    return sum(len(groups.get(name) or [name]) for name in free)


def settings(runs: pd.DataFrame) -> pd.Series:
    """Each run's task, as its setting: ``mnist_mlp[d=934]`` where runs of that task tuned
    different numbers of hyperparameters, and the task options that tell apart runs of one task
    at one d (``hyper_cleaning[d=3, loss_granularity=per_source, loss_weights=ones]`` beside the
    oracle's), else the task's name: the methods are compared within a setting, never across."""
    out = runs["task_name"].astype(str).copy()
    for task, group in runs.groupby("task_name", sort=False):
        numbered = group["dimensions"].nunique() > 1
        for d, same_d in group.groupby("dimensions", sort=False):
            options = [{"task": (identity or {}).get("task") or {}} for identity in same_d["identity"]]
            distinct = {json.dumps(canonical(option), sort_keys=True): option for option in options}
            keys = differences(list(distinct.values())) if len(distinct) > 1 else []
            for index, option in zip(same_d.index, options, strict=True):
                flat = flatten(option)
                parts = [f"d={d}"] * numbered + [f"{key.removeprefix('task.')}={_text(flat.get(key))}" for key in keys]
                out[index] = f"{task}[{', '.join(parts)}]" if parts else task
    return out


def setting_order(task: str) -> tuple[str, int, str]:
    """A sort key that puts a task's settings in the order of d (``mnist_mlp[d=4]`` before
    ``mnist_mlp[d=32]``), then by their other options, and any other task by its name."""
    name, _, rest = task.partition("[d=")
    number, _, others = rest.rstrip("]").partition(",")
    return (name, int(number), others) if number.isdigit() else (task, -1, "")


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


# ------------------------------------------------------------------------------------- labels
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


def differences(identities: Sequence[Mapping[str, Any]]) -> list[str]:
    """The flattened keys whose values differ among ``identities`` (a key missing from one counts
    as different), in a stable order."""
    flats = [{k: canonical(v) for k, v in flatten(identity).items()} for identity in identities]
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


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)
