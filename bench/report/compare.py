"""``python -m bench.report.compare RECORDED DIR``: whether the runs under DIR repeat the recorded
runs under RECORDED, trial for trial.

    python -m bench.report.compare results/reference/default/runs results/default/2026-12-07/18-02-11

Each recorded run is paired with the run under DIR of the same experiment (``run.json``'s
experiment id: task, method and every option, budget, package versions and data) and seed. A
pair must have the same trial table, clock columns and run id aside (``bench.records.comparable``),
and the same retrained incumbent. For a pair that differs, the line names the first differing
trial, the columns that differ there with both values, and both runs' numerics (level and probe,
``bench.numerics``): with equal probes the code paths promised the same numbers and something
unpinned changed them; with different probes they were not promised. A recorded run with no
counterpart is named too.

Exit status 0 when every recorded run is repeated, 1 when one differs or is missing, 2 on a user
error (a folder without runs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.records import TRIALS_JSONL, comparable, read_meta, read_trials_jsonl
from bench.report.load import find_runs


@dataclass(frozen=True)
class Pair:
    """A recorded run and the run that should repeat it (None where there is none)."""

    recorded: Path
    repeated: Path | None


def key(meta: Mapping[str, Any]) -> tuple[str, int]:
    return str((meta.get("experiment") or {}).get("id") or meta.get("run_id")), int(meta.get("seed", -1))


def pairs(recorded_root: Path, repeated_root: Path) -> list[Pair]:
    """Every recorded run with its counterpart under ``repeated_root``; a one-line error when a
    folder holds no runs."""
    found = {}
    for root in (recorded_root, repeated_root):
        runs = find_runs(root)
        if not runs:
            raise BenchError(f"{root}: no runs (folders holding run.json) under it")
        found[root] = {key(read_meta(directory)): directory for directory in runs}
    repeated = found[repeated_root]
    return [Pair(directory, repeated.get(k)) for k, directory in found[recorded_root].items()]


def first_difference(recorded: pd.DataFrame, repeated: pd.DataFrame) -> str | None:
    """Where two comparable trial tables first differ, in words; None when they are equal."""
    if recorded.equals(repeated):
        return None
    columns = sorted(set(recorded.columns) | set(repeated.columns))
    for index in range(max(len(recorded), len(repeated))):
        if index >= len(recorded) or index >= len(repeated):
            return f"trial {index}: recorded {len(recorded)} trials, here {len(repeated)}"
        old, new = recorded.iloc[index], repeated.iloc[index]
        differing = [c for c in columns if not _same(old.get(c), new.get(c))]
        if differing:
            values = [(c, _plain(old.get(c)), _plain(new.get(c))) for c in differing[:4]]
            shown = "; ".join(f"{c} recorded {a!r}, here {b!r}" for c, a, b in values)
            more = f" (and {len(differing) - 4} more columns)" if len(differing) > 4 else ""
            return f"trial {int(old['trial'])} of {len(recorded)}: {shown}{more}"
    return "the columns differ: " + ", ".join(sorted(set(recorded.columns) ^ set(repeated.columns)))


def _same(a: Any, b: Any) -> bool:
    """Equal cells: the same value to the last bit (NaN equals NaN), arrays element by element."""
    return repr(_plain(a)) == repr(_plain(b))


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def trials(directory: Path) -> pd.DataFrame:
    """A run's comparable trial table, from its JSON lines (what a record keeps; the parquet file
    of a finished run holds the same rows with other dtypes)."""
    return comparable(read_trials_jsonl(directory / TRIALS_JSONL))


def describe(pair: Pair) -> tuple[bool, str]:
    """(whether the pair repeats, one line saying so)."""
    meta = read_meta(pair.recorded)
    name = f"{meta.get('task')} {meta.get('method')} seed {meta.get('seed')} ({pair.recorded.name})"
    if pair.repeated is None:
        return False, f"MISSING  {name}: no run of this experiment and seed here"
    difference = first_difference(trials(pair.recorded), trials(pair.repeated))
    theirs = read_meta(pair.repeated)
    if difference is None:
        recorded_final = [e.get("objective") for e in (meta.get("final") or {}).get("evaluations", [])]
        repeated_final = [e.get("objective") for e in (theirs.get("final") or {}).get("evaluations", [])]
        if recorded_final == repeated_final:
            return True, f"equal    {name}: {meta.get('n_trials')} trials"
        difference = f"the incumbent's retrainings: recorded {recorded_final}, here {repeated_final}"
    return False, f"DIFFERS  {name}: from {difference}; numerics {numerics_words(meta, theirs)}"


def numerics_words(recorded: Mapping[str, Any], repeated: Mapping[str, Any]) -> str:
    def words(meta: Mapping[str, Any]) -> str:
        numerics = meta.get("numerics") or {}
        level, probe = numerics.get("level"), numerics.get("probe")
        return f"{numerics.get('mode')} {level}, probe {probe} ({numerics.get('cpu_model')})"

    old, new = words(recorded), words(repeated)
    return f"both {old}" if old == new else f"recorded {old}, here {new}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("recorded", type=Path, help="the recorded runs (for example results/reference/default/runs)")
    parser.add_argument("directory", type=Path, help="the runs that should repeat them")
    args = parser.parse_args(argv)
    try:
        found = pairs(args.recorded, args.directory)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = [describe(pair) for pair in found]
    for _, line in results:
        print(line)
    repeated = sum(ok for ok, _ in results)
    print(f"\n{repeated} of {len(results)} recorded runs repeated trial for trial under {args.directory}")
    return 0 if repeated == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
