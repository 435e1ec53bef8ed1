import numpy as np
import pytest
import torch

from bench.budget import Budget
from bench.build import build
from bench.errors import BenchError
from bench.runner import RunSettings, run, trial_seed
from methods.random_search import RandomSearch
from tasks.bikeshare import (
    RUBRIC_TRAIN,
    RUBRIC_VALIDATION,
    predict,
    similar_shapes,
    train_mlp,
    train_mlp_batch,
    udacity_step,
)
from tests.helpers import TINY, bench_config

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")
BATCH_SPACE = ["task.space.iterations.high=400", "task.space.hidden_nodes.high=24"]
"""Short trainings of mixed widths and lengths (the batched test trains each twice)."""


@pytest.fixture(scope="module")
def task():
    return build(bench_config()).task


def test_training_step_matches_the_udacity_projects_own_unit_test():
    """``test_train`` and ``test_run`` of the project notebook: one record, learning rate 0.5."""
    inputs = torch.tensor([[0.5, -0.2, 0.1]], dtype=torch.float64)
    targets = torch.tensor([0.4], dtype=torch.float64)
    weights = (
        torch.tensor([[0.1, -0.2], [0.4, 0.5], [-0.3, 0.2]], dtype=torch.float64),
        torch.tensor([0.3, -0.1], dtype=torch.float64),
    )
    assert float(predict(weights, inputs)[0]) == pytest.approx(0.09998924, abs=1e-8)
    udacity_step(weights, inputs, targets, learning_rate=0.5)
    np.testing.assert_allclose(weights[1], [0.37275328, -0.03172939], atol=1e-8)
    np.testing.assert_allclose(
        weights[0], [[0.10562014, -0.20185996], [0.39775194, 0.50074398], [-0.29887597, 0.19962801]], atol=1e-8
    )


def test_training_step_is_gradient_descent_on_half_the_mean_squared_error():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 7, generator=generator, dtype=torch.float64)
    y = torch.randn(32, generator=generator, dtype=torch.float64)
    w1 = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    w2 = torch.randn(5, generator=generator, dtype=torch.float64)
    leaves = (w1.clone().requires_grad_(), w2.clone().requires_grad_())
    loss = 0.5 * ((predict(leaves, x) - y) ** 2).mean()
    gradients = torch.autograd.grad(loss, leaves)
    weights = (w1.clone(), w2.clone())
    udacity_step(weights, x, y, learning_rate=0.3)
    for updated, start, gradient in zip(weights, (w1, w2), gradients, strict=True):
        torch.testing.assert_close(updated, start - 0.3 * gradient)


def test_the_mean_predictor_scores_the_published_validation_mse(task):
    """The Udacity project's notes: a mean predictor scores about 1.37 validation MSE in standardised units."""
    _, train_y = task.train
    _, validation_y = task.validation
    assert float(((validation_y - train_y.mean()) ** 2).mean()) == pytest.approx(1.37, abs=0.02)


def test_a_published_student_configuration_meets_the_rubric_and_the_default_does_not(task):
    """Students reported 6000 / 0.5 / 20 -> train 0.058, validation 0.140."""
    student = [task.evaluate({"iterations": 6000, "learning_rate": 0.5, "hidden_nodes": 20}, s) for s in range(3)]
    train = np.median([e.metrics["train_mse"] for e in student])
    validation = np.median([e.objective for e in student])
    assert train == pytest.approx(0.058, abs=0.015) and validation == pytest.approx(0.140, abs=0.03)
    assert all(e.metrics["rubric"] for e in student)
    default = task.evaluate(task.space.default, 0)
    assert default.objective > 1.0 and not default.metrics["rubric"]


def test_evaluation_is_a_function_of_config_and_seed(task):
    config = {"iterations": 300, "learning_rate": 0.3, "hidden_nodes": 8}
    first, again, other = task.evaluate(config, 7), task.evaluate(config, 7), task.evaluate(config, 8)
    assert first == again and first.objective != other.objective
    assert first.cost_steps == 300 and first.ok
    assert first.metrics["rubric"] == (
        first.metrics["train_mse"] < RUBRIC_TRAIN and first.objective < RUBRIC_VALIDATION
    )


def test_describe_names_the_data_and_its_checksum(task):
    info = task.describe()
    assert info["sha256"] == "b03a2d02e8c10f435c43c7f0b358b7e34a003afea53dbc37f0183f2763295133"
    assert info["rows"] == {"train": 15435, "validation": 1440, "test": 504} and info["features"] == 56


def test_the_space_must_declare_the_three_hyperparameters():
    cfg = bench_config(*TINY, "~task.space.hidden_nodes")
    with pytest.raises(BenchError, match=r"missing \['hidden_nodes'\]"):
        build(cfg)


def batch_of_configs(space, q=10):
    """Random configurations of mixed widths and lengths (momentum and l2 free), one diverging."""
    configs = RandomSearch(space, 0).ask(q)
    configs[3] = {**configs[3], "learning_rate": 1e3}  # diverges within its first chunk of steps
    return configs, [trial_seed(7, i) for i in range(q)]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_a_batch_trained_together_equals_each_configuration_trained_alone(device):
    """Seed for seed, in float64 (in float32 a configuration at the edge of divergence turns the
    rounding of a batched product into visibly different training)."""
    experiment = build(bench_config(*BATCH_SPACE, "task.dtype=float64", f"device={device}"))
    task = experiment.task
    configs, seeds = batch_of_configs(task.space)
    assert len(similar_shapes(configs)) < len(configs)  # some are trained together
    together = task.evaluate_batch(configs, seeds)
    for config, seed, batched in zip(configs, seeds, together, strict=True):
        alone = task.evaluate(config, seed)
        assert (batched.status, batched.cost_steps) == (alone.status, alone.cost_steps)
        if alone.ok:
            assert batched.objective == pytest.approx(alone.objective, rel=1e-9)
            assert batched.test["mse"] == pytest.approx(alone.test["mse"], rel=1e-9)
            assert batched.metrics == pytest.approx(alone.metrics, rel=1e-9)
    assert [e.status for e in together].count("diverged") == 1
    # every network in one batch, whatever its shape: padding, lengths and divergence all in play
    x, y = task.train
    stacked = train_mlp_batch(
        x,
        y,
        configs=[{"momentum": 0.0, "l2": 0.0, **c} for c in configs],
        schedules=[task.schedule(seed) for seed in seeds],
        generators=[torch.Generator(device=device).manual_seed(seed) for seed in seeds],
    )
    for config, seed, (weights, steps) in zip(configs, seeds, stacked, strict=True):
        alone, alone_steps = train_mlp(
            x,
            y,
            **{k: config[k] for k in ("hidden_nodes", "learning_rate", "iterations", "momentum", "l2")},
            schedule=task.schedule(seed),
            generator=torch.Generator(device=device).manual_seed(seed),
        )
        assert steps == alone_steps and (weights is None) == (alone is None)
        if alone is not None:
            for w, w_alone in zip(weights, alone, strict=True):
                torch.testing.assert_close(w, w_alone, rtol=1e-9, atol=1e-12)


def test_a_run_with_batches_records_the_trials_of_one_without(tmp_path):
    experiment = build(bench_config(*BATCH_SPACE, "task.dtype=float64", "method=random"))

    def trials(vectorise):
        method = RandomSearch(experiment.task.space, 3)
        result = run(
            experiment.task, method, Budget(evaluations=10), 3, settings=RunSettings(batch_size=4, vectorise=vectorise)
        )
        return [(t.index, t.config, t.seed, t.evaluation.status, t.evaluation.objective) for t in result.trials]

    batched, sequential = trials(True), trials(False)
    assert [t[:4] for t in batched] == [t[:4] for t in sequential]
    assert [t[4] for t in batched] == pytest.approx([t[4] for t in sequential], rel=1e-9)
