"""Hypergradients checked against independent computations: central finite differences of the
trained validation loss, the exact reverse pass, and the black-box training loop."""

import math
from dataclasses import replace

import pytest
import torch

from bench.budget import Budget
from bench.build import build
from bench.errors import BenchError
from bench.protocols import Evaluation, TrainingProblem
from bench.runner import RunSettings, run
from methods.drmad import drmad_hypergradient
from methods.hypergradient import Hyperparameters, exact_hypergradient, train
from tests.helpers import TINY, TINY_FIXED, bench_config

F64 = torch.float64


def tanh_problem(steps: int = 6, seed: int = 0) -> TrainingProblem:
    """A tiny float64 regression net (3-4-1, tanh, biases) with two L2 groups and unpenalised
    biases: small enough for finite differences, with every kind of hyperparameter in play."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 3, generator=generator, dtype=F64)
    y = torch.sin(x.sum(1))
    x_val, y_val = torch.randn(8, 3, generator=generator, dtype=F64), torch.randn(8, generator=generator, dtype=F64)
    shapes = [(3, 4), (4,), (4, 1), (1,)]  # W1, b1, W2, b2
    sizes = [math.prod(s) for s in shapes]

    def predict(w, inputs):
        w1, b1, w2, b2 = (p.reshape(s) for p, s in zip(torch.split(w, sizes), shapes, strict=True))
        return (torch.tanh(inputs @ w1 + b1) @ w2 + b2).squeeze(-1)

    def batch(t):
        rows = torch.tensor([(3 * t + k) % 12 for k in range(4)])
        return x[rows], y[rows]

    groups = torch.cat([torch.zeros(12), -torch.ones(4), torch.ones(4), -torch.ones(1)]).long()
    return TrainingProblem(
        w0=0.5 * torch.randn(sum(sizes), generator=generator, dtype=F64),
        steps=steps,
        batch=batch,
        train_loss=lambda w, b: ((predict(w, b[0]) - b[1]) ** 2).mean(),
        validation_loss=lambda w: ((predict(w, x_val) - y_val) ** 2).mean(),
        l2_groups=groups,
        l2_names=("layer1", "layer2"),
        score=lambda w: Evaluation(objective=float(((predict(w, x_val) - y_val) ** 2).mean())),
    )


def hyper(learning_rate: float, momentum: float, l2: list[float]) -> Hyperparameters:
    return Hyperparameters(
        torch.tensor(math.log(learning_rate), dtype=F64),
        torch.logit(torch.tensor(momentum, dtype=F64)),
        torch.log(torch.tensor(l2, dtype=F64)),
    )


def finite_differences(problem: TrainingProblem, h: Hyperparameters, eps: float = 1e-5) -> torch.Tensor:
    """Central differences of the trained validation loss in each entry of ``h.as_tensor()`` (the
    loss weights too, where the problem has them)."""
    theta, n_loss = h.as_tensor(), len(problem.loss_names)
    out = torch.zeros_like(theta)
    for i in range(len(theta)):
        losses = []
        for sign in (1, -1):
            shifted = theta.clone()
            shifted[i] += sign * eps
            w_final, _, _ = train(problem, Hyperparameters.from_tensor(shifted, n_loss))
            losses.append(float(problem.validation_loss(w_final)))
        out[i] = (losses[0] - losses[1]) / (2 * eps)
    return out


def bikeshare_problem(iterations: int, granularity: str = "per_layer", hidden_nodes: int = 3, seed: int = 0):
    task = build(bench_config("task=bikeshare", "method=random", "task.dtype=float64")).task
    config = {**task.space.default, "iterations": iterations, "hidden_nodes": hidden_nodes}
    return task, config, task.training_problem(config, seed, granularity)


def text_rnn_problem(steps: int, cell: str = "gru", granularity: str = "per_layer", seed: int = 0):
    """A tiny float64 GRU / LSTM on rotten_tomatoes (vocabulary of 50, 3 units, batches of 4 texts
    with input noise), cut to ``steps`` steps: small enough for finite differences."""
    task = build(
        bench_config("task=text_rnn", "method=random", "task.dtype=float64", "task.max_vocabulary=50", "device=cpu")
    ).task
    config = {**task.space.default, "cell": cell, "embedding_size": 2, "hidden_units": 3, "batch_size": 4}
    config["input_noise"] = 0.3
    return replace(task.training_problem(config, seed, granularity), steps=steps)


@pytest.mark.parametrize("hvp", ["autograd", "func", "finite_difference"])
@pytest.mark.parametrize("kind", ["tanh", "bikeshare", "text_rnn_gru", "text_rnn_lstm"])
def test_exact_hypergradient_equals_central_finite_differences(kind, hvp):
    """Every kind: log learning rate, logit momentum, and each L2 group (relative error < 1e-4),
    with either Hessian-vector product."""
    if kind == "tanh":
        problem, h = tanh_problem(), hyper(0.3, 0.6, [1e-2, 3e-2])
    elif kind == "bikeshare":
        problem, h = bikeshare_problem(iterations=8)[2], hyper(0.5, 0.7, [1e-2, 5e-2])
    else:
        problem = text_rnn_problem(steps=5, cell=kind.rsplit("_", 1)[1])
        h = hyper(0.5, 0.7, [1e-2 * (k + 1) for k in range(len(problem.l2_names))])
    exact = exact_hypergradient(problem, h, hvp).gradient
    reference = finite_differences(problem, h)
    assert reference.abs().min() > 1e-7  # every hyperparameter moves the loss: the check has teeth
    torch.testing.assert_close(exact, reference, rtol=1e-4, atol=1e-9)


def test_drmad_is_exact_when_the_trajectory_is_a_line():
    """T = 1: w_0 -> w_1 is a straight line, so DrMAD's reverse pass must equal the exact one."""
    for problem in (
        tanh_problem(steps=1),
        bikeshare_problem(iterations=1, granularity="per_unit")[2],
        text_rnn_problem(steps=1, cell="lstm", granularity="per_unit"),
    ):
        h = hyper(0.3, 0.6, [1e-2] * len(problem.l2_names))
        exact = exact_hypergradient(problem, h)
        drmad = drmad_hypergradient(problem, h)
        torch.testing.assert_close(drmad.gradient, exact.gradient, rtol=1e-10, atol=1e-14)
        assert drmad.validation_loss == exact.validation_loss


def test_a_checkpointed_exact_pass_gives_the_same_numbers_for_one_more_forward_pass():
    problem = text_rnn_problem(steps=10, cell="lstm")
    h = hyper(0.5, 0.7, [1e-2, 2e-2, 3e-2, 4e-2])
    stored, recomputed = exact_hypergradient(problem, h), exact_hypergradient(problem, h, memory_bytes=0)
    assert torch.equal(stored.gradient, recomputed.gradient) and torch.equal(stored.w_final, recomputed.w_final)
    assert (stored.forward_steps, recomputed.forward_steps) == (10, 20)


def test_the_finite_difference_hvp_matches_double_backward_in_float32():
    """DrMAD's reverse pass on a float32 GRU with either product: the same hypergradient to 1e-3."""
    task = build(bench_config("task=text_rnn", "method=random", "task.max_vocabulary=300", "device=cpu")).task
    config = {**task.space.default, "cell": "gru", "embedding_size": 8, "hidden_units": 8, "batch_size": 16}
    problem = replace(task.training_problem({**config, "l2": 1e-3}, 0, "per_layer"), steps=30)
    h = Hyperparameters(
        torch.tensor(math.log(0.5)), torch.logit(torch.tensor(0.9)), torch.full((len(problem.l2_names),), -7.0)
    )
    reference = drmad_hypergradient(problem, h).gradient
    difference = drmad_hypergradient(problem, h, hvp="finite_difference").gradient
    assert float((difference - reference).norm() / reference.norm()) < 1e-3


def test_drmad_approximates_exact_on_a_short_bikeshare_run():
    """T = 50 from the default weights: not a line, but close to one; cosine well above 0.9."""
    problem = bikeshare_problem(iterations=50, hidden_nodes=4)[2]
    h = hyper(0.3, 0.5, [1e-3, 1e-3])
    exact, drmad = exact_hypergradient(problem, h).gradient, drmad_hypergradient(problem, h).gradient
    assert float(exact @ drmad / (exact.norm() * drmad.norm())) > 0.9
    assert not torch.allclose(exact, drmad)  # an approximation, not the same computation


def test_drmad_reverse_points_count_hessian_vector_products():
    problem = bikeshare_problem(iterations=20)[2]
    h = hyper(0.3, 0.5, [1e-3, 1e-3])
    assert drmad_hypergradient(problem, h, points=2).cost_steps == 20 + 2 * 2
    assert exact_hypergradient(problem, h).cost_steps == 20 + 2 * 20
    with pytest.raises(BenchError, match="reverse_points=30"):
        drmad_hypergradient(problem, h, points=30)


def test_the_pure_training_is_the_black_box_training():
    """The problem a hypergradient method differentiates trains exactly what task.evaluate trains."""
    task, config, _ = bikeshare_problem(iterations=1)
    config = {**config, "iterations": 300, "hidden_nodes": 5, "momentum": 0.7, "l2": 1e-2, "learning_rate": 0.4}
    problem = task.training_problem(config, 5)
    w_final, _, _ = train(problem, hyper(0.4, 0.7, [1e-2]))
    assert problem.score(w_final).objective == pytest.approx(task.evaluate(config, 5).objective, rel=1e-12)


@pytest.mark.parametrize("method", ["drmad", "exact_hypergrad"])
def test_hyper_iterations_record_trials_and_lower_the_validation_loss(method):
    experiment = build(bench_config("task=bikeshare", f"method={method}", "seed=0", *TINY_FIXED))
    result = run(
        experiment.task, experiment.method, Budget(evaluations=6), 0, settings=RunSettings(incumbent_repeats=1)
    )
    assert len(result.trials) == 6
    assert [t.evaluation.metrics["hyper_iteration"] for t in result.trials] == list(range(6))
    assert all(t.config["hidden_nodes"] == 2 and t.config["iterations"] == 20 for t in result.trials)
    assert result.trials[0].config == experiment.task.space.default | {"momentum": 1e-3}
    objectives = [t.evaluation.objective for t in result.trials]
    assert min(objectives[1:]) < objectives[0]
    steps = 20 + 2 * 20  # a forward pass and T Hessian-vector products
    assert all(t.evaluation.cost_steps == steps for t in result.trials)
    assert result.final[0].cost_steps == 20  # the incumbent's retraining: forward only


def test_a_diverged_hyper_iteration_is_rejected_and_halves_the_meta_step():
    """Start at a learning rate that blows the weights up: the step is rejected, the run goes on."""
    experiment = build(
        bench_config(
            "task=bikeshare",
            "method=drmad",
            *TINY,
            "task.space.learning_rate.high=1000",
            "task.space.learning_rate.default=1000",
            "+task.space.iterations.fixed=60",
            "+task.space.hidden_nodes.fixed=2",
        )
    )
    result = run(
        experiment.task, experiment.method, Budget(evaluations=5), 0, settings=RunSettings(incumbent_repeats=0)
    )
    first, second = result.trials[0].evaluation, result.trials[1].evaluation
    assert first.status == "diverged"
    assert second.metrics["meta_step"] == first.metrics["meta_step"] / 2
    assert result.trials[1].config["learning_rate"] < result.trials[0].config["learning_rate"]
    assert len(result.trials) == 5


def test_hypergradient_methods_need_a_differentiable_task():
    with pytest.raises(BenchError, match="lacks learning_rate, momentum, l2"):
        build(bench_config("task=branin", "method=drmad"))


def test_a_space_that_leaves_a_discrete_hyperparameter_free_is_refused_in_one_line():
    with pytest.raises(BenchError) as error:
        build(bench_config("task=bikeshare", "method=drmad", *TINY))
    assert str(error.value) == (
        "method DrMAD tunes only learning_rate, momentum, l2, but the task's space also tunes iterations, "
        "hidden_nodes: fix them for every method alike, e.g. +task.space.iterations.fixed=20 "
        "+task.space.hidden_nodes.fixed=2"
    )


def test_the_space_decides_what_is_tuned_and_the_first_adam_step_is_the_meta_step():
    """learning_rate fixed in the space: it never moves; momentum and l2 take Adam steps, whose first
    step is meta_step times the hypergradient's sign in log / logit coordinates."""
    experiment = build(
        bench_config(
            "task=bikeshare",
            "method=exact_hypergrad",
            *TINY_FIXED,
            "+task.space.learning_rate.fixed=0.3",
            "task.space.momentum.default=0.5",
            "task.space.l2.default=1e-3",
            "method.meta_step=0.1",
        )
    )
    method = experiment.method
    result = run(experiment.task, method, Budget(evaluations=1), 0, settings=RunSettings(incumbent_repeats=0))
    first, (second,) = result.trials[0].config, method.ask(1)
    assert first["learning_rate"] == second["learning_rate"] == 0.3
    gradient = method.good_gradient.double()  # the first hyper-iteration's hypergradient, accepted
    first_step = (
        -0.1 * gradient / (gradient.abs() + 1e-8)
    )  # Adam's first step: m_hat / (sqrt(v_hat) + eps) = g / (|g| + eps)
    logit = lambda m: math.log(m / (1 - m))  # noqa: E731
    assert logit(second["momentum"]) - logit(first["momentum"]) == pytest.approx(float(first_step[1]), rel=1e-4)
    assert math.log(second["l2"]) - math.log(first["l2"]) == pytest.approx(float(first_step[2]), rel=1e-4)


def test_momentum_fixed_at_zero_stays_zero():
    experiment = build(bench_config("task=bikeshare", "method=drmad", *TINY_FIXED, "+task.space.momentum.fixed=0"))
    result = run(
        experiment.task, experiment.method, Budget(evaluations=3), 0, settings=RunSettings(incumbent_repeats=0)
    )
    assert [t.config["momentum"] for t in result.trials] == [0.0] * 3
    assert all(t.evaluation.ok for t in result.trials)
    assert len({t.config["learning_rate"] for t in result.trials}) == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")
@pytest.mark.parametrize("method", ["drmad", "exact_hypergrad"])
def test_hyper_iterations_on_cuda_keep_the_task_device_and_match_the_cpu(method):
    def hyper_iterations(device):
        experiment = build(
            bench_config("task=bikeshare", f"method={method}", "seed=0", f"device={device}", *TINY_FIXED)
        )
        result = run(
            experiment.task, experiment.method, Budget(evaluations=3), 0, settings=RunSettings(incumbent_repeats=1)
        )
        assert experiment.method.theta.device.type == torch.device(device).type  # hyperparameters follow the task
        assert experiment.method.last_gradient.device.type == torch.device(device).type
        return [t.evaluation.objective for t in result.trials], experiment.method.theta.cpu()

    (cpu_objectives, cpu_theta), (cuda_objectives, cuda_theta) = hyper_iterations("cpu"), hyper_iterations("cuda")
    assert cuda_objectives == pytest.approx(cpu_objectives, rel=1e-4)
    torch.testing.assert_close(cuda_theta, cpu_theta, rtol=1e-4, atol=1e-6)
