"""Helpers the tests import: real Hydra composition and real command-line runs."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from bench.build import Experiment, build
from bench.config import CONFIG_DIR
from bench.preflight import sweep_jobs
from tasks.mnist_data import FASHION_DIR, has_idx_files

ROOT = Path(__file__).resolve().parent.parent
TINY = [  # a bikeshare run that takes well under a second per trial
    "task.space.iterations.low=10",
    "task.space.iterations.high=60",
    "task.space.iterations.default=20",
]
TINY_FIXED = [  # the same, with the discrete hyperparameters fixed: the space a hypergradient method tunes
    *TINY,
    "+task.space.iterations.fixed=20",
    "+task.space.hidden_nodes.fixed=2",
]
FASHION_MNIST_MISSING = (
    f"Fashion-MNIST is not installed ({FASHION_DIR} lacks its IDX files): as root, scripts/install-data "
    "installs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
)
"""Why a test that builds a preset's jobs on Fashion-MNIST (as its reference results ran) is skipped here."""


def _reads_installed_fashion_mnist(job: DictConfig) -> bool:
    """Whether a job's task reads Debian's Fashion-MNIST (``task.dataset=fashion_mnist``, no ``data_dir``)."""
    task = job.get("task") or {}
    return task.get("dataset") == "fashion_mnist" and not task.get("data_dir")


def bench_config(*overrides: str) -> DictConfig:
    """The configuration ``python -m bench OVERRIDES`` composes (no Hydra run, no files)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides))


_BUILT: dict[str, Experiment] = {}


@dataclass(frozen=True)
class Job:
    """One job a command would launch: its overrides and seed."""

    overrides: tuple[str, ...]
    seed: int


def command_jobs(overrides: Sequence[str], multirun: bool = False) -> tuple[list[Job], list[Experiment]]:
    """What ``python -m bench [-m] OVERRIDES`` would launch, without launching it: every job, and
    one experiment built (as the pre-flight check builds it) per job that differs in more than its
    seed (building it under another seed checks nothing more). Shared between calls. Skips the
    calling test, with ``FASHION_MNIST_MISSING``, where a job reads Fashion-MNIST and it is not installed."""
    return _command_jobs(tuple(overrides), bool(multirun))


@functools.cache
def _command_jobs(overrides: tuple[str, ...], multirun: bool) -> tuple[list[Job], list[Experiment]]:
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]  # compose() takes no sweep
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        config = compose("config", overrides=fixed, return_hydra_config=True)
        if multirun or config.hydra.mode == RunMode.MULTIRUN:
            with open_dict(config):
                config.hydra.overrides.task = list(overrides)  # as Hydra's multirun records them
            lists = [tuple(job) for job in sweep_jobs(config)]
        else:
            lists = [tuple(fixed)]
        distinct = {tuple(o for o in job if not o.startswith("seed=")): job for job in lists}
        loader = GlobalHydra.instance().config_loader()
        configs = [loader.load_sweep_config(config, list(job)) for job in distinct.values()]
    if not has_idx_files(FASHION_DIR) and any(_reads_installed_fashion_mnist(job) for job in configs):
        pytest.skip(FASHION_MNIST_MISSING)
    experiments = {}
    for job in configs:
        key = OmegaConf.to_yaml({k: v for k, v in job.items() if k not in ("seed", "hydra")})
        if key not in _BUILT:
            _BUILT[key] = build(job)
        experiments[key] = _BUILT[key]
    seeds = [int(next((o.split("=", 1)[1] for o in job if o.startswith("seed=")), config.seed)) for job in lists]
    return [Job(job, seed) for job, seed in zip(lists, seeds, strict=True)], list(experiments.values())


def seed_table(**columns: Sequence[float]) -> pd.DataFrame:
    """A score matrix as the report builds one: one row per seed (0, 1, ...), one column per method."""
    return pd.DataFrame(columns, index=pd.RangeIndex(len(next(iter(columns.values()))), name="seed"))


def run_bench(*arguments: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, inherit=True):
    """``python -m bench ARGUMENTS`` in a subprocess, as a user runs it: in this process's
    environment updated with ``env`` (``inherit=False``: in ``env`` alone)."""
    return run_module("bench", *arguments, cwd=cwd, env=env, timeout=timeout, inherit=inherit)


def run_module(
    module: str, *arguments: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, inherit=True
):
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**(os.environ if inherit else {}), "PYTHONPATH": str(ROOT), **(env or {})},
    )
