"""The hypergradient family beside DrMAD, each checked against an independent computation:
truncated reverse mode against the exact pass and finite differences of a truncated dependence;
implicit differentiation against the closed-form hypergradient of ridge regression and a direct
solve; online hypergradients against finite differences of the one-step losses; and the shared
meta-loop (what each member tunes, its records, the online trials' chaining)."""

import math

import pytest
import torch

from bench.budget import Budget
from bench.build import build
from bench.errors import BenchError
from bench.protocols import Evaluation, TrainingProblem
from bench.runner import RunSettings, run
from bench.training import loss_gradient, penalty, sgd_steps, validation_loss_gradient
from methods.forward import forward_hypergradient
from methods.hypergradient import Hyperparameters, MetaOptimiser, exact_hypergradient, train, truncated_hypergradient
from methods.implicit import conjugate_gradient, hessian_operator, implicit_hypergradient, largest_eigenvalue, neumann
from methods.online import one_step_hypergradient, update
from tests.helpers import TINY_FIXED, bench_config
from tests.methods.test_drmad import bikeshare_problem, hyper, tanh_problem

F64 = torch.float64
L2_ONLY = ["+task.space.learning_rate.fixed=0.1", "+task.space.momentum.fixed=0.9"]


# ------------------------------------------------------------------------------ truncated
@pytest.mark.parametrize("kind", ["tanh", "bikeshare"])
def test_truncated_with_k_equal_to_t_is_the_exact_pass_bit_for_bit(kind):
    problem = tanh_problem(steps=7) if kind == "tanh" else bikeshare_problem(iterations=30)[2]
    h = hyper(0.3, 0.6, [1e-2, 3e-3]) if kind == "tanh" else hyper(0.5, 0.8, [1e-3, 2e-3])
    exact = exact_hypergradient(problem, h)
    truncated = truncated_hypergradient(problem, h, points=problem.steps)
    assert torch.equal(truncated.gradient, exact.gradient)
    assert truncated.validation_loss == exact.validation_loss
    assert torch.equal(truncated.w_final, exact.w_final)
    assert truncated.cost_steps == exact.cost_steps


def train_switching(
    problem: TrainingProblem, early: Hyperparameters, late: Hyperparameters, switch: int
) -> torch.Tensor:
    """w_T with ``early`` for steps 0 .. switch-1 and ``late`` from then on."""
    w, v = problem.w0.clone(), torch.zeros_like(problem.w0)
    for start, stop, h in ((0, switch, early), (switch, problem.steps, late)):
        alpha, gamma, l2 = h.values()
        for w, v in sgd_steps(problem, alpha, gamma, penalty(problem, l2), w, v, start, stop):  # noqa: B007, B020
            pass
    return w


@pytest.mark.parametrize("points", [1, 3, 5])
def test_truncated_is_the_derivative_through_the_last_k_steps_only(points):
    """Finite differences with the hyperparameters perturbed in the last K steps only (the first
    T - K keep theta): what truncated reverse mode differentiates."""
    problem = tanh_problem(steps=8)
    h = hyper(0.3, 0.6, [1e-2, 3e-3])
    theta = h.as_tensor()
    expected = torch.zeros_like(theta)
    eps = 1e-5
    for i in range(len(theta)):
        losses = []
        for sign in (1, -1):
            shifted = theta.clone()
            shifted[i] += sign * eps
            w = train_switching(problem, h, Hyperparameters.from_tensor(shifted), problem.steps - points)
            losses.append(float(problem.validation_loss(w)))
        expected[i] = (losses[0] - losses[1]) / (2 * eps)
    got = truncated_hypergradient(problem, h, points=points)
    torch.testing.assert_close(got.gradient, expected, rtol=1e-5, atol=1e-9)
    assert got.cost_steps == problem.steps + 2 * points
    exact = exact_hypergradient(problem, h).gradient
    assert not torch.allclose(got.gradient, exact, rtol=1e-3)  # the truncation is a real approximation


# ------------------------------------------------------------------------------ forward
@pytest.mark.parametrize("kind", ["tanh", "bikeshare"])
def test_forward_mode_equals_the_exact_reverse_pass(kind):
    problem = tanh_problem(steps=7) if kind == "tanh" else bikeshare_problem(iterations=30)[2]
    h = hyper(0.3, 0.6, [1e-2, 3e-3]) if kind == "tanh" else hyper(0.5, 0.8, [1e-3, 2e-3])
    exact = exact_hypergradient(problem, h)
    forward = forward_hypergradient(problem, h)
    torch.testing.assert_close(forward.gradient, exact.gradient, rtol=1e-9, atol=1e-14)
    assert torch.equal(forward.w_final, exact.w_final) and forward.validation_loss == exact.validation_loss
    assert forward.cost_steps == problem.steps * 2 * 4  # a Hessian-vector product (and gradient) per entry per step
    only = forward_hypergradient(problem, h, tuned=torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64))
    assert only.gradient[1] == 0 and only.gradient[3] == 0
    torch.testing.assert_close(only.gradient[[0, 2]], exact.gradient[[0, 2]], rtol=1e-9, atol=1e-14)
    assert only.cost_steps == problem.steps * 2 * 2


def test_forward_mode_with_finite_difference_products_approximates_the_exact_pass_momentum_included():
    """hvp="finite_difference": the tangents' products by central differences, the training step from
    the true gradient (computed before the tangents, which the momentum tangent reads)."""
    problem, h = tanh_problem(steps=7), hyper(0.3, 0.6, [1e-2, 3e-3])
    exact = exact_hypergradient(problem, h)
    forward = forward_hypergradient(problem, h, hvp="finite_difference")
    assert torch.equal(forward.w_final, exact.w_final)  # the same training, bit for bit
    torch.testing.assert_close(forward.gradient, exact.gradient, rtol=1e-5, atol=1e-9)
    only_momentum = forward_hypergradient(
        problem, h, tuned=torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=F64), hvp="finite_difference"
    )
    torch.testing.assert_close(only_momentum.gradient[1], exact.gradient[1], rtol=1e-5, atol=1e-9)


# ------------------------------------------------------------------------------ implicit
def ridge_problem(steps: int = 3000, n: int = 40, d: int = 5) -> tuple[TrainingProblem, torch.Tensor, torch.Tensor]:
    """Linear regression with two L2 groups (features 0-2, 3-4), full-batch training: momentum SGD
    converges to the ridge solution, where the implicit function theorem is exact."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(n, d, generator=generator, dtype=F64)
    y = x @ torch.randn(d, generator=generator, dtype=F64) + 0.3 * torch.randn(n, generator=generator, dtype=F64)
    x_val = torch.randn(25, d, generator=generator, dtype=F64)
    y_val = x_val @ torch.randn(d, generator=generator, dtype=F64)

    def validation_loss(w):
        return ((x_val @ w - y_val) ** 2).mean()

    problem = TrainingProblem(
        w0=torch.zeros(d, dtype=F64),
        steps=steps,
        batch=lambda t: (x, y),
        train_loss=lambda w, b: ((b[0] @ w - b[1]) ** 2).mean(),
        validation_loss=validation_loss,
        l2_groups=torch.tensor([0, 0, 0, 1, 1]),
        l2_names=("first", "second"),
        score=lambda w: Evaluation(objective=float(validation_loss(w))),
    )
    return problem, x, y


def ridge_closed_form(problem: TrainingProblem, x: torch.Tensor, y: torch.Tensor, log_l2: torch.Tensor) -> torch.Tensor:
    """d L_val(w*(l2)) / d log l2 with w* = (2 X'X / n + diag(l2)) \\ (2 X'y / n), by autograd through the solve."""
    log_l2 = log_l2.clone().requires_grad_(True)
    n = len(y)
    a = 2 * x.T @ x / n + torch.diag(log_l2.exp()[problem.l2_groups])
    w = torch.linalg.solve(a, 2 * x.T @ y / n)
    (gradient,) = torch.autograd.grad(problem.validation_loss(w), log_l2)
    return gradient


@pytest.mark.parametrize("inverse, terms, products", [("neumann", 400, 410), ("cg", 5, 5)])
@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_implicit_equals_the_closed_form_hypergradient_of_ridge_regression(inverse, terms, products, momentum):
    """Ridge regression trained to convergence: the IFT is exact. Neumann's products include the 10
    power iterations of its default step."""
    problem, x, y = ridge_problem()
    h = hyper(0.3, momentum, [0.05, 0.4])
    got = implicit_hypergradient(problem, h, terms=terms, inverse=inverse)
    expected = ridge_closed_form(problem, x, y, h.log_l2)
    assert got.gradient[:2].tolist() == [0.0, 0.0]  # the IFT does not see the learning rate or momentum
    torch.testing.assert_close(got.gradient[2:], expected, rtol=1e-6, atol=1e-12)
    assert got.cost_steps == problem.steps + 2 * products


def test_implicit_at_its_default_settings_points_the_right_way_on_ridge_regression():
    """20 Neumann terms at the default step 1 / |lambda|_max: truncated, but each entry has the closed
    form's sign and the cosine is close to 1 (a step as small as alpha (1 - momentum) was not)."""
    problem, x, y = ridge_problem()
    for momentum in (0.5, 0.9):
        h = hyper(0.3, momentum, [0.05, 0.4])
        got = implicit_hypergradient(problem, h).gradient[2:]
        expected = ridge_closed_form(problem, x, y, h.log_l2)
        assert torch.equal(got.sign(), expected.sign())
        assert float(got @ expected / (got.norm() * expected.norm())) > 0.95


def test_the_neumann_series_converges_to_a_direct_solve_and_cg_reaches_it_in_p_steps():
    problem = tanh_problem(steps=5)
    w = problem.w0 + 0.1
    lam = torch.full_like(w, 2.0)  # a penalty on every weight that makes H positive definite
    batch = problem.batch(0)
    product = hessian_operator(problem, w, lam, batch, "autograd")
    matrix = torch.autograd.functional.hessian(lambda z: problem.train_loss(z, batch), w) + torch.diag(lam)
    vector = torch.linspace(-1, 1, len(w), dtype=F64)
    direct = torch.linalg.solve(matrix, vector)
    eigenvalues = torch.linalg.eigvalsh(matrix)
    assert eigenvalues.min() > 0
    step = 1 / float(eigenvalues.max())
    errors = [float((neumann(product, vector, i, step) - direct).norm()) for i in (0, 10, 100, 1000, 3000)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 1e-6 * float(direct.norm())
    solved, products = conjugate_gradient(product, vector, 2 * len(w))
    torch.testing.assert_close(solved, direct, rtol=1e-8, atol=1e-10)
    assert products <= 2 * len(w)
    assert largest_eigenvalue(product, w, 200) == pytest.approx(float(eigenvalues.abs().max()), rel=1e-6)


def test_conjugate_gradients_stop_at_non_positive_curvature():
    matrix = torch.diag(torch.tensor([1.0, -1.0], dtype=F64))
    solved, products = conjugate_gradient(lambda d: matrix @ d, torch.ones(2, dtype=F64), 10)
    assert products == 1 and solved.tolist() == [0.0, 0.0]  # the first direction has curvature 0


def test_implicit_refuses_a_space_that_leaves_the_learning_rate_or_momentum_free_in_one_line():
    with pytest.raises(BenchError, match=r"tunes only l2 .*also tunes learning_rate, momentum: fix them") as error:
        build(bench_config("task=bikeshare", "method=implicit_hypergrad", *TINY_FIXED))
    assert "\n" not in str(error.value) and "+task.space.learning_rate.fixed=" in str(error.value)
    with pytest.raises(BenchError, match="also tunes momentum:"):
        build(bench_config("task=bikeshare", "method=implicit_hypergrad", *TINY_FIXED, L2_ONLY[0]))
    for bad, allowed in (("method.inverse=lu", "neumann, cg"), ("method.terms=-1", "zero or more")):
        with pytest.raises(BenchError, match=allowed):
            build(bench_config("task=bikeshare", "method=implicit_hypergrad", *TINY_FIXED, *L2_ONLY, bad))


# ------------------------------------------------------------------------------ online
def test_each_online_update_is_the_finite_difference_of_its_one_step_loss():
    """Learning rate and momentum: the penalised training loss at w_{t+1} on batch t+1; the L2
    penalties: the validation loss at w_{t+1}; each through theta_t alone."""
    problem = tanh_problem(steps=6)
    theta = hyper(0.3, 0.6, [1e-2, 3e-3]).as_tensor()
    w = problem.w0 + 0.05
    v = 0.1 * torch.ones_like(w)
    t = 2
    g_data = loss_gradient(problem, w, problem.batch(t))

    def next_weights(shifted):
        return update(problem, shifted, w, v, g_data).w_next

    def training_loss(shifted):  # the one-step loss of the learning rate and momentum (l2 of theta_t)
        l2 = Hyperparameters.from_tensor(theta).values()[2]
        w_next = next_weights(shifted)
        return float(problem.train_loss(w_next, problem.batch(t + 1)) + 0.5 * (penalty(problem, l2) * w_next**2).sum())

    def validation(shifted):
        return float(problem.validation_loss(next_weights(shifted)))

    step = update(problem, theta, w, v, g_data)
    l2 = Hyperparameters.from_tensor(theta).values()[2]
    g_next = loss_gradient(problem, step.w_next, problem.batch(t + 1)) + penalty(problem, l2) * step.w_next
    got = one_step_hypergradient(problem, step, g_next, validation_loss_gradient(problem, step.w_next)[1])
    eps = 1e-5
    for i, loss in ((0, training_loss), (1, training_loss), (2, validation), (3, validation)):
        plus, minus = theta.clone(), theta.clone()
        plus[i] += eps
        minus[i] -= eps
        assert got[i] == pytest.approx((loss(plus) - loss(minus)) / (2 * eps), rel=1e-5, abs=1e-10), i
    assert got[2] != 0 and got[3] != 0
    without = one_step_hypergradient(problem, step, g_next, None)
    assert without[2:].tolist() == [0.0, 0.0] and torch.equal(without[:2], got[:2])


def test_online_trials_chain_and_record_where_the_hyperparameters_ended():
    experiment = build(bench_config("task=bikeshare", "method=online_hypergrad", "seed=0", *TINY_FIXED))
    result = run(
        experiment.task, experiment.method, Budget(evaluations=4), 0, settings=RunSettings(incumbent_repeats=1)
    )
    trials = result.trials
    for before, after in zip(trials, trials[1:], strict=False):
        metrics = before.evaluation.metrics
        assert after.config["learning_rate"] == pytest.approx(metrics["final_learning_rate"], rel=1e-6)
        assert after.config["momentum"] == pytest.approx(metrics["final_momentum"], rel=1e-6)
        assert after.evaluation.metrics["theta"] == metrics["theta_next"]
    assert trials[1].config["learning_rate"] != trials[0].config["learning_rate"]
    every = experiment.method.validation_every
    steps = 20 + sum(t % every == 0 for t in range(1, 20))  # T training steps and the validation gradients
    assert all(t.evaluation.cost_steps == steps for t in trials)
    assert result.final[0].cost_steps == steps  # the retraining adapts as the trial did


@pytest.mark.parametrize(
    "method, extra, tuned",
    [
        ("truncated_hypergrad", [], [1, 1, 1]),
        ("forward_hypergrad", ["+task.space.learning_rate.fixed=0.1"], [0, 1, 1]),
        ("online_hypergrad", [], [1, 1, 1]),
        ("implicit_hypergrad", L2_ONLY, [0, 0, 1]),
        ("online_hypergrad", ["+task.space.momentum.fixed=0.5"], [1, 0, 1]),
    ],
)
def test_every_member_records_the_meta_loops_metrics_and_moves_only_what_it_tunes(method, extra, tuned):
    start = "task.space.l2.default=1e-3"  # inside the range: a step on log l2 is not clamped away
    experiment = build(bench_config("task=bikeshare", f"method={method}", "seed=0", *TINY_FIXED, start, *extra))
    result = run(
        experiment.task, experiment.method, Budget(evaluations=3), 0, settings=RunSettings(incumbent_repeats=0)
    )
    first, last = result.trials[0], result.trials[-1]
    for trial in result.trials:
        metrics = trial.evaluation.metrics
        assert {"hyper_iteration", "meta_step", "hypergradient_norm", "theta", "hypergradient"} <= set(metrics)
        assert math.isfinite(metrics["hypergradient_norm"]) and metrics["hypergradient_norm"] > 0
    moved = [
        int(a != b) for a, b in zip(first.evaluation.metrics["theta"], last.evaluation.metrics["theta"], strict=True)
    ]
    assert moved == tuned


# ------------------------------------------------------------------------------ the shared meta-loop
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["adam", "sign"])
def test_the_meta_optimiser_is_torchs_adam_and_sign_sgd_bit_for_bit(kind, dtype):
    generator = torch.Generator().manual_seed(1)
    ours = torch.randn(4, generator=generator, dtype=dtype)
    theirs = ours.clone().requires_grad_(True)
    optimiser = MetaOptimiser(ours, kind, 0.05)
    reference = torch.optim.Adam([theirs], lr=0.05) if kind == "adam" else torch.optim.SGD([theirs], lr=0.05)
    for _ in range(200):
        gradient = torch.randn(4, generator=generator, dtype=dtype) * 10 ** float(
            torch.randint(-6, 3, (1,), generator=generator)
        )
        optimiser.step(gradient)  # sign-SGD takes the sign itself
        theirs.grad = gradient.sign() if kind == "sign" else gradient.clone()
        reference.step()
        assert torch.equal(ours, theirs.detach())


def test_an_online_run_that_adapts_nothing_is_the_plain_training_bit_for_bit():
    problem = tanh_problem(steps=9)
    experiment = build(bench_config("task=bikeshare", "method=online_hypergrad", *TINY_FIXED))
    method = experiment.method
    h = hyper(0.3, 0.6, [1e-2, 3e-3])
    method.start_meta_loop(h.as_tensor())
    method.mask.zero_()  # nothing tuned: every step of Adam is 0
    got = method.hypergradient(problem, h)
    assert torch.equal(got.w_final, train(problem, h)[0])
    assert torch.equal(got.theta_next, h.as_tensor())


def test_an_online_retraining_repeats_its_trial_at_the_meta_step_that_trial_ran_with():
    experiment = build(bench_config("task=bikeshare", "method=online_hypergrad", "seed=0", *TINY_FIXED))
    task, method = experiment.task, experiment.method
    result = run(task, method, Budget(evaluations=2), 0, settings=RunSettings(incumbent_repeats=0))
    first = result.trials[0]
    method.meta_step /= 2  # as a later rejection would
    again = method.evaluate(task, first.config, first.seed)
    assert again.objective == first.evaluation.objective


def test_a_first_trial_without_a_finite_hypergradient_and_a_fixed_learning_rate_stops_with_one_line():
    """Nothing to step back to and no learning rate to shrink: every next trial would repeat it."""
    experiment = build(bench_config("task=bikeshare", "method=implicit_hypergrad", *TINY_FIXED, *L2_ONLY))
    method = experiment.method
    config = method.ask(1)[0]
    method.start_meta_loop(torch.zeros(3))
    method.last_gradient = torch.full((3,), math.nan)
    with pytest.raises(BenchError, match=r"learning rate is fixed at 0\.1: nothing to step back to") as error:
        method.tell([config], [Evaluation(objective=math.inf, status="diverged")])
    assert "\n" not in str(error.value)
    drmad = build(bench_config("task=bikeshare", "method=drmad", *TINY_FIXED)).method  # its learning rate is tuned
    drmad.ask(1)
    drmad.start_meta_loop(torch.zeros(3))
    drmad.last_gradient = torch.full((3,), math.nan)
    drmad.tell([config], [Evaluation(objective=math.inf, status="diverged")])
    assert float(drmad.theta[0]) == pytest.approx(-math.log(2))  # shrinks the learning rate instead
