"""What ran where: package versions, the git commit of this checkout, the machine."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "bench",
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "scikit-optimize",
    "gpytorch",
    "botorch",
    "optuna",
    "hydra-core",
    "omegaconf",
)
SOURCE_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def provenance() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "packages": versions,
        "git": git_state(SOURCE_ROOT),
        **({"slurm": slurm_job()} if "SLURM_JOB_ID" in os.environ else {}),
    }


SLURM = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "restart_count": "SLURM_RESTART_COUNT",
    "node": "SLURMD_NODENAME",
    "partition": "SLURM_JOB_PARTITION",
}


def slurm_job() -> dict[str, str | None]:
    """The Slurm job this process runs in (a requeued job keeps its id; its restart count grows)."""
    return {name: os.environ.get(variable) for name, variable in SLURM.items()}


def git_state(root: Path) -> dict[str, Any] | None:
    """Commit and dirtiness of the checkout holding the code, or None outside a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}
