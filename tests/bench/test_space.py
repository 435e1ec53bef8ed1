import json

import numpy as np
import pytest

from bench.errors import BenchError
from bench.space import SearchSpace

SPEC = {
    "iterations": {"type": "int", "low": 50, "high": 10000, "log": True, "default": 100},
    "hidden_nodes": {"type": "int", "low": 1, "high": 64, "default": 2},
    "learning_rate": {"type": "real", "low": 1e-4, "high": 2.0, "log": True, "default": 0.1},
    "dropout": {"type": "real", "low": 0.0, "high": 0.9, "default": 0.5},
    "penalty": {"type": "categorical", "choices": ["l1", "l2"], "default": "l2"},
    "ngram_range": {"type": "categorical", "choices": [[1, 2], [1, 3], [2, 3]], "default": [1, 2]},
    "stopwords": {"type": "categorical", "choices": [True, False], "default": False},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_config(SPEC)


def test_encode_decode_round_trip(space):
    configs = space.sample(300, np.random.default_rng(0))
    encoded = space.encode(configs)
    assert encoded.shape == (300, 1 + 1 + 1 + 1 + 2 + 3 + 2)
    assert encoded.min() >= 0.0 and encoded.max() <= 1.0
    assert space.decode(encoded) == configs
    for start, width in ((4, 2), (6, 3), (9, 2)):  # each categorical block is one-hot
        np.testing.assert_array_equal(encoded[:, start : start + width].sum(axis=1), 1.0)


def test_decode_of_any_point_lands_in_the_space_and_is_stable(space):
    points = np.random.default_rng(1).uniform(-0.2, 1.2, size=(200, space.n_encoded))
    configs = space.decode(points)
    assert all(config in space for config in configs)
    assert space.decode(space.encode(configs)) == configs


def test_unit_cube_corners_decode_to_the_bounds(space):
    low, high = space.decode(np.zeros(space.n_encoded))[0], space.decode(np.ones(space.n_encoded))[0]
    assert (low["iterations"], low["hidden_nodes"], low["learning_rate"], low["dropout"]) == (50, 1, 1e-4, 0.0)
    assert (high["iterations"], high["hidden_nodes"], high["learning_rate"], high["dropout"]) == (10000, 64, 2.0, 0.9)


def test_log_prior_and_log_encoding(space):
    configs = space.sample(4000, np.random.default_rng(2))
    rates = np.array([c["learning_rate"] for c in configs])
    geometric_middle = np.sqrt(1e-4 * 2.0)
    assert abs((rates < geometric_middle).mean() - 0.5) < 0.03  # log-uniform: half below the geometric mean
    column = space.names.index("learning_rate")
    encoded = space.encode([{**space.default, "learning_rate": geometric_middle}])
    assert encoded[0, column] == pytest.approx(0.5)


def test_configs_survive_json(space):
    configs = space.sample(20, np.random.default_rng(3))
    assert [space.check(c) for c in json.loads(json.dumps(configs))] == configs
    assert all(isinstance(c["ngram_range"], tuple) and isinstance(c["iterations"], int) for c in configs)


def test_default_is_part_of_the_space(space):
    assert space.default == {
        "iterations": 100,
        "hidden_nodes": 2,
        "learning_rate": 0.1,
        "dropout": 0.5,
        "penalty": "l2",
        "ngram_range": (1, 2),
        "stopwords": False,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"hidden_nodes": {"type": "int", "low": 64, "high": 1, "default": 2}},
            "hidden_nodes: low=64 must be below high=1",
        ),
        ({"learning_rate": {"type": "real", "low": 0.0, "high": 1, "log": True, "default": 0.1}}, "positive on a log"),
        ({"dropout": {"type": "float", "low": 0, "high": 1, "default": 0.5}}, "dropout.type='float': allowed types"),
        ({"dropout": {"type": "real", "low": 0, "high": 1}}, "dropout.default is missing"),
        ({"dropout": {"type": "real", "low": 0, "high": 1, "default": 2.0}}, "default.dropout=2.0 is outside"),
        (
            {"dropout": {"type": "real", "low": "a", "high": 1, "default": 0.5}},
            "dropout.low='a': must be a finite number",
        ),
        ({"dropout": {"type": "real", "low": 0, "high": 1, "default": 0.5, "step": 2}}, "unknown key(s) ['step']"),
        ({"hidden_nodes": {"type": "int", "low": 1.5, "high": 8, "default": 2}}, "must be whole numbers"),
        ({"penalty": {"type": "categorical", "choices": ["l1"], "default": "l1"}}, "at least two choices"),
        (
            {"penalty": {"type": "categorical", "choices": ["l1", "l2"], "default": "l3"}},
            "default.penalty='l3' is outside",
        ),
    ],
)
def test_bad_declarations_name_the_key(change, message):
    with pytest.raises(BenchError) as raised:
        SearchSpace.from_config({**SPEC, **change})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_check_rejects_configs_outside_the_space(space):
    with pytest.raises(BenchError, match="missing"):
        space.check({"iterations": 100})
    with pytest.raises(BenchError, match=r"iterations=20000 is outside"):
        space.check({**space.default, "iterations": 20000})
    with pytest.raises(BenchError, match="expected a whole number"):
        space.check({**space.default, "iterations": 100.5})


def test_a_fixed_hyperparameter_is_in_every_configuration_but_not_searched():
    spec = {**SPEC, "iterations": {**SPEC["iterations"], "fixed": 1000}, "penalty": {**SPEC["penalty"], "fixed": "l1"}}
    space = SearchSpace.from_config(spec)
    assert space.names == list(SPEC) and space.fixed == {"iterations": 1000, "penalty": "l1"}
    assert "iterations" not in space.tuned and len(space) == len(SPEC) - 2
    assert space.n_encoded == SearchSpace.from_config(SPEC).n_encoded - 1 - 2
    assert space.default["iterations"] == 1000 and space.default["penalty"] == "l1"
    assert list(space.default) == space.names  # full configurations, in declaration order
    for configs in (
        space.sample(50, np.random.default_rng(4)),
        space.sobol(8, 0),
        space.decode(np.random.default_rng(5).uniform(size=(20, space.n_encoded))),
    ):
        assert all(c["iterations"] == 1000 and c["penalty"] == "l1" and list(c) == space.names for c in configs)
        assert [space.check(c) for c in configs] == configs
    partial = {k: v for k, v in space.default.items() if k not in space.fixed}
    assert space.check(partial) == space.default  # fixed values may be left out
    with pytest.raises(BenchError, match=r"^config.iterations=999: iterations is fixed at 1000$"):
        space.check({**space.default, "iterations": 999})


@pytest.mark.parametrize(
    ("fixed", "message"),
    [
        (2.5, "task.space.iterations.fixed=2.5: expected a whole number; allowed: iterations int [50, 10000, log]"),
        (20000, "task.space.iterations.fixed=20000 is outside iterations int [50, 10000, log]"),
        ("many", "task.space.iterations.fixed='many': expected a number; allowed: iterations int [50, 10000, log]"),
    ],
)
def test_a_fixed_value_outside_its_hyperparameter_is_refused_in_one_line(fixed, message):
    with pytest.raises(BenchError) as error:
        SearchSpace.from_config({**SPEC, "iterations": {**SPEC["iterations"], "fixed": fixed}})
    assert str(error.value) == message


def test_a_space_with_everything_fixed_is_refused():
    with pytest.raises(BenchError, match="at least one tuned hyperparameter"):
        SearchSpace.from_config({"x": {"type": "real", "low": 0, "high": 1, "default": 0.5, "fixed": 0.2}})
