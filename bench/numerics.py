"""CPU numerics pinned to one code path, so a run's numbers do not depend on the processor.

MKL, PyTorch's own kernels and OpenBLAS each pick a code path for the processor they find (SSE2,
AVX2, AVX-512, Zen), and the paths round differently: the same float32 training ends at another
validation error, and a GP fitted on it proposes other configurations from then on. ``pin`` sets,
before any numerical library loads (``bench/__init__.py`` calls it, so it runs before ``torch`` or
``numpy`` is imported by any entry point: the command line, a joblib worker, a Slurm job):

- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility on its SSE2 branch, the one
  branch Intel documents as giving the same results on Intel and other x86 processors;
- ``ATEN_CPU_CAPABILITY=default``: PyTorch's portable kernels instead of its AVX2/AVX-512 ones;
- ``OPENBLAS_CORETYPE=Prescott`` and ``OPENBLAS_NUM_THREADS=1``: NumPy's and SciPy's OpenBLAS
  (scikit-learn's GP) on its SSE3 kernels, one thread;
- ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1 where unset; a run then sets torch's thread
  count to its ``torch_threads`` (MKL is reproducible for a fixed thread count).

``BENCH_NUMERICS=native`` leaves the environment as it is (faster: ``python -m bench.perf
numerics`` measures by how much). What still varies: GPUs, and processors other than x86-64.

Each run records ``numerics()`` in ``run.json``: the mode, the settings in effect, the processor,
and ``probe``, a digest of a fixed computation through every library's code path (MKL's GEMM and
Cholesky, torch's elementwise kernels and reductions, OpenBLAS through NumPy and SciPy). A resume
compares the replay key (``replay_key``) with the record's: the same key means the same numbers,
so the run continues bit for bit on any processor; another key is refused in one line
(``check_replayable``), never a silent divergence.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import BenchError

log = logging.getLogger("bench")

MODE_VARIABLE = "BENCH_NUMERICS"
MODES = ("pinned", "native")
PINNED = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "default",
    "OPENBLAS_CORETYPE": "Prescott",
    "OPENBLAS_NUM_THREADS": "1",
}
"""Set, overriding the environment, under pinned numerics."""
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Set to 1 where unset under pinned numerics (a run sets torch's own count)."""
LIBRARIES = ("torch", "numpy", "scipy")
SETTINGS = (*PINNED, *THREADS, "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE")
"""The environment variables a record shows (what decides the code paths)."""

_pinned_late: list[str] = []  # numerical libraries already loaded when pin() ran


def mode() -> str:
    """``pinned`` (the default) or ``native``, from ``BENCH_NUMERICS``; a one-line error otherwise."""
    value = os.environ.get(MODE_VARIABLE, "pinned").strip().lower() or "pinned"
    if value not in MODES:
        raise BenchError(f"{MODE_VARIABLE}={os.environ[MODE_VARIABLE]!r}: must be one of {', '.join(MODES)}")
    return value


def pin() -> None:
    """Pin the CPU code paths in this process's environment (inherited by its workers and jobs).
    Runs before torch or numpy loads; a library loaded earlier keeps the path it chose, which the
    record's probe then shows."""
    try:
        if mode() != "pinned":
            return
    except BenchError:
        return  # told in one line when the run is built (bench.build)
    inherited = all(os.environ.get(name) == value for name, value in PINNED.items())  # from a pinned parent
    _pinned_late[:] = [] if inherited else [name for name in LIBRARIES if name in sys.modules]
    os.environ.update(PINNED)
    for name in THREADS:
        os.environ.setdefault(name, "1")


def without_pins(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` less the variables ``pin`` sets: what a process started from it chooses for
    itself (a child of a pinned process would otherwise inherit the pins)."""
    return {name: value for name, value in environment.items() if name not in (*PINNED, *THREADS)}


def exports() -> str:
    """A shell line setting this process's numerics in a job whose environment is not inherited
    (``sbatch --export=NONE``); empty when there is nothing to set."""
    names = (MODE_VARIABLE, *PINNED)  # thread counts: the launcher's own setup line sets them
    settings = [f"{name}={os.environ[name]}" for name in names if name in os.environ]
    return f"export {' '.join(settings)}" if settings else ""


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe() -> str:
    """A digest of a fixed computation through each library's CPU code path: float32 and float64
    GEMM and a Cholesky factor (MKL), tanh, sigmoid, exp, log-softmax and a row sum (torch's
    kernels), GEMM and Cholesky through NumPy and SciPy (OpenBLAS). Equal digests: these paths
    round alike, at this process's torch thread count. 16 hex characters; a few milliseconds."""
    import torch

    return _probe(torch.get_num_threads())


@functools.cache
def _probe(threads: int) -> str:
    import numpy as np
    import scipy.linalg
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(67, 259, generator=generator)
    b = torch.randn(259, 131, generator=generator)
    x = torch.randn(4099, generator=generator)
    gram = a.double() @ a.double().T + 259 * torch.eye(67, dtype=torch.float64)
    matrix = np.random.default_rng(0).standard_normal((67, 259))
    spd = matrix @ matrix.T + 259 * np.eye(67)
    parts = [
        (a @ b).numpy(),
        (a.double() @ b.double()).numpy(),
        torch.linalg.cholesky(gram).numpy(),
        torch.tanh(x).numpy(),
        torch.sigmoid(x).numpy(),
        x.exp().numpy(),
        torch.log_softmax(a, dim=1).numpy(),
        a.sum(dim=1).numpy(),
        spd,
        np.linalg.cholesky(spd),
        scipy.linalg.cho_factor(spd)[0],
    ]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def numerics(device: str = "cpu") -> dict[str, Any]:
    """What ``run.json`` records of the numerics a run computes with (``device`` as resolved)."""
    import torch

    record: dict[str, Any] = {
        "mode": mode(),
        "settings": {name: os.environ.get(name) for name in SETTINGS},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "probe": probe(),
    }
    if _pinned_late:
        record["loaded_before_pinning"] = list(_pinned_late)
    if device.startswith("cuda"):
        record["gpu"] = torch.cuda.get_device_name(torch.device(device))
        record["cuda"] = torch.version.cuda
    return record


def replay_key(record: Mapping[str, Any]) -> dict[str, Any]:
    """What must be equal for a recorded run to continue bit for bit: the mode, the probe, torch's
    kernels and thread count, the architecture and the GPU; under native numerics (or pins that
    came after a library loaded) the processor model too: the probe does not exercise every path
    a native training can take."""
    names = ("mode", "probe", "torch_cpu_capability", "torch_threads", "machine", "gpu", "cuda")
    key = {name: record.get(name) for name in (*names, "loaded_before_pinning")}
    if record.get("mode") != "pinned" or record.get("loaded_before_pinning"):
        key["cpu_model"] = record.get("cpu_model")
    return key


def check_replayable(directory: Path, recorded: Mapping[str, Any], current: Mapping[str, Any] | None) -> None:
    """Refuse, in one line, to resume a run whose record these numerics (``numerics()``, None
    where unknown) would not reproduce."""
    if current is None:
        return
    if "numerics" not in recorded:  # recorded before numerics were: the replay still checks every proposal
        log.warning("%s was recorded before its numerics were: its resume cannot be checked bit for bit", directory)
        return
    theirs, ours = replay_key(recorded["numerics"]), replay_key(current)
    differences = [name for name in theirs if theirs[name] != ours.get(name)]
    if not differences:
        return
    shown = "; ".join(f"{name}: recorded {theirs[name]!r}, here {ours.get(name)!r}" for name in differences)
    raise BenchError(
        f"cannot resume {directory} bit for bit here: its trials were computed with other numerics ({shown}); "
        f"resume it with the numerics it was made with (the same {MODE_VARIABLE} and torch_threads, on a machine "
        "whose probe matches), or start it again in another output directory"
    )
