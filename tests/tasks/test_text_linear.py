"""The linear text task against scikit-learn's own pipeline, and its representation cache."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import l1_min_c

from bench.build import build
from bench.errors import BenchError
from tests.helpers import bench_config


@pytest.fixture(scope="module")
def task(bench_data):
    return build(bench_config("task=text_linear", "method=random")).task


def test_the_default_configuration_is_scikit_learns_defaults(task):
    """The untuned baseline: CountVectorizer() and LogisticRegression(solver='liblinear') as
    scikit-learn builds them, scored independently here."""
    (train, y_train), (validation, y_validation), (test, y_test) = (task.corpus.part(s) for s in task.parts)
    vectoriser = CountVectorizer()
    model = LogisticRegression(solver="liblinear", max_iter=100).fit(vectoriser.fit_transform(train), y_train)
    evaluation = task.evaluate(task.space.default, seed=0)
    assert evaluation.objective == pytest.approx(1 - model.score(vectoriser.transform(validation), y_validation))
    assert evaluation.test["accuracy"] == pytest.approx(model.score(vectoriser.transform(test), y_test))
    assert evaluation.test["accuracy"] + evaluation.test["error"] == pytest.approx(1)
    assert evaluation.metrics["features"] == len(vectoriser.vocabulary_)
    assert evaluation.metrics["dataset"] == "rotten_tomatoes"


def test_tfidf_bigrams_without_stop_words_match_tfidf_vectorizer(task):
    config = {**task.space.default, "weighting": "tfidf", "ngram_range": (1, 2), "stop_words": "english", "min_df": 2}
    train_x, validation_x, _ = task.representation(config)
    reference = TfidfVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2)
    expected = reference.fit_transform(task.parts["train"][0])
    np.testing.assert_allclose(train_x.toarray()[:50], expected.toarray()[:50], rtol=1e-12)
    np.testing.assert_allclose(
        validation_x[:50].toarray(), reference.transform(task.parts["validation"][0][:50]).toarray(), rtol=1e-12
    )


def test_binary_weighting_counts_presence(task):
    counts, _, _ = task.representation({**task.space.default, "weighting": "tf"})
    binary, _, _ = task.representation({**task.space.default, "weighting": "binary"})
    assert counts.max() > 1 and set(np.unique(binary.data)) == {1.0}
    assert (counts != 0).toarray().sum() == binary.nnz


def _fresh_task(folder):
    """A text_linear task whose representation cache is ``folder`` (other tests never touch it)."""
    return build(bench_config("task=text_linear", "method=random", f"task.representation_cache={folder}")).task


def test_a_cached_representation_is_not_vectorised_again(bench_data, tmp_path):
    """A hit in memory, then on disk from a new task (another job), never re-vectorises."""
    task = _fresh_task(tmp_path)
    config = {**task.space.default, "ngram_range": (2, 3), "min_df": 3, "C": 0.5}
    first = task.evaluate(config, seed=0)
    assert task.built == 1
    second = task.evaluate({**config, "C": 2.0, "penalty": "l1"}, seed=1)  # another classifier, same features
    assert task.built == 1 and second.objective != first.objective
    other = _fresh_task(tmp_path)
    assert other.evaluate(config, seed=0) == first
    assert other.built == 0


def test_an_unreadable_cached_representation_is_rebuilt(bench_data, tmp_path, caplog):
    task = _fresh_task(tmp_path)
    config = {**task.space.default, "min_df": 3, "weighting": "binary", "stop_words": "english"}
    expected = task.evaluate(config, seed=0)
    (path,) = list(tmp_path.rglob("*.npz"))
    assert _holds(path, task, config)
    path.write_bytes(b"truncated")
    fresh = _fresh_task(tmp_path)
    assert fresh.evaluate(config, seed=0) == expected
    assert fresh.built == 1 and "ignoring the unreadable cached representation" in caplog.text


def _holds(path, task, config):
    from scipy import sparse

    train, _, _ = task.representation(config)
    stacked = sparse.load_npz(path)
    return stacked.shape[1] == train.shape[1] and (stacked[: train.shape[0]] != train).nnz == 0


def test_penalty_l1_is_the_lasso(task):
    """Below scikit-learn's l1_min_c every L1 weight is zero (liblinear penalises the intercept
    too), so the model predicts one class for every text; an L2 model at the same C does not."""
    x_train, _, _ = task.representation(task.space.default)
    y_train, y_validation = task.parts["train"][1], task.parts["validation"][1]
    c = 0.5 * l1_min_c(x_train, y_train, loss="log")
    config = {**task.space.default, "C": c}  # below the space's bounds: evaluate() trains what it is given
    l1 = task.evaluate({**config, "penalty": "l1"}, seed=0).objective
    shares = {float(np.mean(y_validation == label)) for label in (0, 1)}
    assert min(abs(l1 - share) for share in shares) < 1e-12
    assert task.evaluate(config, seed=0).objective not in shares


def test_the_space_must_be_the_yogatama_space():
    with pytest.raises(BenchError, match=r"must declare exactly penalty, C, tol, stop_words"):
        build(bench_config("task=text_linear", "~task.space.min_df"))
