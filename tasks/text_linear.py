"""Linear text classifiers tuned as in Yogatama et al. (2015) and Dodge et al. (2019): logistic
regression over n-gram features, where the text representation is a hyperparameter too.

A configuration chooses the representation (``ngram_range``, ``stop_words``, ``weighting`` and
``min_df``) and the classifier (``penalty`` and ``C`` of an L1- or L2-regularised logistic
regression, and its stopping ``tol``). Features: ``CountVectorizer`` (lowercased, scikit-learn's
token pattern, English stop words removed when ``stop_words=english``, ``binary`` counts for the
``binary`` weighting) fitted on the training split only, then ``TfidfTransformer`` for ``tfidf``.
Classifier: ``LogisticRegression(solver="liblinear", max_iter=100)`` as in Dodge et al.'s code
(one-vs-rest for more than two classes), ``l1_ratio`` 1 for L1 and 0 for L2, seeded with the
trial's seed. The default configuration is scikit-learn's defaults: unigram counts, no stop-word
list, min_df 1, L2 with C = 1 and tol = 1e-4 (the "untuned baseline").

Objective: validation error rate. Test metrics: accuracy (the headline) and error rate. Recorded:
training error, whether liblinear converged within ``max_iter`` and the number of features.

Representations are cached per (corpus checksum, representation, scikit-learn version): in
memory for the task's lifetime (the ``MEMORY_SLOTS`` most recently used), and on disk as one scipy
sparse ``.npz`` (train, validation and test rows stacked; never a pickle) in
``representation_cache`` (default ``<cache>/text/representations/``), written to a temporary file
and renamed, so trials that share a representation tokenize once, also across parallel jobs. A
cached file with the wrong number of rows, or one that does not read, is ignored and rebuilt.
``cost_steps`` is liblinear's iteration count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sparse
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression

from bench.errors import BenchError
from bench.files import write_atomically
from bench.protocols import Evaluation
from bench.space import Config, SearchSpace
from tasks.data_files import cache_dir
from tasks.text_data import SPLIT_SHARES, load_corpus

log = logging.getLogger(__name__)
HYPERPARAMETERS = ("penalty", "C", "tol", "stop_words", "weighting", "ngram_range", "min_df")
REPRESENTATION = ("stop_words", "weighting", "ngram_range", "min_df")
SPLITS = tuple(SPLIT_SHARES)
MEMORY_SLOTS = 32
"""Representations a task keeps in memory (least recently used dropped first); a (1, 3)-gram
representation of rotten_tomatoes holds about 10 MB."""


class TextLinearTask:
    test_metric = "accuracy"
    public_metrics = ()
    pass_criteria: dict[str, str] = {}

    def __init__(
        self,
        space: SearchSpace,
        device: str = "cpu",
        dataset: str = "rotten_tomatoes",
        max_iter: int = 100,
        representation_cache: str | None = None,
    ) -> None:
        if sorted(space.names) != sorted(HYPERPARAMETERS):
            raise BenchError(f"task.space for text_linear must declare exactly {', '.join(HYPERPARAMETERS)}")
        if max_iter < 1:
            raise BenchError(f"task.max_iter={max_iter}: must be a positive whole number")
        self.space, self.max_iter = space, max_iter
        self.folder = Path(representation_cache or cache_dir() / "text" / "representations")
        self.corpus = load_corpus(dataset)
        self.parts = {split: self.corpus.part(split) for split in SPLITS}
        self.memory: OrderedDict[str, list[sparse.csr_matrix]] = OrderedDict()
        self.built = 0  # representations vectorised by this task (neither in memory nor on disk)

    # ------------------------------------------------------------------ representation
    def representation(self, config: Config) -> list[sparse.csr_matrix]:
        """[train, validation, test] feature matrices of the configuration's representation."""
        options = {name: config[name] for name in REPRESENTATION}
        # scikit-learn's version in the key: another version may tokenize or weight differently
        key = hashlib.sha256(json.dumps([options, sklearn.__version__], sort_keys=True).encode()).hexdigest()[:16]
        if key in self.memory:
            self.memory.move_to_end(key)
            return self.memory[key]
        path = self.folder / f"{self.corpus.dataset}-{self.corpus.sha256[:12]}-{key}.npz"
        matrices = self._read(path)
        if matrices is None:
            matrices = self._vectorise(options)
            self.built += 1
            stacked = sparse.vstack(matrices, format="csr")
            write_atomically(path, lambda tmp: sparse.save_npz(tmp, stacked, compressed=False))
        self.memory[key] = matrices
        while len(self.memory) > MEMORY_SLOTS:  # least recently used first
            self.memory.popitem(last=False)
        return matrices

    def _read(self, path: Any) -> list[sparse.csr_matrix] | None:
        if not path.exists():
            return None
        try:
            stacked = sparse.load_npz(path).tocsr()  # never unpickles: load_npz refuses object arrays
        except (OSError, ValueError, KeyError) as error:
            log.warning("ignoring the unreadable cached representation %s (%s)", path, error)
            return None
        sizes = [len(self.parts[split][1]) for split in SPLITS]
        if stacked.shape[0] != sum(sizes):
            log.warning(
                "ignoring the cached representation %s: %d rows, expected %d", path, stacked.shape[0], sum(sizes)
            )
            return None
        bounds = np.cumsum([0, *sizes])
        return [stacked[bounds[i] : bounds[i + 1]] for i in range(len(SPLITS))]

    def _vectorise(self, options: dict[str, Any]) -> list[sparse.csr_matrix]:
        vectoriser = CountVectorizer(
            lowercase=True,
            stop_words="english" if options["stop_words"] == "english" else None,
            ngram_range=tuple(options["ngram_range"]),
            min_df=options["min_df"],
            binary=options["weighting"] == "binary",
            dtype=np.float64,
        )
        train = vectoriser.fit_transform(self.parts["train"][0])
        matrices = [train, *(vectoriser.transform(self.parts[s][0]) for s in SPLITS[1:])]
        if options["weighting"] == "tfidf":
            weights = TfidfTransformer().fit(train)
            matrices = [weights.transform(m) for m in matrices]
        return [m.tocsr() for m in matrices]

    # ------------------------------------------------------------------ protocol
    def evaluate(self, config: Config, seed: int) -> Evaluation:
        x_train, x_validation, x_test = self.representation(config)
        (_, y_train), (_, y_validation), (_, y_test) = (self.parts[s] for s in SPLITS)
        model = LogisticRegression(
            l1_ratio=1.0 if config["penalty"] == "l1" else 0.0,
            C=config["C"],
            tol=config["tol"],
            solver="liblinear",
            max_iter=self.max_iter,
            random_state=seed % 2**32,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x_train, y_train)
        accuracy = {
            name: float(model.score(x, y))
            for name, x, y in (
                ("train", x_train, y_train),
                ("validation", x_validation, y_validation),
                ("test", x_test, y_test),
            )
        }
        return Evaluation(
            objective=1.0 - accuracy["validation"],
            test={"accuracy": accuracy["test"], "error": 1.0 - accuracy["test"]},
            metrics={
                "train_error": 1.0 - accuracy["train"],
                "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
                "features": int(x_train.shape[1]),
                "dataset": self.corpus.dataset,
            },
            cost_steps=int(np.max(model.n_iter_)),
        )

    def describe(self) -> dict[str, Any]:
        return {
            **self.corpus.describe(),
            "features": "CountVectorizer (+ TfidfTransformer) fitted on the training split",
            "classifier": f"LogisticRegression(solver='liblinear', max_iter={self.max_iter})",
            "objective": "validation error rate",
            "test_metric": "test accuracy",
        }
