"""The Hydra application: config -> task and method -> runner -> run directory.

``job`` is the Hydra task function (one run). Two callbacks, enabled in ``conf/config.yaml``:

- ``Preflight`` builds every job of a run or sweep before Hydra creates any directory or launches
  anything, so bad input fails at once, with one line, and leaves nothing on disk; it also fills
  the data cache once, before parallel workers start.
- ``SweepReport`` prints the comparison table when a sweep ends and saves it as ``report.md``.
"""

from __future__ import annotations

import logging
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
from omegaconf import DictConfig, OmegaConf

from bench import config as schema
from bench.budget import Budget
from bench.errors import USER_ERRORS, BenchError, describe
from bench.identity import digest, experiment_identity
from bench.papers import paper_table
from bench.protocols import Method, Task
from bench.provenance import provenance
from bench.report import CAPTION, render, summarise
from bench.runner import run
from bench.space import SearchSpace
from bench.store import RunStore, load_runs

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


def build(cfg: DictConfig) -> Experiment:
    """Validate ``cfg`` and build its task and method; every error is a one-line ``BenchError``."""
    budget = Budget.from_config(OmegaConf.to_container(cfg.budget))
    for key, least in (("batch_size", 1), ("incumbent_repeats", 0), ("torch_threads", 1)):
        if cfg[key] < least:
            raise BenchError(f"{key}={cfg[key]}: must be at least {least}")
    device = resolve_device(cfg.device.value if hasattr(cfg.device, "value") else str(cfg.device))
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
    )


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchError("device=cuda: no CUDA device is visible on this machine; use device=auto or device=cpu")
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
    try:
        experiment = build(cfg)
    except BenchError:
        _discard(out, hydra_cfg.job.name)
        raise
    task = experiment.task
    run_id = f"{experiment.task_name}-{experiment.method_name}-s{experiment.seed}-{uuid.uuid4().hex[:8]}"
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    task_info = task.describe()
    identity = experiment_identity(config, provenance()["packages"], task_info.get("sha256"))
    meta = {
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
        "overrides": list(hydra_cfg.overrides.task),
        "config": config,
        "experiment": {"id": digest(identity), "identity": identity},
        "provenance": provenance(),
    }
    store = RunStore.create(out, meta, task.test_metric)
    log.info(
        "%s: %s on %s, seed %d, budget %s",
        run_id,
        experiment.method_name,
        experiment.task_name,
        experiment.seed,
        _budget_text(experiment.budget),
    )
    try:
        result = run(
            task,
            experiment.method,
            experiment.budget,
            experiment.seed,
            batch_size=experiment.batch_size,
            incumbent_repeats=experiment.incumbent_repeats,
            on_trial=store.append,
            progress=cfg.progress,
            label=f"{experiment.method_name} s{experiment.seed}",
        )
    except KeyboardInterrupt:
        store.finish(None, "interrupted")
        raise
    except BaseException as error:
        store.finish(None, "failed", error=f"{type(error).__name__}: {error}")
        raise
    summary = store.finish(result, "completed")
    log.info("%s", describe_run(summary, out))
    return None if result.incumbent is None else result.incumbent.evaluation.objective


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


class Preflight(Callback):
    """Build every job before Hydra creates a directory or launches anything."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _rejecting():
            build(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _rejecting():
            jobs = sweep_jobs(config)
            if jobs is None:  # a sweeper that picks jobs as it goes: check the base configuration
                build(config)
                return
            loader = GlobalHydra.instance().config_loader()
            for overrides in jobs:
                build(loader.load_sweep_config(config, overrides))
        log.info("pre-flight: %d job configuration(s) checked", len(jobs))


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
        if runs.empty:
            log.warning("no completed runs under %s", directory)
            return
        text = render(summarise(runs)) + f"\n\n{len(runs)} runs under {directory}. {CAPTION}\n"
        if config.get("paper"):
            text += "\n" + paper_table(config.paper, runs, trials) + "\n"
        (directory / "report.md").write_text(text, encoding="utf-8")
        paper = f" --paper {config.paper}" if config.get("paper") else ""
        print(f"\n{text}\nReproduce this table: python -m bench.report {directory}{paper}")
