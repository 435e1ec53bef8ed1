"""Run directories on disk, and loading them back into pandas.

One run writes three files into its directory:

- ``trials.jsonl``: one JSON object per finished trial, appended, flushed and fsynced before the
  method hears of the trial, so a crash keeps every finished trial;
- ``run.json``: written when the run starts (``status: running``) and replaced when it ends
  (``completed``, ``interrupted`` or ``failed``) with the incumbent and its fresh-seed test score;
- ``trials.parquet``: the same rows as the JSON lines, flattened, written when the run ends.

``run.json`` marks a directory as a run. Files are replaced atomically (``bench.files``: write,
fsync, rename), so a reader never sees half a file. Rows are flat in pandas: ``config.<name>``,
``test.<name>``, ``metrics.<name>``.

Resume (``RunStore.resume``). A run that did not complete is continued in its own directory,
under its own run id, if the command defines the same experiment (``bench.identity``) with the
same seed; otherwise a one-line error names what differs. A torn last line of ``trials.jsonl`` (a
kill mid-write) is dropped from the file before anything is appended to it; the recorded trials
go back to the runner as its ``history``.
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

from bench import files
from bench.errors import BenchError
from bench.files import write_atomically
from bench.identity import digest, experiment_identity, flatten
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
        self._trials = open(self.directory / TRIALS_JSONL, "a", encoding="utf-8")  # noqa: SIM115
        self.appended = False  # whether this process has appended a trial
        self.recorded: bytes | None = None  # run.json as a resume found it

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
        (directory / TRIALS_JSONL).touch(exist_ok=False)
        write_json(directory / RUN_FILE, meta)
        return cls(directory, meta, test_metric)

    @classmethod
    def resume(cls, directory: Path, meta: dict[str, Any], test_metric: str) -> tuple[RunStore, list[Trial]]:
        """Continue the unfinished run in ``directory``: (its store, its recorded trials).

        ``meta`` is what this command would record for a new run; it must define the same
        experiment as the recorded run (``check_resumable``). The recorded run id and start time
        are kept; the run's status goes back to ``running``.
        """
        directory = Path(directory)
        recorded = read_meta(directory)
        original = (directory / RUN_FILE).read_bytes()
        if recorded.get("status") == "completed":
            raise BenchError(f"{directory}: the run there has completed; nothing to resume")
        check_same_experiment(directory, recorded, meta)
        trials = recorded_trials(directory / TRIALS_JSONL)
        _drop_torn_line(directory / TRIALS_JSONL)
        ended = ("ended", "stop_reason", "seconds", "incumbent", "final", "error", "n_trials", "method_errors")
        kept = {key: value for key, value in recorded.items() if key not in ended}
        when = {"at": now(), "device": meta.get("device"), "provenance": meta.get("provenance")}
        resumed = {**meta, **kept, "status": "running", "resumed": [*recorded.get("resumed", []), when]}
        write_json(directory / RUN_FILE, resumed)
        log.info("resuming %s: %d trial(s) recorded", recorded["run_id"], len(trials))
        store = cls(directory, resumed, test_metric)
        store.recorded = original
        return store, trials

    def undo_resume(self) -> None:
        """Put back the ``run.json`` of before ``resume`` (nothing was appended since): a resume
        refused while replaying leaves the run as it found it."""
        self._trials.close()
        write_atomically(self.directory / RUN_FILE, lambda tmp: tmp.write_bytes(self.recorded))

    def append(self, trial: Trial) -> None:
        if not self.appended:  # a resumed run: the table of an earlier end is out of date from now
            (self.directory / TRIALS_PARQUET).unlink(missing_ok=True)
            self.appended = True
        self._trials.write(json.dumps(_clean(trial_row(self.identity, trial, self.test_metric))) + "\n")
        self._trials.flush()
        os.fsync(self._trials.fileno())

    def finish(self, result: RunResult | None, status: str, error: str | None = None) -> dict[str, Any]:
        """Close the run: write ``trials.parquet`` and the final ``run.json``; returns the latter."""
        self._trials.close()
        frame = read_trials_jsonl(self.directory / TRIALS_JSONL)
        write_atomically(self.directory / TRIALS_PARQUET, lambda tmp: frame.to_parquet(tmp, index=False))
        meta = {**self.meta, "status": status, "ended": now(), "n_trials": len(frame)}
        if result is not None:
            meta.update(summarise_result(result, self.test_metric))
        if error is not None:
            meta["error"] = error
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
        "proposed_by": trial.proposed_by,
        "method_error": trial.method_error,
        "config": trial.config,
        "test": dict(evaluation.test),
        "metrics": dict(evaluation.metrics),
    }


def summarise_result(result: RunResult, test_metric: str) -> dict[str, Any]:
    """The run-level fields of ``run.json``: stop reason, incumbent, fresh-seed re-evaluations."""
    summary: dict[str, Any] = {"stop_reason": result.stop_reason, "seconds": result.seconds}
    if result.method_errors:
        summary["method_errors"] = result.method_errors
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
    files.write_json(path, _clean(payload))


def read_meta(directory: Path) -> dict[str, Any]:
    """A run's ``run.json``; a one-line error if it is not valid JSON."""
    path = Path(directory) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BenchError(f"{path}: not a valid run record ({error}); move the folder away or remove it") from None


def check_same_experiment(directory: Path, recorded: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Refuse to resume (or to keep, if it completed) a run of another experiment or seed: one
    line naming the first differences."""
    ours = {"seed": meta.get("seed"), **flatten(run_identity(meta))}
    theirs = {"seed": recorded.get("seed"), **flatten(run_identity(recorded))}
    differences = [key for key in sorted(ours.keys() | theirs.keys()) if ours.get(key) != theirs.get(key)]
    if differences:
        shown = "; ".join(f"{key}: recorded {theirs.get(key)!r}, now {ours.get(key)!r}" for key in differences[:3])
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise BenchError(
            f"cannot resume {directory}: this command defines another experiment: {shown}{more}; "
            "resume with the command that made it, or choose another output directory"
        )


def recorded_trials(path: Path) -> list[Trial]:
    """The trials of a ``trials.jsonl`` (a torn last line left out); a one-line error for a row
    that is not a whole trial record, or out of order."""
    trials = []
    for number, row in enumerate(read_rows(path)[0], start=1):
        try:
            trials.append(recorded_trial(row))
        except (KeyError, TypeError, ValueError) as error:
            raise BenchError(
                f"{path}: line {number} is not a whole trial record ({error!r}); the file is damaged"
            ) from None
        if trials[-1].index != number - 1:
            raise BenchError(f"{path}: line {number} holds trial {trials[-1].index}; the file is damaged")
    return trials


def recorded_trial(row: Mapping[str, Any]) -> Trial:
    """A ``trials.jsonl`` row back as the runner's ``Trial`` (JSON null back to nan)."""

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    evaluation = Evaluation(
        objective=number(row["objective"]),
        test={key: number(value) for key, value in (row.get("test") or {}).items()},
        metrics=dict(row.get("metrics") or {}),
        status=row["status"],
        cost_steps=int(row["cost_steps"]),
        error=row.get("error"),
    )
    return Trial(
        index=int(row["trial"]),
        config=dict(row["config"]),
        evaluation=evaluation,
        seed=int(row["training_seed"]),
        ask_seconds=float(row["ask_seconds"]),
        cost_seconds=float(row["cost_seconds"]),
        cumulative_seconds=float(row["cumulative_seconds"]),
        cumulative_steps=int(row["cumulative_steps"]),
        best_so_far=number(row["best_so_far"]),
        proposed_by=row.get("proposed_by", "method"),
        method_error=row.get("method_error"),
    )


# --------------------------------------------------------------------------------- reading back
def read_trials_jsonl(path: Path) -> pd.DataFrame:
    """Rows of a ``trials.jsonl``; a truncated last line (a crash mid-write) is skipped."""
    return _flatten(read_rows(path)[0])


def read_rows(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The JSON rows of a ``trials.jsonl`` and whether its last line was torn (then left out).

    Only the last line can be torn by a kill; a bad line before it means the file was damaged
    otherwise, and is a one-line error naming the line.
    """
    path = Path(path)
    if not path.exists():
        return [], False
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    complete, last = lines[:-1], lines[-1]  # a whole file ends with a newline: last == ""
    rows = []
    for number, line in enumerate(complete, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            if number == len(complete) and not last:  # a torn line whose newline made it to disk
                log.warning("%s: dropping a torn last line", path)
                return rows, True
            raise BenchError(f"{path}: line {number} is not a trial record; the file is damaged")
        rows.append(row)
    if last:
        log.warning("%s: dropping a torn last line", path)
    return rows, bool(last)


def _drop_torn_line(path: Path) -> None:
    """Rewrite ``path`` (atomically) without a torn last line, so that appending can go on."""
    rows, torn = read_rows(path)
    if torn:
        files.write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


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
