"""What a sweep prints when it ends: the verdict in words and the comparison table (saved as
``report.md`` in the sweep folder), and the paper table its preset names. A Hydra callback, named
in ``conf/config.yaml``; the report's statistics are imported only when a sweep ends, so that
every run's start stays light."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bench import files
from bench.errors import BenchError, RunFailed
from bench.preflight import sweep_folders
from bench.records import REFUSED_FILE, RUN_FILE, read_meta

log = logging.getLogger("bench")


class SweepReport(Callback):
    """Print the verdict and comparison table of a finished sweep and save them as ``report.md``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from bench.report.load import find_runs, load_runs

        directory = Path(config.hydra.sweep.dir)
        runs, trials = load_runs(directory)
        failed = [meta for meta in map(read_meta, find_runs(directory)) if meta.get("status") == "failed"]
        folders = sweep_folders(config) or []
        unfinished = unfinished_jobs(folders)
        if not runs.empty:
            paper = (config.get("paper") or {}).get("name")
            print(
                f"\n{report(runs, trials, directory, paper)}\nReproduce this table: python -m bench.report "
                f"{directory}" + (f" --paper {paper}" if paper else "")
            )
        else:
            log.warning("no completed runs under %s", directory)
        problems = []
        if unfinished:
            counts = ", ".join(f"{n} {status}" for status, n in sorted(Counter(unfinished.values()).items()))
            problems.append(
                f"{len(unfinished)} of {len(folders)} runs did not complete ({counts}; first: "
                f"{next(iter(unfinished))}): the same command with resume=true continues them (the log says why "
                "each stopped)"
            )
        if failed:
            first = failed[0]
            problems.append(f"{len(failed)} run(s) of the sweep failed; {first['run_id']}: {first.get('error')}")
        if problems:
            raise RunFailed("; ".join(problems))


def unfinished_jobs(folders: list[Path]) -> dict[Path, str]:
    """The sweep's jobs that left no finished run (completed or failed) and were not refused as
    unsupported: folder -> ``killed while running`` (cancelled, requeued too often, out of memory),
    ``interrupted`` or ``not started``."""
    found = {}
    for folder in folders:
        if (folder / REFUSED_FILE).exists() and not (folder / RUN_FILE).exists():
            continue  # its method cannot tune its task: listed by the report as refused
        status = read_meta(folder).get("status") if (folder / RUN_FILE).exists() else "not started"
        status = "killed while running" if status == "running" else status  # its process ended without closing it
        if status not in ("completed", "failed"):
            found[folder] = status
    return found


def report(runs: Any, trials: Any, directory: Path, paper: str | None) -> str:
    """The verdict, the comparison table and the paper table (before the comparison where it
    leads: ``PaperTable.lead``), written to ``report.md``."""
    from bench.report import papers, scores, verdict
    from bench.report.table import comparison

    who = scores.per_task(runs)
    parts = ["\n\n".join(verdict.paragraphs(who)), comparison(runs, directory, who=who)]
    if paper:  # a sweep of part of a preset (held-out seeds of one method) may lack what the table needs
        try:
            found = papers.paper_table(paper, runs, trials)
            table = f"**{found.title}**\n\n{found.markdown()}"
            parts.insert(1 if found.lead else 2, table)
        except BenchError as error:
            parts.append(f"No paper table for this sweep: {error}")
    text = "\n\n".join(parts) + "\n"
    files.write_text(directory / "report.md", text)
    return text
