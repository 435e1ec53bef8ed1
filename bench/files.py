"""Writing files so that a crash never leaves half of one: write a temporary file beside the
target, flush and fsync it, rename it over the target, fsync the folder. A reader (or a resumed
run) sees the old file or the new one, never a mixture. Every file the suite writes goes through
here: ``run.json`` and Parquet (``bench.store``), reports, data and representation caches.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, rename it to ``path``.

    The temporary name keeps ``path``'s suffix (writers such as ``numpy.savez`` add one otherwise)
    and is unique per call, so concurrent writers of one target never share a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        write(tmp)
        fsync(tmp)
        os.replace(tmp, path)
        fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(payload, indent=2) + "\n")


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder`` and the folders themselves (before renaming it into place)."""
    for path in sorted(Path(folder).rglob("*"), reverse=True):
        fsync(path)
    fsync(folder)
