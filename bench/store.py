"""The writer of run folders (their format: ``bench.records``).

``RunStore`` creates a run's folder, appends each finished trial to ``trials.jsonl`` (flushed and
fsynced before the method hears of the trial, so a crash keeps every finished trial), and on the
run's end writes ``trials.parquet`` and the final ``run.json`` (``completed``, ``interrupted`` or
``failed``) with the incumbent and its fresh-seed scores. Files are replaced atomically
(``bench.files``: write, fsync, rename), so a reader never sees half a file.

Resume (``RunStore.resume``). A run that did not complete is continued in its own folder, under
its own run id, if the command defines the same experiment (``bench.identity``) with the same
seed; otherwise a one-line error names what differs. A torn last line of ``trials.jsonl`` (a kill
mid-write) is dropped from the file before anything is appended to it; the recorded trials go back
to the runner as its ``history``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import statistics
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import files
from bench.errors import BenchError
from bench.files import write_atomically
from bench.identity import flatten, run_identity
from bench.numerics import check_replayable
from bench.protocols import Evaluation
from bench.records import (
    RUN_FILE,
    TRIALS_JSONL,
    TRIALS_PARQUET,
    RunResult,
    Trial,
    json_safe,
    read_meta,
    read_rows,
    read_trials_jsonl,
    recorded_trial,
    trial_row,
)

log = logging.getLogger(__name__)


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
        check_replayable(directory, recorded, meta.get("numerics"))
        trials = recorded_trials(directory / TRIALS_JSONL)
        _drop_torn_line(directory / TRIALS_JSONL)
        ended = ("ended", "stop_reason", "seconds", "incumbent", "final", "error", "n_trials", "method_errors")
        kept = {key: value for key, value in recorded.items() if key not in ended}
        when = {"at": now(), **{key: meta.get(key) for key in ("device", "numerics", "provenance")}}
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
        self._trials.write(json.dumps(json_safe(trial_row(self.identity, trial, self.test_metric))) + "\n")
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


# --------------------------------------------------------------------------------- folder policy
def check_folder(out: Path, meta: Mapping[str, Any], resume: bool) -> dict[str, Any] | None:
    """The run recorded in ``out`` (None if there is none) after checking that this command may
    use the folder: a new run needs an empty one; ``resume=true`` needs the same experiment."""
    if not (out / RUN_FILE).exists():
        if (out / TRIALS_JSONL).exists():
            raise BenchError(f"{out} holds {TRIALS_JSONL} without {RUN_FILE}: not a run; choose another directory")
        return None
    recorded = read_meta(out)
    if not resume:
        raise BenchError(
            f"{out} already holds run {recorded.get('run_id')} ({recorded.get('status')}): add resume=true to "
            "continue it, or choose another output directory (hydra.run.dir=... or hydra.sweep.dir=...)"
        )
    check_same_experiment(out, recorded, meta)  # a completed run is kept only for the same experiment
    if recorded.get("status") != "completed":
        recorded_trials(out / TRIALS_JSONL)  # a damaged record is refused before anything is written
    return recorded


def discard_unstarted(out: Path, job_name: str) -> None:
    """Remove what Hydra wrote for a job that never started, so no half run is left behind."""
    shutil.rmtree(out / ".hydra", ignore_errors=True)
    (out / f"{job_name}.log").unlink(missing_ok=True)
    with suppress(OSError):
        out.rmdir()


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    files.write_json(path, json_safe(payload))


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


def _drop_torn_line(path: Path) -> None:
    """Rewrite ``path`` (atomically) without a torn last line, so that appending can go on."""
    rows, torn = read_rows(path)
    if torn:
        files.write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
