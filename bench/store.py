"""Run directories on disk, and loading them back into pandas.

One run writes three files into its directory:

- ``trials.jsonl``: one JSON object per finished trial, appended, flushed and fsynced before the
  method hears of the trial, so a crash keeps every finished trial;
- ``run.json``: written when the run starts (``status: running``) and replaced when it ends
  (``completed``, ``interrupted`` or ``failed``) with the incumbent and its fresh-seed test score;
- ``trials.parquet``: the same rows as the JSON lines, flattened, written when the run ends.

``run.json`` marks a directory as a run. Files are replaced atomically (write, then rename), so a
reader never sees half a file. Rows are flat in pandas: ``config.<name>``, ``test.<name>``,
``metrics.<name>``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.identity import digest, experiment_identity
from bench.protocols import Evaluation
from bench.runner import RunResult, Trial

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
TRIALS_JSONL = "trials.jsonl"
TRIALS_PARQUET = "trials.parquet"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunStore:
    """The directory of one run. ``identity`` (run_id, task, method, seed) goes on every row."""

    def __init__(self, directory: Path, meta: dict[str, Any], test_metric: str) -> None:
        self.directory = Path(directory)
        self.meta = meta
        self.test_metric = test_metric
        self.identity = {key: meta[key] for key in ("run_id", "task", "method", "seed")}
        self._trials = open(self.directory / TRIALS_JSONL, "x", encoding="utf-8")  # noqa: SIM115

    @classmethod
    def create(cls, directory: Path, meta: dict[str, Any], test_metric: str) -> RunStore:
        """Start a run in ``directory``; refuses a directory that already holds one."""
        directory = Path(directory)
        for name in (RUN_FILE, TRIALS_JSONL):
            if (directory / name).exists():
                raise BenchError(
                    f"{directory / name} exists: the directory already holds a run; "
                    "choose another output directory (hydra.run.dir=...)"
                )
        directory.mkdir(parents=True, exist_ok=True)
        meta = {**meta, "status": "running", "started": now()}
        write_json(directory / RUN_FILE, meta)
        return cls(directory, meta, test_metric)

    def append(self, trial: Trial) -> None:
        self._trials.write(json.dumps(_clean(trial_row(self.identity, trial, self.test_metric))) + "\n")
        self._trials.flush()
        os.fsync(self._trials.fileno())

    def finish(self, result: RunResult | None, status: str, error: str | None = None) -> dict[str, Any]:
        """Close the run: write ``trials.parquet`` and the final ``run.json``; returns the latter."""
        self._trials.close()
        frame = read_trials_jsonl(self.directory / TRIALS_JSONL)
        tmp = self.directory / (TRIALS_PARQUET + ".tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.directory / TRIALS_PARQUET)
        meta = {**self.meta, "status": status, "ended": now(), "n_trials": len(frame)}
        if error is not None:
            meta["error"] = error
        if result is not None:
            meta.update(summarise_result(result, self.test_metric))
        write_json(self.directory / RUN_FILE, meta)
        self.meta = meta
        return meta


def trial_row(identity: Mapping[str, Any], trial: Trial, test_metric: str) -> dict[str, Any]:
    evaluation = trial.evaluation
    return {
        **identity,
        "trial": trial.index,
        "status": evaluation.status,
        "objective": evaluation.objective,
        "test_metric": evaluation.test.get(test_metric, math.nan),
        "best_so_far": trial.best_so_far,
        "cost_seconds": trial.cost_seconds,
        "cost_steps": evaluation.cost_steps,
        "ask_seconds": trial.ask_seconds,
        "cumulative_seconds": trial.cumulative_seconds,
        "cumulative_steps": trial.cumulative_steps,
        "training_seed": trial.seed,
        "error": evaluation.error,
        "config": trial.config,
        "test": dict(evaluation.test),
        "metrics": dict(evaluation.metrics),
    }


def summarise_result(result: RunResult, test_metric: str) -> dict[str, Any]:
    """The run-level fields of ``run.json``: stop reason, incumbent, fresh-seed re-evaluations."""
    summary: dict[str, Any] = {"stop_reason": result.stop_reason, "seconds": result.seconds}
    incumbent = result.incumbent
    if incumbent is None:
        summary["incumbent"] = None
        summary["final"] = None
        return summary
    summary["incumbent"] = {
        "trial": incumbent.index,
        "config": incumbent.config,
        "objective": incumbent.evaluation.objective,
        "test_metric": incumbent.evaluation.test.get(test_metric, math.nan),
        "metrics": dict(incumbent.evaluation.metrics),
    }
    finals = [e for e in result.final if e.ok]
    summary["final"] = {
        "seeds": result.final_seeds,
        "evaluations": [_evaluation_dict(e) for e in result.final],
        "objective": _median(e.objective for e in finals),
        "test_metric": _median(e.test.get(test_metric, math.nan) for e in finals),
        "metrics": _pool_metrics(e.metrics for e in finals),
    }
    return summary


def _evaluation_dict(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "status": evaluation.status,
        "objective": evaluation.objective,
        "test": dict(evaluation.test),
        "metrics": dict(evaluation.metrics),
        "error": evaluation.error,
    }


def _median(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else math.nan


def _pool_metrics(metrics: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Median of numeric metrics and pass rate (mean) of boolean ones, over re-evaluations."""
    pooled: dict[str, list[Any]] = {}
    for entry in metrics:
        for key, value in entry.items():
            pooled.setdefault(key, []).append(value)
    out = {}
    for key, values in pooled.items():
        if all(isinstance(v, bool) for v in values):
            out[key] = sum(values) / len(values)
        elif all(isinstance(v, (int, float)) for v in values):
            out[key] = _median(values)
    return out


# --------------------------------------------------------------------------------- JSON helpers
def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, tuples to lists, non-finite floats to null."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------- reading back
def read_trials_jsonl(path: Path) -> pd.DataFrame:
    """Rows of a ``trials.jsonl``; a truncated last line (a crash mid-write) is skipped."""
    rows = []
    lines = Path(path).read_text(encoding="utf-8").splitlines() if Path(path).exists() else []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                log.warning("%s: skipping a truncated last line", path)
                continue
            raise
    return _flatten(rows)


def _flatten(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    frame = pd.json_normalize(rows, max_level=1)
    for column in ("objective", "test_metric", "best_so_far", "cost_seconds", "cumulative_seconds"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame


def read_trials(directory: Path) -> pd.DataFrame:
    """One run's trials: the parquet file once the run has ended, the JSON lines before."""
    directory = Path(directory)
    if (directory / TRIALS_PARQUET).exists():
        return pd.read_parquet(directory / TRIALS_PARQUET)
    return read_trials_jsonl(directory / TRIALS_JSONL)


def find_runs(root: Path) -> list[Path]:
    """Every run directory (one holding ``run.json``) under ``root``, sorted."""
    root = Path(root)
    if not root.exists():
        raise BenchError(f"{root}: no such directory")
    return sorted(path.parent for path in root.rglob(RUN_FILE))


def load_runs(root: Path, include_incomplete: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All runs under ``root``: (one row per run, one row per trial).

    Runs that did not complete (``running`` after a crash, ``interrupted``, ``failed``) are left
    out unless ``include_incomplete``; their trials are still readable with ``read_trials``.
    """
    runs, trials = [], []
    skipped = []
    for directory in find_runs(root):
        meta = json.loads((directory / RUN_FILE).read_text(encoding="utf-8"))
        if meta.get("status") != "completed" and not include_incomplete:
            skipped.append(f"{directory} ({meta.get('status')})")
            continue
        frame = read_trials(directory)
        runs.append(_run_row(directory, meta, frame))
        trials.append(frame)
    if skipped:
        log.warning("left out %d incomplete run(s): %s", len(skipped), "; ".join(skipped))
    run_frame = pd.DataFrame(runs)
    trial_frame = pd.concat(trials, ignore_index=True) if trials else pd.DataFrame()
    return run_frame, trial_frame


def run_identity(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A run's experiment identity (``bench.identity``): as recorded in ``run.json``, or rebuilt
    from its configuration, package versions and data checksum for runs recorded before it was."""
    recorded = (meta.get("experiment") or {}).get("identity")
    if recorded is not None:
        return recorded
    packages = (meta.get("provenance") or {}).get("packages") or {}
    return experiment_identity(meta.get("config") or {}, packages, (meta.get("task_info") or {}).get("sha256"))


def _run_row(directory: Path, meta: Mapping[str, Any], trials: pd.DataFrame) -> dict[str, Any]:
    ok = trials[trials["status"] == "ok"] if len(trials) else trials
    final = meta.get("final") or {}
    identity = run_identity(meta)
    budget = meta.get("budget") or {}
    row = {
        "run_id": meta["run_id"],
        "task": meta["task"],
        "method": meta["method"],
        "seed": meta["seed"],
        "experiment": digest(identity),
        "identity": identity,
        "status": meta.get("status"),
        "stop_reason": meta.get("stop_reason"),
        "budget_evaluations": budget.get("evaluations"),
        "budget_train_steps": budget.get("train_steps"),
        "budget_seconds": budget.get("seconds"),
        "test_metric_name": meta.get("test_metric"),
        "n_trials": len(trials),
        "best_objective": float(ok["objective"].min()) if len(ok) else math.nan,
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


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
