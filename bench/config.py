"""The typed schema of ``conf/config.yaml``, registered in Hydra's ConfigStore as ``bench_schema``.

The core settings are typed here, so a wrong type (``seed=abc``, ``device=gpu``) fails when Hydra
composes the configuration, before anything runs. ``task`` and ``method`` differ per family; their
search space is checked by ``SearchSpace.from_config`` and their options by the constructor's
signature when the pre-flight check builds every job (``bench.preflight``), also before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional  # noqa: UP035 - OmegaConf needs typing generics

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
"""``conf/`` beside the packages (a checkout or an install): a file path, never ``pkg://conf``."""


def group_options(group: str) -> list[str]:
    """The options of a config group, those in its subfolders as ``sub/name`` (``fair_baseline_text/rnn_drmad``)."""
    folder = Path(CONFIG_DIR) / group
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))


@dataclass
class BudgetConfig:
    evaluations: Optional[int] = None  # noqa: UP045
    train_steps: Optional[int] = None  # noqa: UP045
    seconds: Optional[float] = None  # noqa: UP045


@dataclass
class Config:
    task: Dict[str, Any] = MISSING  # noqa: UP006
    method: Dict[str, Any] = MISSING  # noqa: UP006
    seed: int = 0
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    batch_size: int = 1
    incumbent_repeats: int = 3
    device: str = "auto"  # auto | cpu | cuda | cuda:N, checked by bench.build.resolve_device
    torch_threads: int = 1
    progress: bool = True
    trial_timeout_s: Optional[float] = None  # noqa: UP045  # a trial running longer fails (bench.runner)
    resume: bool = False  # continue the unfinished run(s) in the output directory (bench.store)
    unsupported: str = "refuse"  # refuse | record: a sweep job whose method cannot tune its task (bench.preflight)
    vectorise: bool = True  # a batch (batch_size > 1) of a task that can: one vectorised training
    paper: Optional[dict[str, Any]] = None  # noqa: UP045  # a paper table the sweep's report adds (conf/paper/)


def register() -> None:
    ConfigStore.instance().store(name="bench_schema", node=Config)


register()  # on import: every composition of conf/config.yaml (the app, pre-flight, tests, benchmarks) needs it
