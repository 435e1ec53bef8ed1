"""CPU numerics pinned to one code path per processor level, so a run's numbers do not depend on
the processor.

MKL, PyTorch's kernels, NumPy's own SIMD loops, OpenBLAS and oneDNN each pick a code path for the
processor they find (SSE2, AVX2, AVX-512, Zen), and the paths round differently: the same float32
training ends at another validation error, a float64 ``np.exp`` of a log-scaled configuration
moves by one unit in the last place, and a GP fitted on either proposes other configurations
from then on. ``pin`` sets, before any numerical library loads (``bench/__init__.py`` calls it,
so it runs before ``torch`` or ``numpy`` is imported by any entry point: the command line, a
joblib worker; a Slurm job gets them in its script, ``exports``), the widest code path that
computes the same numbers on every x86-64 processor of this one's level:

- level ``x86-64-v3`` (AVX2 and FMA: Intel since Haswell, AMD since Zen), where this processor has
  it: PyTorch's AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``), NumPy's dispatch capped at X86_V3
  (``NPY_ENABLE_CPU_FEATURES=X86_V3``: no AVX-512 loops, whose float64 exp and log round
  differently), OpenBLAS's Haswell kernels (what it runs on Zen too), oneDNN capped at AVX2
  (PyTorch's LSTM); glibc's libm takes its FMA variants on every such processor by itself;
- level ``portable`` elsewhere: PyTorch's portable kernels, NumPy's baseline (X86_V2), OpenBLAS's
  Prescott kernels, oneDNN at SSE4.1;
- both levels: ``MKL_CBWR=COMPATIBLE``, MKL's SSE2 branch. It is the one branch Intel documents as
  giving the same results on Intel and AMD processors: ``MKL_CBWR=AVX2`` (or AVX512) holds on
  Intel only; on AMD MKL takes its AUTO branch (Zen kernels) instead, which rounds otherwise
  (``results/reference/perf_numerics_cpu.md`` shows it by emulation). One OpenBLAS thread, and
  ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` 1 where unset (MKL is reproducible for a fixed
  thread count); a run then sets torch's thread count to its ``torch_threads``.

``BENCH_NUMERICS=pinned`` (the default) takes the widest level this processor has;
``BENCH_NUMERICS=portable`` the portable level on any processor (the pins of the reference tables
made before 2026-12-07); ``BENCH_NUMERICS=native`` leaves the environment as it is (``python -m
bench.perf numerics`` measures what each costs). What still varies: GPUs, processors other than
x86-64, and on the portable level glibc's libm, which takes FMA variants where the processor has
FMA (the probe shows it). ``python -m bench.numerics`` prints what this machine pins.

Each run records ``numerics()`` in ``run.json``: the mode and level, the settings in effect, what
NumPy and OpenBLAS dispatch to, the processor, and ``probe``, a digest of a fixed computation
through every library's code path (``_probe``). A resume compares the replay key
(``replay_key``) with the record's: the same key means the same numbers, so the run continues bit
for bit on any processor; another key is refused in one line (``check_replayable``), never a
silent divergence.
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
MODES = ("pinned", "portable", "native")
X86_64_V3 = "x86-64-v3"
PORTABLE = "portable"
LEVELS: dict[str, dict[str, str]] = {
    X86_64_V3: {
        "MKL_CBWR": "COMPATIBLE",
        "ATEN_CPU_CAPABILITY": "avx2",
        "NPY_ENABLE_CPU_FEATURES": "X86_V3",
        "OPENBLAS_CORETYPE": "Haswell",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OPENBLAS_NUM_THREADS": "1",
    },
    PORTABLE: {
        "MKL_CBWR": "COMPATIBLE",
        "ATEN_CPU_CAPABILITY": "default",
        "NPY_ENABLE_CPU_FEATURES": "X86_V2",
        "OPENBLAS_CORETYPE": "Prescott",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "OPENBLAS_NUM_THREADS": "1",
    },
}
"""Set, overriding the environment, at each level."""
X86_ONLY = ("NPY_ENABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA")
"""Names of x86 code paths: left unset on other architectures, where their values mean nothing."""
X86_64_V3_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe")
"""``/proc/cpuinfo`` flags of the x86-64-v3 level (``abm``: LZCNT), as NumPy's X86_V3 needs them."""
CLEARED = ("NPY_DISABLE_CPU_FEATURES",)
"""Removed when pinning: NumPy refuses to load with both it and ``NPY_ENABLE_CPU_FEATURES`` set."""
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Set to 1 where unset under pinned numerics (a run sets torch's own count)."""
LIBRARIES = ("torch", "numpy", "scipy")
PINNED_NAMES = tuple(dict.fromkeys(name for settings in LEVELS.values() for name in settings))
SETTINGS = (*PINNED_NAMES, *THREADS, *CLEARED, "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE", "GLIBC_TUNABLES")
"""The environment variables a record shows (what decides the code paths)."""
PROBE_VERSION = 2
"""1: MKL, torch's elementwise kernels, OpenBLAS (records before 2026-12-07); 2: also NumPy's
loops, libm, torch's random and special functions, small and batched GEMMs, LAPACK's eigh, oneDNN's
LSTM and SciPy's L-BFGS-B."""

_pinned_late: list[str] = []  # numerical libraries already loaded when pin() ran


def mode() -> str:
    """``pinned`` (the default), ``portable`` or ``native``, from ``BENCH_NUMERICS``; a one-line
    error otherwise."""
    value = os.environ.get(MODE_VARIABLE, "pinned").strip().lower() or "pinned"
    if value not in MODES:
        raise BenchError(f"{MODE_VARIABLE}={os.environ[MODE_VARIABLE]!r}: must be one of {', '.join(MODES)}")
    return value


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (``/proc/cpuinfo``); empty where that cannot be read."""
    return frozenset((_cpuinfo("flags") or "").split())


def level(chosen_mode: str | None = None) -> str | None:
    """The code-path level ``chosen_mode`` (default: ``mode()``) pins on this processor; None
    under native numerics."""
    chosen_mode = chosen_mode or mode()
    if chosen_mode == "native":
        return None
    if chosen_mode == "pinned" and is_x86() and cpu_flags().issuperset(X86_64_V3_FLAGS):
        return X86_64_V3
    return PORTABLE


def settings(chosen_level: str) -> dict[str, str]:
    """The environment ``chosen_level`` sets on this architecture."""
    values = LEVELS[chosen_level]
    return {name: value for name, value in values.items() if is_x86() or name not in X86_ONLY}


def pin() -> None:
    """Pin the CPU code paths in this process's environment (inherited by its workers and jobs).
    Runs before torch or numpy loads; a library loaded earlier keeps the path it chose, which the
    record (``loaded_before_pinning``) and its probe then show."""
    try:
        chosen = level()
    except BenchError:
        return  # told in one line when the run is built (bench.build)
    if chosen is None:
        return
    wanted = settings(chosen)
    inherited = all(os.environ.get(name) == value for name, value in wanted.items())  # from a pinned parent
    _pinned_late[:] = [] if inherited else [name for name in LIBRARIES if name in sys.modules]
    os.environ.update(wanted)
    for name in CLEARED:
        os.environ.pop(name, None)
    for name in THREADS:
        os.environ.setdefault(name, "1")


def without_pins(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` less the variables ``pin`` sets: what a process started from it chooses for
    itself (a child of a pinned process would otherwise inherit the pins)."""
    return {name: value for name, value in environment.items() if name not in (*PINNED_NAMES, *THREADS)}


def exports() -> str:
    """A shell line for a job script (``sbatch --export=NONE``, or a job whose launcher imports
    NumPy before ``bench``): it sets the numerics this process's mode pins, as computed on the
    machine that runs the job (``python -m bench.numerics --exports`` there). The thread counts
    the script set before it are kept."""
    try:
        chosen_mode = mode()
    except BenchError:
        return ""  # told in one line when the run is built (bench.build)
    return f'eval "$({MODE_VARIABLE}={chosen_mode} {sys.executable} -m bench.numerics --exports)"'


def export_line() -> str:
    """``export NAME=value ...`` of this machine's pins under this process's mode (only the mode
    under native numerics); thread counts already set are kept. Reads no numerical library."""
    chosen_mode = mode()
    chosen = level(chosen_mode)
    values = {MODE_VARIABLE: chosen_mode, **(settings(chosen) if chosen else {})}
    if chosen:
        values.update({name: os.environ.get(name, "1") for name in THREADS})
    unset = f"unset {' '.join(CLEARED)}; " if chosen else ""
    return unset + "export " + " ".join(f"{name}={value}" for name, value in values.items())


def _cpuinfo(*keys: str) -> str | None:
    """The first ``/proc/cpuinfo`` field named by one of ``keys`` (lower case), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(keys):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    return _cpuinfo("model name", "hardware", "cpu model") or platform.processor() or platform.machine()


def cpu_vendor() -> str | None:
    """The processor's vendor (``GenuineIntel``, ``AuthenticAMD``), where ``/proc/cpuinfo`` says."""
    return _cpuinfo("vendor_id")


def probe(version: int = PROBE_VERSION) -> str:
    """A digest of a fixed computation through each library's CPU code path (``_probe``). Equal
    digests: these paths round alike, at this process's torch thread count. 16 hex characters;
    a few milliseconds."""
    import torch

    return _probe(torch.get_num_threads(), version)


@functools.cache
def _probe(threads: int, version: int) -> str:
    """Version 1: float32 and float64 GEMM and a Cholesky factor (MKL), tanh, sigmoid, exp,
    log-softmax and a row sum (torch's kernels), GEMM and Cholesky through NumPy and SciPy
    (OpenBLAS). Version 2 adds: NumPy's float64 and float32 exp, log, log10, 10**x (a log-scaled
    entry's encoding and decoding), tanh, sin, power, arctan, log1p and expm1 (its SIMD loops, or
    libm), Python's math (libm), torch's float64 log, erfc, log_ndtr and erfcx and float32 log
    (MKL's VML), its normal sampler, the bikeshare MLP's GEMMs alone and batched, batched float64
    products, Cholesky factors and triangular solves (a GP's multi-start acquisition), a symmetric
    eigendecomposition (LAPACK), an LSTM (oneDNN) and SciPy's L-BFGS-B (OpenBLAS's level-1 BLAS)."""
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
    if version >= 2:
        parts += _probe_v2(generator)
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def _probe_v2(generator) -> list:
    import math

    import numpy as np
    import scipy.optimize
    import torch

    rng = np.random.default_rng(1)
    real = rng.uniform(-20.0, 20.0, 4099)
    positive = rng.uniform(1e-3, 50.0, 4099)
    numpy_parts = [
        f(v.astype(dtype))
        for dtype in (np.float64, np.float32)
        for f, v in (
            (np.exp, real),
            (np.log, positive),
            (np.log10, positive),  # a log-scaled entry's encoding (skopt's LogN) ...
            (lambda p: 10.0**p, real / 4),  # ... and its decoding: where AVX-512 moved a configuration
            (np.tanh, real),
            (np.sin, real),
            (lambda p: np.power(p, 0.37), positive),
            (np.arctan, real),
            (np.log1p, positive),
            (np.expm1, real / 4),
        )
    ]
    libm = [f(v) for v in real[:512] for f in (math.exp, math.sin, math.atan)] + [math.log(v) for v in positive[:512]]
    x64 = torch.from_numpy(real.copy())
    x32 = x64.float()
    inputs = torch.randn(32, 128, 56, generator=generator)
    weights = torch.randn(32, 56, 16, generator=generator)
    batch = torch.randn(10, 21, 21, generator=generator, dtype=torch.float64)
    gram = batch @ batch.transpose(-1, -2) + 21 * torch.eye(21, dtype=torch.float64)
    factor = torch.linalg.cholesky(gram)
    lstm = torch.nn.LSTM(8, 16)
    with torch.no_grad():
        for parameter in lstm.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) / 4)
        lstm_out = lstm(torch.randn(7, 3, 8, generator=generator))[0]
    rosenbrock = scipy.optimize.minimize(
        scipy.optimize.rosen, np.full(6, 0.3), jac=scipy.optimize.rosen_der, method="L-BFGS-B"
    )
    return [
        *numpy_parts,
        np.array(libm),
        torch.log(x64.abs() + 1e-3).numpy(),
        torch.special.erfc(x64 / 4).numpy(),
        torch.special.log_ndtr(x64).numpy(),
        torch.special.erfcx(x64.abs()).numpy(),
        torch.log(x32.abs() + 1e-3).numpy(),
        torch.randn(4099, generator=generator).numpy(),
        (inputs[0] @ weights[0]).numpy(),
        (inputs @ weights).numpy(),
        (batch @ batch).numpy(),
        factor.numpy(),
        torch.linalg.solve_triangular(factor, batch, upper=False).numpy(),
        torch.linalg.eigvalsh(gram[0]).numpy(),
        lstm_out.numpy(),
        rosenbrock.x,
    ]


def numpy_dispatch() -> list[str]:
    """The dispatch targets NumPy's SIMD loops use in this process (``X86_V3``, ``X86_V4``, ...)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # another NumPy layout: unknown
        return []
    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def openblas_cores() -> list[str]:
    """The kernel set each loaded OpenBLAS runs (NumPy's and SciPy's), as threadpoolctl reads it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    infos = threadpool_info()
    return sorted({str(info.get("architecture")) for info in infos if info.get("internal_api") == "openblas"})


def numerics(device: str = "cpu") -> dict[str, Any]:
    """What ``run.json`` records of the numerics a run computes with (``device`` as resolved)."""
    import torch

    chosen_mode = mode()
    digest = probe()  # loads NumPy's and SciPy's OpenBLAS, so that the record names their kernels
    record: dict[str, Any] = {
        "mode": chosen_mode,
        "level": level(chosen_mode),
        "settings": {name: os.environ.get(name) for name in SETTINGS},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy_dispatch": numpy_dispatch(),
        "openblas": openblas_cores(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_vendor": cpu_vendor(),
        "probe": digest,
        "probe_version": PROBE_VERSION,
    }
    if _pinned_late:
        record["loaded_before_pinning"] = list(_pinned_late)
    if device.startswith("cuda"):
        record["gpu"] = torch.cuda.get_device_name(torch.device(device))
        record["cuda"] = torch.version.cuda
    return record


def replay_key(record: Mapping[str, Any]) -> dict[str, Any]:
    """What must be equal for a recorded run to continue bit for bit: the mode and level, the
    probe, torch's kernels and thread count, the architecture and the GPU; under native numerics
    (or pins that came after a library loaded) the processor model too: the probe does not
    exercise every path a native training can take. A record made before levels were has none:
    it was pinned at the portable level."""
    names = ("mode", "probe", "torch_cpu_capability", "torch_threads", "machine", "gpu", "cuda")
    key = {name: record.get(name) for name in (*names, "loaded_before_pinning")}
    if record.get("mode") != "native":
        key["level"] = record.get("level", PORTABLE)
    if record.get("mode") == "native" or record.get("loaded_before_pinning"):
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
    theirs = recorded["numerics"]
    version = theirs.get("probe_version", 1)
    if version != current.get("probe_version", PROBE_VERSION):  # the digest of the computation it recorded
        current = {**current, "probe": probe(version)}
    theirs, ours = replay_key(theirs), replay_key(current)
    differences = [name for name in theirs if theirs[name] != ours.get(name)]
    if not differences:
        return
    shown = "; ".join(f"{name}: recorded {theirs[name]!r}, here {ours.get(name)!r}" for name in differences)
    raise BenchError(
        f"cannot resume {directory} bit for bit here: its trials were computed with other numerics ({shown}); "
        f"resume it with the numerics it was made with (the same {MODE_VARIABLE} and torch_threads, on a machine "
        "whose probe matches), or start it again in another output directory"
    )
