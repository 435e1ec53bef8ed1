import math

import numpy as np
import pytest
import torch
from botorch.test_functions import Branin, Hartmann

from bench.build import build
from bench.errors import BenchError
from tasks.synthetic import branin, hartmann6
from tests.helpers import bench_config

BRANIN_MINIMA = [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]
HARTMANN6_MINIMISER = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)


def test_functions_match_an_independent_implementation():
    """BoTorch's own definitions; its constants are built in float32, hence rtol 1e-6."""
    points = np.random.default_rng(0).uniform(size=(50, 6))
    reference = Hartmann(dim=6).to(torch.float64)(torch.tensor(points)).numpy()
    np.testing.assert_allclose([hartmann6(p) for p in points], reference, rtol=1e-6)
    corners = np.array([[-5.0, 0.0], [10.0, 15.0]])
    scaled = corners[0] + points[:, :2] * (corners[1] - corners[0])
    reference = Branin().to(torch.float64)(torch.tensor(scaled)).numpy()
    np.testing.assert_allclose([branin(p) for p in scaled], reference, rtol=1e-6)


def test_published_minima():
    for minimiser in BRANIN_MINIMA:
        assert branin(np.array(minimiser)) == pytest.approx(0.397887, abs=1e-6)
    assert hartmann6(np.array(HARTMANN6_MINIMISER)) == pytest.approx(-3.32237, abs=1e-5)


@pytest.mark.parametrize("name", ["branin", "hartmann6"])
def test_regret_is_noise_free_and_noise_comes_from_the_seed(name):
    task = build(bench_config(f"task={name}", "task.noise_std=0.5")).task
    config = task.space.default
    first, again, other = task.evaluate(config, 1), task.evaluate(config, 1), task.evaluate(config, 2)
    assert first == again and first.objective != other.objective
    assert first.test["regret"] == other.test["regret"] == pytest.approx(first.test["value"] - task.minimum)
    assert np.std([task.evaluate(config, s).objective for s in range(400)]) == pytest.approx(0.5, rel=0.1)


def test_simulated_cost_is_reported():
    task = build(bench_config("task=branin", "task.cost_seconds=60")).task
    assert task.evaluate(task.space.default, 0).cost_seconds == 60


def test_the_space_must_match_the_function():
    with pytest.raises(BenchError, match="must declare x1, x2, x3, x4, x5, x6"):
        build(bench_config("task=hartmann6", "~task.space.x6"))


def test_an_embedded_function_ignores_its_extra_inputs_declared_as_x1():
    task = build(bench_config("task=branin", "task.dimensions=5", "method=random")).task
    assert task.space.names == ["x1", "x2", "x3", "x4", "x5"]
    assert task.space.bounds["x5"] == task.space.bounds["x1"] == (-5.0, 10.0)
    assert task.space.default["x4"] == task.space.default["x1"]
    rng = np.random.default_rng(0)
    for config in task.space.sample(5, rng):
        other = {**config, "x3": -5.0, "x4": 10.0, "x5": 1.0}
        assert (
            task.evaluate(config, 0).objective
            == task.evaluate(other, 0).objective
            == branin(np.array([config["x1"], config["x2"]]))
        )
    with pytest.raises(BenchError, match=r"task.dimensions=1: must be a whole number of at least 2"):
        build(bench_config("task=branin", "task.dimensions=1", "method=random"))
