"""What a run leaves on disk, and the records it is made of: the one format the run core writes and
the report reads.

A run is a folder holding:

- ``trials.jsonl``: one JSON object per finished trial (``trial_row``), appended as it finishes;
- ``run.json``: the run's configuration, identity and provenance, its status, and when it ends
  its incumbent and the incumbent's fresh-seed retrainings;
- ``trials.parquet``: the same rows as the JSON lines, flattened (``trials_frame``), written when
  the run ends.

``run.json`` marks a folder as a run. Rows are flat in pandas: ``config.<name>``, ``test.<name>``,
``metrics.<name>``. A ``Trial`` is the runner's record of one trial; ``RunResult`` what a run
returns. The writer is ``bench.store``; the reader of many runs into pandas is ``bench.report``.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.protocols import Evaluation
from bench.space import Config

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
TRIALS_JSONL = "trials.jsonl"
TRIALS_PARQUET = "trials.parquet"
REFUSED_FILE = "refused.json"
"""A sweep job's record that its method cannot tune its task (``bench.errors.Unsupported``), written
in place of a run when the sweep has ``unsupported=record``: task, method, seed, overrides, reason."""

CLOCK_COLUMNS = ("cost_seconds", "ask_seconds", "cumulative_seconds", "metrics.hypergradient_seconds")
"""Trial-table columns that read a clock: two runs of one command differ there (and in ``run_id``)
and nowhere else."""

NOTHING_LEFT = "the method has nothing left to ask"
"""The stop reason of a run whose method returned no configuration (not a budget limit)."""


@dataclass(frozen=True)
class Trial:
    """One finished trial, as the runner records it."""

    index: int
    config: Config
    evaluation: Evaluation
    seed: int
    ask_seconds: float
    """This trial's share of the ``ask()`` call that proposed it."""
    cost_seconds: float
    cumulative_seconds: float
    cumulative_steps: int
    best_so_far: float
    """Lowest ``ok`` objective up to and including this trial (nan before the first)."""
    proposed_by: str = "method"
    """``method``, or ``fallback`` when the method's ``ask`` raised (``method_error`` says what)."""
    method_error: str | None = None
    fidelity: int | None = None
    """Training steps this trial's training reached (a multi-fidelity method's rung); None: a full
    training (any other method)."""
    continues: int | None = None
    """The trial whose paused training this rung continued (its ``cost_steps`` are the new steps
    only); None: trained from scratch."""


@dataclass
class RunResult:
    """What a run returns: its trials, why it stopped, and its incumbent with its retrainings."""

    trials: list[Trial]
    stop_reason: str
    seconds: float
    incumbent: Trial | None = None
    final: list[Evaluation] = field(default_factory=list)
    final_seeds: list[int] = field(default_factory=list)
    method_errors: list[str] = field(default_factory=list)
    """Exceptions the method raised in ``ask`` or ``tell`` (each retried once)."""

    @property
    def all_failed(self) -> bool:
        """Trials ran and none of them succeeded."""
        return bool(self.trials) and self.incumbent is None

    def failure_summary(self) -> str:
        """One line: how many trials failed, and the commonest reason."""
        reasons = Counter(t.evaluation.error or t.evaluation.status for t in self.trials)
        reason, count = reasons.most_common(1)[0]
        return f"all {len(self.trials)} trials failed; the commonest reason ({count}x): {reason}"


# ------------------------------------------------------------------------------- one trial's row
def trial_row(identity: Mapping[str, Any], trial: Trial, test_metric: str) -> dict[str, Any]:
    """The ``trials.jsonl`` row of ``trial``; ``identity`` (run_id, task, method, seed) goes first."""
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
        "fidelity": trial.fidelity,
        "continues": trial.continues,
        "config": trial.config,
        "test": dict(evaluation.test),
        "metrics": dict(evaluation.metrics),
    }


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
        fidelity=row.get("fidelity"),
        continues=row.get("continues"),
    )


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


def trials_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Trial rows as one flat table (``config.<name>``, ``test.<name>``, ``metrics.<name>``)."""
    if not rows:
        return pd.DataFrame()
    frame = pd.json_normalize(rows, max_level=1)
    for column in ("objective", "test_metric", "best_so_far", "cost_seconds", "cumulative_seconds"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame


def read_trials_jsonl(path: Path) -> pd.DataFrame:
    """Rows of a ``trials.jsonl``; a truncated last line (a crash mid-write) is skipped."""
    return trials_frame(read_rows(path)[0])


def comparable(trials: pd.DataFrame) -> pd.DataFrame:
    """A trial table without its clock columns and run id, rows in trial order: what two runs of
    the same command (or a resumed run and an uninterrupted one) must share exactly."""
    dropped = [c for c in (*CLOCK_COLUMNS, "run_id") if c in trials]
    return trials.drop(columns=dropped).sort_values("trial").reset_index(drop=True)


NOT_A_CELL = ("seed", "resume", "progress", "unsupported", "launcher", "torch_threads", "device")
"""Overrides that do not say which experiment a sweep job runs (nor does any ``hydra.*``)."""


def cells(jobs: Sequence[Sequence[str]]) -> list[str]:
    """Each sweep job's cell: its overrides without those of ``NOT_A_CELL`` and ``hydra.*`` and
    without those every job shares (``["method=cmaes experiment=d5000", ...]``), one per job, in order."""
    keys = [[o.split("=", 1)[0].lstrip("+~") for o in job] for job in jobs]
    kept = [
        [o for o, key in zip(job, names, strict=True) if key not in NOT_A_CELL and not key.startswith("hydra.")]
        for job, names in zip(jobs, keys, strict=True)
    ]
    shared = set.intersection(*map(set, kept)) if len(kept) > 1 else set()
    return [" ".join(o for o in job if o not in shared) or "the base configuration" for job in kept]


def read_refused(root: Path) -> list[dict[str, Any]]:
    """Every refused cell's record under ``root`` (``REFUSED_FILE``), sorted by folder."""
    found = []
    for path in sorted(Path(root).rglob(REFUSED_FILE)):
        try:
            found.append({**json.loads(path.read_text(encoding="utf-8")), "directory": str(path.parent)})
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BenchError(f"{path}: not a valid refusal record ({error}); move its folder away") from None
    return found


def read_meta(directory: Path) -> dict[str, Any]:
    """A run's ``run.json``; a one-line error if it is not valid JSON."""
    path = Path(directory) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BenchError(f"{path}: not a valid run record ({error}); move the folder away or remove it") from None


def json_safe(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, tuples to lists, non-finite floats to null."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
