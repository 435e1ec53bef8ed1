"""The pre-flight check: every job of a run or sweep is built before Hydra creates a folder or
launches anything, so bad input fails at once, in one line, and leaves nothing on disk.

``Preflight`` is a Hydra callback named in ``conf/config.yaml``. For each job it builds the
experiment (``bench.build``: which also fills a task's data cache once, before parallel workers
start) and checks its output folder as the job itself will (``bench.store.check_folder``). A user
error leaves Hydra as ``LaunchRejected``, which ``bench.cli`` prints as one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from bench.build import build, run_meta
from bench.errors import USER_ERRORS, BenchError, LaunchRejected, Unsupported, describe
from bench.records import REFUSED_FILE, RUN_FILE, TRIALS_JSONL, cells
from bench.store import check_folder

log = logging.getLogger("bench")

UNSUPPORTED = ("refuse", "record")
"""``unsupported=``: what a sweep does with a job whose method cannot tune its task."""


class Preflight(Callback):
    """Build every job before Hydra creates a directory or launches anything."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _rejecting():
            records_unsupported(config)  # checked in a single run too: a sweep option, but a typo all the same
            check_job(config, None)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _rejecting():
            recording = records_unsupported(config)
            jobs = sweep_jobs(config)
            if jobs is None:  # a sweeper that picks jobs as it goes: check the base configuration
                build(config)
                return
            loader = GlobalHydra.instance().config_loader()
            refused: dict[str, str] = {}  # cell -> why (seeds folded)
            refused_jobs = 0
            for number, (overrides, where) in enumerate(zip(jobs, cells(jobs), strict=True)):
                job_config = loader.load_sweep_config(config, overrides)
                try:
                    check_job(job_config, number)
                except Unsupported as error:
                    if not recording:
                        raise BenchError(
                            f"{where}: {error}; to record such cells as refused and run the rest: unsupported=record"
                        ) from None
                    folder = job_folder(job_config, number)[0]
                    if (folder / RUN_FILE).exists():  # the job would find a run it cannot resume or keep
                        raise BenchError(
                            f"{folder} holds a run of {where}, which its method cannot tune now: {error}; move the "
                            "folder away, or resume with the command that made it"
                        ) from None
                    refused.setdefault(where, str(error))
                    refused_jobs += 1
            if refused_jobs == len(jobs):
                raise BenchError(f"every job of the sweep is unsupported; first: {next(iter(refused.values()))}")
        log.info("pre-flight: %d job configuration(s) checked", len(jobs))
        for where, why in refused.items():
            log.warning("pre-flight: %s is unsupported, recorded as refused (%s): %s", where, REFUSED_FILE, why)


def records_unsupported(config: DictConfig) -> bool:
    """Whether a sweep records its unsupported cells as refused (``unsupported=record``) rather than
    refusing to start (``refuse``)."""
    value = config.get("unsupported", "refuse")
    if value not in UNSUPPORTED:
        raise BenchError(f"unsupported={value!r}: allowed: {', '.join(UNSUPPORTED)}")
    return value == "record"


def check_job(config: DictConfig, number: int | None) -> None:
    """Build one job and check its output folder as the job itself will."""
    experiment = build(config, number)
    out, key = job_folder(config, number)
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"{key}: cannot write {out}: {existing} is not a writable folder; choose another directory")
    if (out / RUN_FILE).exists() or (out / TRIALS_JSONL).exists():
        job_config = config.copy()
        with open_dict(job_config):
            del job_config["hydra"]  # as the job sees its configuration
        check_folder(out, run_meta(job_config, experiment, []), config.resume)


def job_folder(config: DictConfig, number: int | None) -> tuple[Path, str]:
    """The output folder of a run (``number`` None) or of job ``number`` of a sweep, and the
    setting that places it."""
    if number is None:
        return Path(str(config.hydra.run.dir)), "hydra.run.dir"
    with open_dict(config):  # Hydra sets hydra.job.num when it launches; the folder name may use it
        config.hydra.job.num = number
    return Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir), "hydra.sweep.dir"


def sweep_folders(config: DictConfig) -> list[Path] | None:
    """The folder of every job of a sweep (None for a sweeper that picks jobs as it goes)."""
    jobs = sweep_jobs(config)
    if jobs is None:
        return None
    loader = GlobalHydra.instance().config_loader()
    return [job_folder(loader.load_sweep_config(config, overrides), n)[0] for n, overrides in enumerate(jobs)]


@contextmanager
def _rejecting() -> Iterator[None]:
    try:
        yield
    except USER_ERRORS as error:
        raise LaunchRejected(describe(error)) from None


def sweep_jobs(config: DictConfig) -> list[list[str]] | None:
    """The override lists of every job Hydra's basic sweeper will launch, expanded as it does;
    None for other sweepers."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    sweeper = config.hydra.sweeper
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
    return [list(job) for job in BasicSweeper.split_arguments(overrides, None)[0]]
