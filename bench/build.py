"""From a composed configuration to a validated experiment: its task, its method, its budget and
settings, and what its ``run.json`` records.

Every check of user input that needs no run happens here, so the pre-flight check
(``bench.preflight``) can build every job of a sweep before anything starts: a bad value fails at
once, in one line (``BenchError``), and leaves nothing on disk. The task and method are named by
``_target_`` in their config and built by Hydra; their options are checked against the
constructor's signature first, so an unknown option is named with the allowed ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from inspect import Parameter, signature
from typing import Any

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from bench.budget import Budget
from bench.errors import BenchError
from bench.fidelity import check_fidelity, check_untimed
from bench.identity import digest, experiment_identity
from bench.numerics import mode, numerics
from bench.protocols import FidelityMethod, Method, Task, method_kind, missing_members
from bench.provenance import provenance
from bench.runner import RunSettings, check_differentiable
from bench.space import SearchSpace


@dataclass
class Experiment:
    """Everything one run needs, built and validated from its configuration."""

    task: Task
    method: Method
    task_name: str
    method_name: str
    budget: Budget
    settings: RunSettings
    seed: int
    device: str


def build(cfg: DictConfig, job_number: int | None = None) -> Experiment:
    """Validate ``cfg`` and build its task and method; every error is a one-line ``BenchError``.
    ``job_number`` (a sweep's ``hydra.job.num``) spreads ``device=auto`` over the visible GPUs."""
    budget = Budget.from_config(OmegaConf.to_container(cfg.budget))
    settings = RunSettings(
        batch_size=cfg.batch_size,
        incumbent_repeats=cfg.incumbent_repeats,
        trial_timeout_s=cfg.get("trial_timeout_s"),
        vectorise=cfg.vectorise,
    )
    mode()  # BENCH_NUMERICS names a known mode
    if cfg.torch_threads < 1:
        raise BenchError(f"torch_threads={cfg.torch_threads}: must be a positive whole number")
    device = resolve_device(str(cfg.device), job_number)
    if settings.trial_timeout_s is not None and device.startswith("cuda"):
        raise BenchError(
            f"trial_timeout_s={settings.trial_timeout_s} with device={device}: a timed trial runs in a forked "
            "worker, and CUDA cannot be used after a fork; use device=cpu, or trial_timeout_s=null"
        )
    task_options = OmegaConf.to_container(cfg.task, resolve=True)
    space = SearchSpace.from_config(task_options.get("space"), where="task.space")
    task = _component(task_options, "task", space=space, device=device)
    if missing := missing_members(task, Task):  # the runner would treat it as a lesser kind of task, silently
        raise BenchError(f"task._target_={task_options['_target_']}: lacks {', '.join(missing)} of the Task protocol")
    # the task's space: a task may expand an entry into groups (task.l2_granularity), which every method sees alike
    method = _component(OmegaConf.to_container(cfg.method, resolve=True), "method", space=task.space, seed=cfg.seed)
    check_differentiable(task, method)
    if isinstance(method, FidelityMethod):
        check_fidelity(task, str(cfg.method.get("name")))
        check_untimed(settings.trial_timeout_s, f"method={cfg.method.get('name')}")
    return Experiment(
        task=task,
        method=method,
        task_name=str(task_options.get("name")),
        method_name=str(cfg.method.get("name")),
        budget=budget,
        settings=settings,
        seed=cfg.seed,
        device=device,
    )


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
        "pass_criteria": dict(task.pass_criteria),
        "budget": experiment.budget.as_dict(),
        "device": experiment.device,
        "torch_threads": cfg.torch_threads,
        "numerics": numerics(experiment.device),  # code paths, processor, probe: what a resume must match
        "space": repr(task.space),
        "space_groups": {name: list(members) for name, members in task.space.groups.items()},
        "dimensions": len(task.space),  # hyperparameters tuned (every group counted)
        "method_kind": method_kind(experiment.method),
        "default_config": task.space.default,
        "task_info": task_info,
        "overrides": overrides,
        "config": config,
        "experiment": {"id": digest(identity), "identity": identity},
        "provenance": provenance(),
    }


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
