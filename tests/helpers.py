"""Helpers the tests import: real Hydra composition and real command-line runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bench.config import CONFIG_DIR

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


def bench_config(*overrides: str) -> DictConfig:
    """The configuration ``python -m bench OVERRIDES`` composes (no Hydra run, no files)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def run_bench(*arguments: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    """``python -m bench ARGUMENTS`` in a subprocess, as a user runs it."""
    return run_module("bench", *arguments, cwd=cwd, env=env, timeout=timeout)


def run_module(module: str, *arguments: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


TIMING = ("cost_seconds", "ask_seconds", "cumulative_seconds", "metrics.hypergradient_seconds", "run_id")
"""Trial-table columns that differ between two runs of one command: clocks and the run id."""


def comparable(trials):
    """A trial table without its clock columns and run id, rows in trial order: what two runs of
    the same command (or a resumed run and an uninterrupted one) must share exactly."""
    return trials.drop(columns=[c for c in TIMING if c in trials]).sort_values("trial").reset_index(drop=True)
