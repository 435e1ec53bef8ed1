"""What the benchmarks share: the configuration ``python -m bench`` would compose, a hypergradient
method's experiment, progress lines on a terminal, and records written as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import DictConfig, open_dict

from bench.build import Experiment, build
from bench.config import CONFIG_DIR
from bench.errors import BenchError
from bench.files import write_text
from bench.protocols import HYPERGRADIENT_HYPERPARAMETERS


def compose_config(overrides: list[str]) -> DictConfig:
    """The configuration ``python -m bench OVERRIDES`` composes (no run, no files)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=overrides)


def hypergradient_experiment(overrides: list[str]) -> Experiment:
    """A hypergradient method's experiment, the task's hyperparameters that the method cannot tune
    (its class's ``TUNES``; by default ``HYPERGRADIENT_HYPERPARAMETERS``) fixed at their defaults:
    the space the method accepts."""
    cfg = compose_config(overrides)
    tunes = getattr(get_class(cfg.method._target_), "TUNES", HYPERGRADIENT_HYPERPARAMETERS)
    with open_dict(cfg):
        for name, entry in cfg.task.space.items():
            if name not in tunes and entry.get("fixed") is None:
                entry.fixed = entry.default
    return build(cfg)


def whole_numbers(text: str, option: str, least: int = 1) -> list[int]:
    """``"100,10,100"`` -> ``[10, 100]``; a one-line error naming ``option`` unless each is a whole
    number of at least ``least``."""
    try:
        values = sorted({int(s) for s in text.split(",")})
    except ValueError:
        values = []
    if not values or values[0] < least:
        raise BenchError(f"{option} {text!r}: give whole numbers of at least {least}, comma-separated")
    return values


def at_least(least: int = 1, **options: int) -> None:
    """A one-line error for the first option below ``least``: ``at_least(repeats=0)`` names ``--repeats 0``."""
    for name, value in options.items():
        if value < least:
            raise BenchError(f"--{name.replace('_', '-')} {value}: give a whole number of at least {least}")


def progress(line: str) -> None:
    """Where a measurement is, on a terminal only (errors stay the one line on stderr)."""
    if sys.stderr.isatty():
        print(line, file=sys.stderr, flush=True)


def fail(message: str) -> int:
    """A user error: one line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def write_records(records: list[dict], path: Path | None) -> int:
    if path:
        write_text(path, json.dumps(records, indent=2) + "\n")
        print(f"\nrecords: {path}")
    return 0
