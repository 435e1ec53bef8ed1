"""Images for the DrMAD paper's MNIST MLP, from the source ``task.dataset`` names.

- ``mnist``: the canonical MNIST IDX files, from the cache (``$BENCH_DATA/mnist``, else
  ``~/.cache/bench/mnist``) or downloaded into it when online (60,000 + 10,000 28x28 images);
- ``fashion_mnist``: Fashion-MNIST's IDX files as Debian's ``dataset-fashion-mnist`` installs them
  (``/usr/share/datasets/fashion-mnist``), or ``data_dir``;
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images), always available offline.

``auto`` takes MNIST when it is cached or can be downloaded, else Fashion-MNIST when Debian's files
are installed (``scripts/install-data``), else refuses in one line saying how to get either: it
never falls back to ``digits``, a different and far smaller dataset, which is used only when named.
Every source is checked (image and label counts, shape, pixel range, ten classes) and named in the
run's record. Splits: for the 28x28 sets as the authors' code uses them, 15,000 training and 5,000
validation images from the start of the training file (the authors re-split those 20,000 every
meta-iteration; here the split is fixed) and the first 5,000 test images; for ``digits`` a fixed
shuffle (seed 0) into 1,000 / 400 / 397. Pixels are scaled to [0, 1].
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.files import write_atomically
from tasks.data_files import OFFLINE_VARIABLE, cache_dir, offline

DATASETS = ("auto", "mnist", "fashion_mnist", "digits")
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision reads
FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_FASHION = "as root on Debian: scripts/install-data, or apt-get install dataset-fashion-mnist"
NAMES = {
    "mnist": "MNIST (LeCun et al. 1998)",
    "fashion_mnist": "Fashion-MNIST (Xiao et al. 2017)",
    "digits": "scikit-learn digits (UCI optical recognition of handwritten digits, 8x8)",
}


@dataclass(frozen=True)
class Images:
    """Flattened images in [0, 1] and integer labels, split three ways."""

    dataset: str
    source: str
    sha256: str
    train: tuple[np.ndarray, np.ndarray]  # (n, pixels) float32, (n,) int64
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]

    @property
    def name(self) -> str:
        return NAMES[self.dataset]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not): unsigned bytes, shape from its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08:
        raise BenchError(f"{path}: not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise BenchError(f"{path}: header says {shape}, file holds {array.size} values")
    return array.reshape(shape)


def load_images(
    dataset: str = "auto", data_dir: str | None = None, url: str = MNIST_URL, timeout: float = 20
) -> Images:
    """The images of ``dataset`` (``data_dir``: where the IDX files of mnist or fashion_mnist are, in
    place of the cache or Debian's folder); a missing source is a one-line ``BenchError`` that says
    how to get it."""
    if dataset not in DATASETS:
        raise BenchError(f"task.dataset={dataset!r}: allowed: {', '.join(DATASETS)}")
    if dataset == "digits":
        return _digits()
    if dataset == "fashion_mnist":
        folder = Path(data_dir) if data_dir else FASHION_DIR
        missing = [name for name in FILES.values() if not (folder / name).exists()]
        if missing:
            lacks = "has none of its IDX files" if len(missing) == len(FILES) else f"lacks {', '.join(missing)}"
            raise BenchError(
                f"task.dataset=fashion_mnist: Fashion-MNIST is missing: {folder} {lacks}; install it "
                f"({INSTALL_FASHION}), or give a folder holding {', '.join(FILES.values())} as task.data_dir"
            )
        return _idx("fashion_mnist", folder, f"files in {folder}")
    folder = Path(data_dir) if data_dir else cache_dir() / "mnist"
    try:
        source = _fetch_mnist(folder, url, timeout)
    except OSError as error:
        if dataset == "mnist":
            raise BenchError(
                f"task.dataset=mnist: {error}: place MNIST's IDX files ({', '.join(FILES.values())}) in {folder}, "
                "or use task.dataset=fashion_mnist or digits"
            ) from None
        if has_idx_files(FASHION_DIR):  # auto: MNIST cannot be had, Debian's Fashion-MNIST is installed
            return load_images("fashion_mnist")
        raise BenchError(
            f"task.dataset=auto: neither MNIST ({error}) nor Fashion-MNIST (no IDX files in {FASHION_DIR}) is here: "
            f"install Fashion-MNIST ({INSTALL_FASHION}), or give a folder of IDX files as task.data_dir with "
            "task.dataset=mnist or fashion_mnist, or use task.dataset=digits for a small offline run"
        ) from None
    return _idx("mnist", folder, source)


def has_idx_files(folder: Path) -> bool:
    """Whether ``folder`` holds all four IDX files."""
    return all((folder / name).exists() for name in FILES.values())


def _fetch_mnist(folder: Path, url: str, timeout: float) -> str:
    """Cached files, or a download into the cache; returns where they came from. Raises ``OSError``
    saying why when neither works (offline, or a download failed: only whole files stay cached)."""
    if has_idx_files(folder):
        return f"cache {folder}"
    if offline():
        raise OSError(f"{OFFLINE_VARIABLE} is set and {folder} lacks its IDX files")
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        target = folder / name
        if target.exists():
            continue
        try:
            with urllib.request.urlopen(url + name, timeout=timeout) as response:
                payload = response.read()
        except OSError as error:
            raise OSError(f"cannot download {url + name}: {error}") from None
        write_atomically(target, lambda tmp, data=payload: tmp.write_bytes(data))  # only whole files in the cache
    return f"downloaded from {url} into {folder}"


def _idx(dataset: str, folder: Path, source: str) -> Images:
    stamps = tuple((s.st_size, s.st_mtime_ns) for s in (Path(folder, name).stat() for name in FILES.values()))
    return _read_idx_set(dataset, str(folder), source, stamps)


@functools.lru_cache(maxsize=4)
def _read_idx_set(dataset: str, folder: str, source: str, stamps: tuple) -> Images:
    """The four IDX files of ``folder``, read and checked once per process while their sizes and
    modification times (``stamps``) stay the same: a sweep's pre-flight builds every job's task
    (50 in ``suite=many_hyperparameters``), and a worker runs many jobs. The arrays are read-only,
    as every task that shares them copies what it uses."""
    folder = Path(folder)
    arrays = {key: read_idx(folder / name) for key, name in FILES.items()}
    x, y, test_x, test_y = (arrays[k] for k in ("train_x", "train_y", "test_x", "test_y"))
    if x.shape != (60000, 28, 28) or test_x.shape != (10000, 28, 28) or len(y) != 60000 or len(test_y) != 10000:
        raise BenchError(f"{folder}: expected 60,000 + 10,000 images of 28x28, got {x.shape} and {test_x.shape}")
    if set(np.unique(y)) != set(range(10)):
        raise BenchError(f"{folder}: labels are not the ten classes 0..9")
    digest = hashlib.sha256()
    for key in FILES:
        digest.update(arrays[key].tobytes())
    flat = x.reshape(len(x), -1).astype(np.float32) / 255
    labels = y.astype(np.int64)
    test_flat = test_x[:5000].reshape(5000, -1).astype(np.float32) / 255
    test_labels = test_y[:5000].astype(np.int64)
    for array in (flat, labels, test_flat, test_labels):
        array.setflags(write=False)
    return Images(
        dataset=dataset,
        source=source,
        sha256=digest.hexdigest(),
        train=(flat[:15000], labels[:15000]),
        validation=(flat[15000:20000], labels[15000:20000]),
        test=(test_flat, test_labels),
    )


def _digits() -> Images:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.data.astype(np.float32) / 16, bunch.target.astype(np.int64)
    if x.shape != (1797, 64) or set(np.unique(y)) != set(range(10)):
        raise BenchError(f"scikit-learn digits: expected 1,797 images of 64 pixels, got {x.shape}")
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return Images(
        dataset="digits",
        source="scikit-learn bundled copy (sklearn.datasets.load_digits)",
        sha256=hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest(),
        train=(x[:1000], y[:1000]),
        validation=(x[1000:1400], y[1000:1400]),
        test=(x[1400:], y[1400:]),
    )
