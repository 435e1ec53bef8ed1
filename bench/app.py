"""The Hydra application: config -> task and method -> runner -> run directory.

``job`` is the Hydra task function (one run). Two callbacks, enabled in ``conf/config.yaml``:

- ``Preflight`` builds every job of a run or sweep before Hydra creates any directory or launches
  anything, so bad input fails at once, with one line, and leaves nothing on disk; it also fills
  the data cache once, before parallel workers start.
- ``SweepReport`` prints the comparison table when a sweep ends and saves it as ``report.md``.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from inspect import Parameter, signature
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from bench import config as schema
from bench import files
from bench.budget import Budget
from bench.errors import USER_ERRORS, BenchError, describe
from bench.identity import digest, experiment_identity
from bench.protocols import Method, Task
from bench.provenance import provenance
from bench.runner import run
from bench.space import SearchSpace
from bench.store import (
    RUN_FILE,
    TRIALS_JSONL,
    RunStore,
    check_same_experiment,
    find_runs,
    load_runs,
    read_meta,
    recorded_trials,
)

log = logging.getLogger("bench")
schema.register()
CONFIG_DIR = schema.CONFIG_DIR


@dataclass
class Experiment:
    """Everything one run needs, built and validated from its configuration."""

    task: Task
    method: Method
    task_name: str
    method_name: str
    budget: Budget
    seed: int
    device: str
    batch_size: int
    incumbent_repeats: int
    trial_timeout_s: float | None


def build(cfg: DictConfig, job_number: int | None = None) -> Experiment:
    """Validate ``cfg`` and build its task and method; every error is a one-line ``BenchError``.
    ``job_number`` (a sweep's ``hydra.job.num``) spreads ``device=auto`` over the visible GPUs."""
    budget = Budget.from_config(OmegaConf.to_container(cfg.budget))
    for key, least in (("batch_size", 1), ("incumbent_repeats", 0), ("torch_threads", 1)):
        if cfg[key] < least:
            raise BenchError(f"{key}={cfg[key]}: must be at least {least}")
    timeout = cfg.get("trial_timeout_s")
    if timeout is not None and not timeout > 0:
        raise BenchError(f"trial_timeout_s={timeout}: must be a positive number of seconds, or null for no limit")
    device = resolve_device(str(cfg.device), job_number)
    if timeout is not None and device.startswith("cuda"):
        raise BenchError(
            f"trial_timeout_s={timeout} with device={device}: a timed trial runs in a forked worker, and CUDA "
            "cannot be used after a fork; use device=cpu, or trial_timeout_s=null"
        )
    task_options = OmegaConf.to_container(cfg.task, resolve=True)
    space = SearchSpace.from_config(task_options.get("space"), where="task.space")
    task = _component(task_options, "task", space=space, device=device)
    method = _component(OmegaConf.to_container(cfg.method, resolve=True), "method", space=space, seed=cfg.seed)
    return Experiment(
        task=task,
        method=method,
        task_name=str(task_options.get("name")),
        method_name=str(cfg.method.get("name")),
        budget=budget,
        seed=cfg.seed,
        device=device,
        batch_size=cfg.batch_size,
        incumbent_repeats=cfg.incumbent_repeats,
        trial_timeout_s=timeout,
    )


def resolve_device(device: str, job_number: int | None = None) -> str:
    """``auto`` -> a visible GPU, else ``cpu``; ``cuda`` or ``cuda:N`` must name a visible GPU.

    With ``auto``, job ``k`` of a sweep gets ``cuda:(k mod the number of GPUs)``, so parallel jobs
    on one machine spread over its GPUs (one GPU per job, as the launcher presets ask).
    """
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto":
        if not count:
            return "cpu"
        return f"cuda:{(job_number or 0) % count}"
    if device == "cpu":
        return device
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise BenchError(f"device={device!r}: allowed: auto, cpu, cuda, cuda:N")
    if not count:
        raise BenchError(f"device={device}: no CUDA device is visible on this machine; use device=auto or device=cpu")
    if index and int(index) >= count:
        raise BenchError(f"device={device}: this machine shows {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return device


def _component(options: dict[str, Any], group: str, **injected: Any) -> Any:
    """Instantiate a task or method from its config; unknown options are named, with the allowed."""
    options = {k: v for k, v in options.items() if k not in ("name", "space")}
    target = options.get("_target_")
    if not target:
        raise BenchError(f"{group}: the config names no _target_ class")
    try:
        cls = hydra.utils.get_class(target)
    except Exception as error:  # noqa: BLE001 - any import failure is a bad _target_
        raise BenchError(f"{group}._target_={target}: cannot import it ({error})") from None
    accepted = _options_of(cls)
    if accepted is not None:
        allowed = sorted(accepted - set(injected))
        for key in options:
            if key != "_target_" and key not in allowed:
                raise BenchError(f"{group}.{key}: not an option of {target}; allowed: {', '.join(allowed)}")
    try:
        return hydra.utils.instantiate(options, **injected, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, BenchError):
            raise error.__cause__ from None
        raise


def _options_of(cls: type) -> set[str] | None:
    """The keyword options ``cls(...)`` accepts, following ``**options`` up to the base classes
    that receive them; None when some ``__init__`` accepts anything."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = signature(init).parameters
        names |= {n for n, p in parameters.items() if n != "self" and p.kind is not Parameter.VAR_KEYWORD}
        if not any(p.kind is Parameter.VAR_KEYWORD for p in parameters.values()):
            return names
    return None


# ------------------------------------------------------------------------------------- the job
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def job(cfg: DictConfig) -> float | None:
    """One run: tune, record every trial, re-evaluate the incumbent, summarise in ``run.json``."""
    torch.set_num_threads(cfg.torch_threads)
    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    job_number = OmegaConf.select(hydra_cfg, "job.num", default=None, throw_on_missing=False)
    try:
        experiment = build(cfg, job_number)
        meta = run_meta(cfg, experiment, list(hydra_cfg.overrides.task))
        recorded = check_output(out, meta, cfg.resume)
    except BenchError:
        if not (out / RUN_FILE).exists():
            _discard(out, hydra_cfg.job.name)
        raise
    if recorded is not None and recorded.get("status") == "completed":
        log.info("%s: completed before, kept as it is -> %s", recorded["run_id"], out)
        return (recorded.get("incumbent") or {}).get("objective")
    task = experiment.task
    if recorded is None:
        store, history = RunStore.create(out, meta, task.test_metric), []
    else:
        store, history = RunStore.resume(out, meta, task.test_metric)
    run_id = store.meta["run_id"]
    log.info(
        "%s: %s on %s, seed %d, budget %s%s",
        run_id,
        experiment.method_name,
        experiment.task_name,
        experiment.seed,
        _budget_text(experiment.budget),
        f", resumed after {len(history)} trial(s)" if recorded is not None else "",
    )
    try:
        result = run(
            task,
            experiment.method,
            experiment.budget,
            experiment.seed,
            batch_size=experiment.batch_size,
            incumbent_repeats=experiment.incumbent_repeats,
            trial_timeout_s=experiment.trial_timeout_s,
            vectorise=cfg.vectorise,
            history=history,
            on_trial=store.append,
            progress=cfg.progress,
            label=f"{experiment.method_name} s{experiment.seed}",
        )
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
    if result.all_failed:
        store.finish(result, "failed", error=result.failure_summary())
        message = f"{run_id}: {result.failure_summary()} (trials: {out / TRIALS_JSONL})"
        if hydra_cfg.mode == RunMode.MULTIRUN:  # the sweep goes on; its report ends with this line
            log.error("%s", message)
            return None
        raise RunFailed(message)
    summary = store.finish(result, "completed")
    log.info("%s", describe_run(summary, out))
    return None if result.incumbent is None else result.incumbent.evaluation.objective


def run_meta(cfg: DictConfig, experiment: Experiment, overrides: list[str]) -> dict[str, Any]:
    """What ``run.json`` records of a new run (its id is new; a resumed run keeps its own)."""
    task = experiment.task
    run_id = f"{experiment.task_name}-{experiment.method_name}-s{experiment.seed}-{uuid.uuid4().hex[:8]}"
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    task_info = task.describe()
    identity = experiment_identity(config, provenance()["packages"], task_info.get("sha256"))
    return {
        "run_id": run_id,
        "task": experiment.task_name,
        "method": experiment.method_name,
        "seed": experiment.seed,
        "test_metric": task.test_metric,
        "budget": experiment.budget.as_dict(),
        "device": experiment.device,
        "torch_threads": cfg.torch_threads,
        "space": repr(task.space),
        "default_config": task.space.default,
        "task_info": task_info,
        "overrides": overrides,
        "config": config,
        "experiment": {"id": digest(identity), "identity": identity},
        "provenance": provenance(),
    }


def check_output(out: Path, meta: Mapping[str, Any], resume: bool) -> dict[str, Any] | None:
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


def describe_run(summary: Mapping[str, Any], out: Path) -> str:
    incumbent, final = summary.get("incumbent"), summary.get("final") or {}
    if incumbent is None:
        return f"{summary['run_id']}: no trial succeeded ({summary['n_trials']} trials) -> {out}"
    criterion = final.get("metrics", {}).get("rubric")
    return (
        f"{summary['run_id']}: best validation {incumbent['objective']:.4g} at trial {incumbent['trial']} "
        f"of {summary['n_trials']} ({summary['stop_reason']}); retrained: validation "
        f"{final.get('objective', float('nan')):.4g}, test {summary['test_metric']} "
        f"{final.get('test_metric', float('nan')):.4g}"
        + ("" if criterion is None else f", rubric {'met' if criterion >= 0.5 else 'not met'}")
        + f"; {summary['seconds']:.1f} s -> {out}"
    )


def _budget_text(budget: Budget) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in budget.as_dict().items() if v is not None)


def _discard(out: Path, job_name: str) -> None:
    """Remove what Hydra wrote for a job that never started, so no half run is left behind."""
    shutil.rmtree(out / ".hydra", ignore_errors=True)
    (out / f"{job_name}.log").unlink(missing_ok=True)
    with suppress(OSError):
        out.rmdir()


# ------------------------------------------------------------------------------------- callbacks
class LaunchRejected(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt
    """Carries a pre-flight user error out of Hydra, which turns any ``Exception`` raised by a
    callback into a warning and goes on. ``bench.cli`` prints ``message`` and exits with status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunFailed(BaseException):  # noqa: N818 - a signal, like LaunchRejected
    """A run ended without a single successful trial: recorded as ``failed`` and reported by
    ``bench.cli`` in one line with exit status 2 (a ``BaseException``, so Hydra does not add its
    own "Error executing job" line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Preflight(Callback):
    """Build every job before Hydra creates a directory or launches anything."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _rejecting():
            _check_job(config, None)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _rejecting():
            jobs = sweep_jobs(config)
            if jobs is None:  # a sweeper that picks jobs as it goes: check the base configuration
                build(config)
                return
            loader = GlobalHydra.instance().config_loader()
            for number, overrides in enumerate(jobs):
                _check_job(loader.load_sweep_config(config, overrides), number)
        log.info("pre-flight: %d job configuration(s) checked", len(jobs))


def _check_job(config: DictConfig, number: int | None) -> None:
    """Build one job and check its output folder (``check_output``) as the job itself will."""
    experiment = build(config, number)
    if number is None:
        out, key = Path(str(config.hydra.run.dir)), "hydra.run.dir"
    else:  # Hydra sets hydra.job.num when it launches; the folder name may use it
        with open_dict(config):
            config.hydra.job.num = number
        out, key = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir), "hydra.sweep.dir"
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"{key}: cannot write {out}: {existing} is not a writable folder; choose another directory")
    if (out / RUN_FILE).exists() or (out / TRIALS_JSONL).exists():
        job_config = config.copy()
        with open_dict(job_config):
            del job_config["hydra"]  # as the job sees its configuration
        check_output(out, run_meta(job_config, experiment, []), config.resume)


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


class SweepReport(Callback):
    """Print the comparison table of a finished sweep and save it as ``report.md`` beside it."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        directory = Path(config.hydra.sweep.dir)
        runs, trials = load_runs(directory)
        failed = [meta for meta in map(read_meta, find_runs(directory)) if meta.get("status") == "failed"]
        if not runs.empty:
            self.report(config, directory, runs, trials)
        else:
            log.warning("no completed runs under %s", directory)
        if failed:
            first = failed[0]
            raise RunFailed(f"{len(failed)} run(s) of the sweep failed; {first['run_id']}: {first.get('error')}")

    @staticmethod
    def report(config: DictConfig, directory: Path, runs: Any, trials: Any) -> None:
        # imported here: the statistics (scipy.stats) would add a second to every run's start
        from bench.papers import paper_table
        from bench.report import CAPTION, render, summarise

        text = render(summarise(runs)) + f"\n\n{len(runs)} runs under {directory}. {CAPTION}\n"
        if config.get("paper"):
            text += "\n" + paper_table(config.paper, runs, trials) + "\n"
        files.write_text(directory / "report.md", text)
        paper = f" --paper {config.paper}" if config.get("paper") else ""
        print(f"\n{text}\nReproduce this table: python -m bench.report {directory}{paper}")
