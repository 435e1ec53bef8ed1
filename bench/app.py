"""The Hydra application: one run from its configuration to its folder.

``job`` is the Hydra task function: it builds the experiment (``bench.build``), checks that it may
use its output folder (``bench.store.check_folder``: a new run needs an empty folder, a resume the
same experiment), opens the run's store, tunes (``bench.runner.run``) and closes the store with the
run's status. Two callbacks, named in ``conf/config.yaml``, run around it: ``bench.preflight``
before a run or sweep starts, and ``bench.report.callback`` after a sweep ends.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from bench import config as schema
from bench.budget import Budget
from bench.build import Experiment, build, run_meta
from bench.errors import BenchError, RunFailed, Unsupported
from bench.fidelity import PAUSED_DIR, PausedTrainings
from bench.preflight import records_unsupported
from bench.records import REFUSED_FILE, RUN_FILE, TRIALS_JSONL, RunResult, Trial
from bench.runner import run
from bench.store import RunStore, check_folder, discard_unstarted, write_json

log = logging.getLogger("bench")


@hydra.main(version_base="1.3", config_path=schema.CONFIG_DIR, config_name="config")
def job(cfg: DictConfig) -> float | None:
    """One run: tune, record every trial, re-evaluate the incumbent, summarise in ``run.json``."""
    torch.set_num_threads(cfg.torch_threads)
    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    job_number = OmegaConf.select(hydra_cfg, "job.num", default=None, throw_on_missing=False)
    (out / REFUSED_FILE).unlink(missing_ok=True)  # refused before: refused again below, or it runs now
    try:
        experiment = build(cfg, job_number)
        meta = run_meta(cfg, experiment, list(hydra_cfg.overrides.task))
        recorded = check_folder(out, meta, cfg.resume)
    except BenchError as error:
        ran = (out / RUN_FILE).exists()
        recording = hydra_cfg.mode == RunMode.MULTIRUN and records_unsupported(cfg)
        if isinstance(error, Unsupported) and recording and not ran:
            record_refused(out, cfg, list(hydra_cfg.overrides.task), error)
            return None
        if not ran:
            discard_unstarted(out, hydra_cfg.job.name)
        raise
    if recorded is not None and recorded.get("status") == "completed":
        log.info("%s: completed before, kept as it is -> %s", recorded["run_id"], out)
        return (recorded.get("incumbent") or {}).get("objective")
    if recorded is None:
        store, history = RunStore.create(out, meta, experiment.task.test_metric), []
    else:
        try:
            store, history = RunStore.resume(out, meta, experiment.task.test_metric)
        except BenchError as refused:  # refused in the job (e.g. numerics that would not replay it): one line
            raise RunFailed(str(refused)) from None
    log.info(
        "%s: %s on %s, seed %d, budget %s%s",
        store.meta["run_id"],
        experiment.method_name,
        experiment.task_name,
        experiment.seed,
        _budget_text(experiment.budget),
        f", resumed after {len(history)} trial(s)" if recorded is not None else "",
    )
    result = _tune(experiment, store, history, progress=cfg.progress)
    if result.all_failed:
        store.finish(result, "failed", error=result.failure_summary())
        message = f"{store.meta['run_id']}: {result.failure_summary()} (trials: {out / TRIALS_JSONL})"
        if hydra_cfg.mode == RunMode.MULTIRUN:  # the sweep goes on; its report ends with this line
            log.error("%s", message)
            return None
        raise RunFailed(message)
    summary = store.finish(result, "completed")
    log.info("%s", describe_run(summary, out))
    return None if result.incumbent is None else result.incumbent.evaluation.objective


def record_refused(out: Path, cfg: DictConfig, overrides: list[str], refused: Unsupported) -> None:
    """Record a sweep job whose method cannot tune its task (``unsupported=record``): ``refused.json``
    in its folder, read by the report, which lists it beside the table."""
    record = {
        "status": "refused",
        "task": str(cfg.task.get("name")),
        "method": str(cfg.method.get("name")),
        "seed": cfg.seed,
        "overrides": overrides,
        "reason": str(refused),
    }
    write_json(out / REFUSED_FILE, record)
    log.warning("%s, seed %d: unsupported, recorded as refused -> %s: %s", record["method"], cfg.seed, out, refused)


def _tune(experiment: Experiment, store: RunStore, history: list[Trial], progress: bool) -> RunResult:
    """The runner's loop, each trial appended to the store; a run that stops on an exception is
    closed as ``interrupted`` or ``failed`` (a resume refused while replaying is put back as it was)."""
    paused = PausedTrainings(store.directory / PAUSED_DIR)  # a multi-fidelity method's, kept for a resume
    try:
        result = run(
            experiment.task,
            experiment.method,
            experiment.budget,
            experiment.seed,
            experiment.settings,
            history=history,
            on_trial=store.append,
            progress=progress,
            label=f"{experiment.method_name} s{experiment.seed}",
            paused=paused,
        )
        paused.clear()  # the run is over: nothing left to continue
        return result
    except KeyboardInterrupt:
        store.finish(None, "interrupted")
        raise
    except BenchError as error:
        if store.recorded is not None and not store.appended:  # a resume refused while replaying its record
            store.undo_resume()
            raise RunFailed(str(error)) from None
        store.finish(None, "failed", error=f"{type(error).__name__}: {error}")
        raise
    except BaseException as error:
        store.finish(None, "failed", error=f"{type(error).__name__}: {error}")
        raise


def describe_run(summary: Mapping[str, Any], out: Path) -> str:
    """One log line for a finished run: its best and retrained scores and its pass criteria."""
    incumbent, final = summary.get("incumbent"), summary.get("final") or {}
    if incumbent is None:
        return f"{summary['run_id']}: no trial succeeded ({summary['n_trials']} trials) -> {out}"
    criteria = [
        f"{name} {'met' if rate >= 0.5 else 'not met'}"
        for name in summary.get("pass_criteria") or {}
        if (rate := final.get("metrics", {}).get(name)) is not None
    ]
    return (
        f"{summary['run_id']}: best validation {incumbent['objective']:.4g} at trial {incumbent['trial']} "
        f"of {summary['n_trials']} ({summary['stop_reason']}); retrained: validation "
        f"{final.get('objective', float('nan')):.4g}, test {summary['test_metric']} "
        f"{final.get('test_metric', float('nan')):.4g}"
        + "".join(f", {criterion}" for criterion in criteria)
        + f"; {summary['seconds']:.1f} s -> {out}"
    )


def _budget_text(budget: Budget) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in budget.as_dict().items() if v is not None)
