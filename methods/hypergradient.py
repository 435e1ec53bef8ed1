"""The hypergradient family's base: hypergradients through the training loop by reverse mode (the
exact reference and its truncated form), and the meta-loop every member of the family shares
(``methods/drmad.py``, ``methods/implicit.py``, ``methods/online.py`` and ``methods/forward.py``
hold the other members).

Training is momentum SGD (``bench.protocols.TrainingProblem``; Maclaurin et al. 2015, Alg. 1)::

    v_{t+1} = gamma v_t - (1 - gamma) g_t,   g_t = grad_w L_train(w_t, lambda, t)
    w_{t+1} = w_t + alpha v_{t+1}

with alpha = exp(log_learning_rate), gamma = sigmoid(logit_momentum) and L2 penalties
exp(log_l2). The hypergradient of the validation loss f(w_T) runs the MAD recursion backwards
(Maclaurin et al. 2015, Alg. 2), one step per training step t = T-1 .. 0::

    d_alpha  += dw . v_{t+1}                        (w_{t+1} = w_t + alpha v_{t+1})
    dv       += alpha dw
    d_gamma  += dv . (v_t + g_t)                    (v_{t+1} = gamma v_t - (1 - gamma) g_t)
    dw       -= (1 - gamma) H_t dv                  H_t = d2 L_train / dw dw at w_t
    d_lambda -= (1 - gamma) (d2 L_train / dlambda dw) dv
    dv       *= gamma

- ``exact_hypergradient`` keeps every w_t and v_t of the forward pass (memory O(T x P)): the
  reference. (MAD itself reverses the trajectory in exact arithmetic instead; storing it gives the
  same numbers.) Beyond ``trajectory_memory_mb`` it keeps checkpoints every sqrt(T) steps and
  recomputes each segment when the reverse pass needs it (memory O(sqrt(T) x P), one more forward
  pass), with the same numbers bit for bit.
- ``truncated_hypergradient`` (Shaban et al. 2019) runs the same recursion over the last K steps
  only, keeping w_{T-K} .. w_T (memory O(K x P)); with K = T it is the exact pass, bit for bit.

Loss hyperparameters (``TrainingProblem.loss_names``: one weight lambda_k per group of training
examples, L_train = mean_i lambda_{group(i)} loss_i) enter the recursion like the L2 penalties, by
the mixed term: (d2 L_train / dlambda_k dw) dv is the batch mean of [group(i) = k] grad loss_i . dv,
each example's directional derivative, from one forward-mode pass through the examples' losses
(``bench.training.loss_weight_products``, counted as ``LOSS_PRODUCT_STEPS`` training steps). Their
coordinates are the weights themselves (a linear scale, projected into the space's bounds).

Hessian-vector products act on the unpenalised loss; the penalty's second derivatives are written
out (it is quadratic in w). Three implementations, each checked against finite differences of the
trained validation loss: ``hvp="autograd"`` (default), reverse-over-reverse with
``torch.autograd.grad`` (double backward); ``hvp="func"``, forward-over-reverse with
``torch.func.jvp`` of ``torch.func.grad``; and ``hvp="finite_difference"``, the central difference
of two gradients at w +- eps v (as DARTS approximates its Hessian-vector product), whose mean is the
gradient at w, both with O(eps^2) error. Double backward through a recurrent network costs about
three gradients, the central difference two, so on text_rnn the difference makes a DrMAD
hyper-iteration cost about 3 training runs instead of 4-5 (``python -m bench.perf text``). On
networks as small as the bikeshare MLP the per-call overhead of ``torch.func``'s transforms
outweighs what they save, so the default is autograd (``python -m bench.perf hypergrad`` times the
whole passes of both; results/reference/perf_hypergrad_cpu.md).
Costs are counted in training steps: a forward step is 1, a Hessian-vector product 2.

``HypergradientDescent`` is the meta-loop: each hyper-iteration trains with the current
hyperparameters, computes the hypergradient and takes a meta-step (``MetaOptimiser``: Adam, or
sign-SGD as the DrMAD authors did); each hyper-iteration is one trial. It starts from the space's default configuration
and tunes the continuous hyperparameters the space leaves free; the others must be fixed in the
task's space (``task.space.<name>.fixed``), for every method alike.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.func import grad, jvp

from bench.errors import BenchError, Unsupported
from bench.protocols import (
    HYPERGRADIENT_HYPERPARAMETERS,
    LOSS_HYPERPARAMETERS,
    DifferentiableTask,
    Evaluation,
    TrainingProblem,
)
from bench.space import Config, SearchSpace
from bench.training import (
    loss_gradient,
    loss_weight_products,
    momentum_sgd,
    penalty,
    sgd_steps,
    validation_loss_gradient,
    with_loss_weights,
)

CONTINUOUS = HYPERGRADIENT_HYPERPARAMETERS
MOMENTUM_RANGE = (1e-3, 0.999)  # momentum is a logit: kept away from 0 and 1
FD_STEP = 1e-5
"""``hvp="finite_difference"``: the central difference moves the weights by this share of
``1 + |w|`` along the direction (float32 round-off limits it from below, the O(eps^2) error from
above; ``python -m bench.perf text`` reports the hypergradient's cosine with the autograd one)."""
HVP_STEPS = 2
"""Training steps a reverse step (a gradient and a Hessian-vector product at one point) counts as:
what it costs on the bo_vs_hypergrad MLP, checked by ``python -m bench.perf hypergrad --steps 2000
--hidden 16`` (its "reverse step / training step" column; results/reference/perf_hypergrad_t2000_h16_cpu.md)."""
LOSS_PRODUCT_STEPS = 1
"""Training steps the loss weights' mixed term costs per reverse step: one forward pass with
tangents through the examples' losses, counted as a training step (a forward and a backward pass)."""


@dataclass(frozen=True)
class Hyperparameters:
    """The continuous hyperparameters in the coordinates the hypergradient is taken in."""

    log_learning_rate: torch.Tensor  # ()
    logit_momentum: torch.Tensor  # ()
    log_l2: torch.Tensor  # (G,), one per L2 group
    loss_weights: torch.Tensor | None = None
    """``(D,)``: the training loss's weight of each group of examples, as values; ``None`` where the
    task has no loss hyperparameters."""

    def values(self) -> tuple[float, float, torch.Tensor]:
        """(alpha, gamma, l2 per group)."""
        return (
            float(self.log_learning_rate.exp()),
            float(torch.sigmoid(self.logit_momentum)),
            self.log_l2.exp(),
        )

    def as_tensor(self) -> torch.Tensor:
        """``(2 + G + D,)``: log learning rate, logit momentum, log L2 penalties, loss weights."""
        parts = [self.log_learning_rate.reshape(1), self.logit_momentum.reshape(1), self.log_l2]
        return torch.cat(parts if self.loss_weights is None else [*parts, self.loss_weights])

    @classmethod
    def from_tensor(cls, theta: torch.Tensor, loss_groups: int = 0) -> Hyperparameters:
        """The inverse of ``as_tensor``, with ``loss_groups`` = D loss weights at its end."""
        if not loss_groups:
            return cls(theta[0], theta[1], theta[2:])
        return cls(theta[0], theta[1], theta[2:-loss_groups], theta[-loss_groups:])

    def weighting(self, problem: TrainingProblem) -> TrainingProblem:
        """``problem`` training with these loss weights (itself where it has none)."""
        if self.loss_weights is None:
            if problem.loss_names:
                raise ValueError(f"no loss weights for the problem's {len(problem.loss_names)} loss groups")
            return problem
        return with_loss_weights(problem, self.loss_weights.to(problem.w0))


@dataclass
class Hypergradient:
    """The validation loss at w_T and its gradient in ``Hyperparameters`` coordinates."""

    validation_loss: float
    gradient: torch.Tensor  # (2 + G + D,), as Hyperparameters.as_tensor()
    w_final: torch.Tensor  # (P,)
    forward_steps: int
    reverse_hvps: int
    loss_products: int = 0
    """Mixed-term products of the loss weights (``LOSS_PRODUCT_STEPS`` training steps each)."""
    theta_next: torch.Tensor | None = None
    """Where the method's own rule moves the hyperparameters next (online hypergradients adapt them
    during training); ``None``: the meta-optimiser steps on ``gradient``."""

    @property
    def cost_steps(self) -> int:
        return self.forward_steps + HVP_STEPS * self.reverse_hvps + LOSS_PRODUCT_STEPS * self.loss_products


# ---------------------------------------------------------------------------------- forward
def train(
    problem: TrainingProblem, hyper: Hyperparameters, keep_trajectory: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Momentum SGD (``bench.training``) with ``hyper``; w_T and, if asked, every w_t and v_t."""
    alpha, gamma, l2 = hyper.values()
    return momentum_sgd(hyper.weighting(problem), alpha, gamma, l2, keep_trajectory)


def gradient_and_hvp(
    problem: TrainingProblem, w: torch.Tensor, batch: Any, direction: torch.Tensor, hvp: str = "autograd"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g, H direction)``, both ``(P,)``, of the unpenalised training loss at ``w``."""
    if hvp == "func":  # forward-over-reverse
        return jvp(lambda x: grad(problem.train_loss)(x, batch), (w,), (direction,))
    if hvp == "finite_difference":  # two gradients (DARTS, Liu et al. 2019, eq. 8), O(eps^2) error
        norm = float(direction.norm())
        if norm == 0:
            return loss_gradient(problem, w, batch), torch.zeros_like(w)
        eps = FD_STEP * (1 + float(w.norm())) / norm  # the step moves w by FD_STEP of (1 + |w|)
        plus = loss_gradient(problem, w + eps * direction, batch)
        minus = loss_gradient(problem, w - eps * direction, batch)
        difference = plus - minus
        return minus.add_(difference, alpha=0.5), difference.div_(2 * eps)
    with torch.enable_grad():  # reverse-over-reverse
        leaf = w.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(problem.train_loss(leaf, batch), leaf, create_graph=True)
        (h,) = torch.autograd.grad(g, leaf, direction, allow_unused=True)
    return g.detach(), torch.zeros_like(w) if h is None else h


# ---------------------------------------------------------------------------------- reverse
def reverse(
    problem: TrainingProblem,
    hyper: Hyperparameters,
    w_final: torch.Tensor,
    points: Sequence[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]],
    hvp: str = "autograd",
) -> tuple[float, torch.Tensor]:
    """The MAD recursion over ``points`` = [(t, w_t, v_t, v_{t+1}), ...] in reverse order.

    Returns the validation loss at ``w_final`` and d loss / d (log alpha, logit gamma, log l2, loss
    weights); NaN for both when the forward pass diverged (no reverse pass is run then).
    """
    if not bool(torch.isfinite(w_final).all()):
        size = len(hyper.as_tensor())
        return math.nan, torch.full((size,), math.nan, dtype=w_final.dtype, device=w_final.device)
    problem = hyper.weighting(problem)
    alpha, gamma, l2 = hyper.values()
    lam = penalty(problem, l2)
    groups = problem.l2_groups
    n_groups = len(hyper.log_l2)
    loss, dw = validation_loss_gradient(problem, w_final)
    dw = dw.detach().clone()
    dv = torch.zeros_like(dw)
    d_alpha = dw.new_zeros(())
    d_gamma = dw.new_zeros(())
    d_lam = torch.zeros_like(dw)  # d loss / d lam_i per weight, summed into groups at the end
    d_loss = dw.new_zeros(len(problem.loss_names))  # d loss / d loss weight per group
    decay = 1 - gamma
    for t, w_t, v_t, v_next in points:  # in-place updates: the reverse pass allocates nothing per step
        d_alpha += dw @ v_next
        dv.add_(dw, alpha=alpha)
        batch = problem.batch(t)
        g_data, h_data = gradient_and_hvp(problem, w_t, batch, dv, hvp)
        g = g_data.addcmul_(lam, w_t)  # the penalised gradient g_t
        d_gamma += dv @ (v_t + g)
        if problem.loss_names:  # d/d weight_k of (g . dv)
            d_loss.add_(loss_weight_products(problem, w_t, batch, dv), alpha=-decay)
        dw.add_(h_data, alpha=-decay).addcmul_(lam, dv, value=-decay)  # dw -= (1 - gamma) H_t dv
        d_lam.addcmul_(w_t, dv, value=-decay)  # d/d lam_i of (g . dv) = w_i dv_i
        dv.mul_(gamma)
    per_group = dw.new_zeros(n_groups).index_add_(0, groups.clamp(min=0), d_lam * (groups >= 0))
    gradient = torch.cat(
        [
            (alpha * d_alpha).reshape(1),  # d / d log alpha
            (gamma * (1 - gamma) * d_gamma).reshape(1),  # d / d logit gamma
            l2 * per_group,  # d / d log l2
            d_loss,  # d / d loss weight (its own coordinates)
        ]
    )
    return loss, gradient


def reversed_over(
    problem: TrainingProblem, loss: float, gradient: torch.Tensor, w_final: torch.Tensor, forward: int, points: int
) -> Hypergradient:
    """The ``Hypergradient`` of a reverse pass over ``points`` steps after ``forward`` training steps:
    a Hessian-vector product per point, and the loss weights' mixed term where the task has them
    (none of either when the forward pass diverged)."""
    done = points if math.isfinite(loss) else 0
    return Hypergradient(loss, gradient, w_final, forward, done, done if problem.loss_names else 0)


def exact_hypergradient(
    problem: TrainingProblem, hyper: Hyperparameters, hvp: str = "autograd", memory_bytes: float = math.inf
) -> Hypergradient:
    """Reverse mode through the trajectory, the reference. The trajectory (every w_t and v_t, 2 x T x P
    values) is stored when it fits in ``memory_bytes``; otherwise only every ``ceil(sqrt(T))``-th
    (w_t, v_t) is kept and each segment is recomputed from its checkpoint when the reverse pass
    reaches it: the same numbers, bit for bit, for one more forward pass (counted in the steps)."""
    problem, steps = hyper.weighting(problem), problem.steps
    if 2 * steps * problem.w0.numel() * problem.w0.element_size() <= memory_bytes:
        w_final, ws, vs = train(problem, hyper, keep_trajectory=True)
        points = [(t, ws[t], vs[t], vs[t + 1]) for t in reversed(range(steps))]
        loss, gradient = reverse(problem, hyper, w_final, points, hvp)
        return reversed_over(problem, loss, gradient, w_final, steps, steps)
    alpha, gamma, l2 = hyper.values()
    lam = penalty(problem, l2)
    every = math.ceil(math.sqrt(steps))
    w, v = problem.w0.clone(), torch.zeros_like(problem.w0)
    checkpoints = {0: (w, v)}
    for t, (w, v) in enumerate(sgd_steps(problem, alpha, gamma, lam, w, v, 0, steps), start=1):  # noqa: B020
        if t % every == 0 and t < steps:
            checkpoints[t] = (w, v)
    recomputed = 0

    def points() -> Any:
        nonlocal recomputed
        for start in sorted(checkpoints, reverse=True):
            stop = min(start + every, steps)
            ws, vs = map(list, zip(checkpoints.pop(start), strict=True))
            for w_t, v_t in sgd_steps(problem, alpha, gamma, lam, ws[0], vs[0], start, stop):
                ws.append(w_t)
                vs.append(v_t)
            recomputed += stop - start
            for t in reversed(range(start, stop)):
                yield t, ws[t - start], vs[t - start], vs[t - start + 1]

    loss, gradient = reverse(problem, hyper, w, points(), hvp)
    return reversed_over(problem, loss, gradient, w, steps + recomputed, steps)


def truncated_hypergradient(
    problem: TrainingProblem, hyper: Hyperparameters, points: int | None = None, hvp: str = "autograd"
) -> Hypergradient:
    """Truncated reverse mode (Shaban et al. 2019): the exact recursion over the last ``points`` = K
    training steps only (default K = T), w_{T-K} .. w_T kept (memory O(K x P)). The steps before
    T - K are treated as constants: the hypergradient misses their contribution (for the learning
    rate and penalties, the early part of training), and is exact for K = T, bit for bit."""
    problem, steps = hyper.weighting(problem), problem.steps
    k = steps if points is None else points
    if not 1 <= k <= steps:
        raise BenchError(f"method.reverse_points={points}: must be between 1 and the number of steps {steps}")
    alpha, gamma, l2 = hyper.values()
    w, v = problem.w0.clone(), torch.zeros_like(problem.w0)
    window: deque[tuple[torch.Tensor, torch.Tensor]] = deque([(w, v)], maxlen=k + 1)  # (w_t, v_t), t >= T - K
    for w, v in sgd_steps(problem, alpha, gamma, penalty(problem, l2), w, v, 0, steps):  # noqa: B020
        window.append((w, v))
    kept = list(window)
    points_ = [(steps - k + j, kept[j][0], kept[j][1], kept[j + 1][1]) for j in reversed(range(k))]
    loss, gradient = reverse(problem, hyper, w, points_, hvp)
    return reversed_over(problem, loss, gradient, w, steps, k)


# ---------------------------------------------------------------------------------- meta-loop
class MetaOptimiser:
    """The meta-optimiser, stepping ``theta`` in place: Adam (Kingma and Ba 2015, betas (0.9,
    0.999), eps 1e-8), or SGD on the gradient's sign (sign-SGD, as the DrMAD authors). The arithmetic
    of ``torch.optim.Adam`` and ``torch.optim.SGD`` on one CPU tensor, bit for bit (a test checks it),
    without their per-call machinery: the online member steps once per training step, where that
    machinery cost as much as the training gradient. The same numbers on every device."""

    def __init__(self, theta: torch.Tensor, kind: str, lr: float) -> None:
        self.theta, self.kind, self.lr = theta, kind, lr
        self.steps = 0
        self.first, self.second = torch.zeros_like(theta), torch.zeros_like(theta)

    def step(self, gradient: torch.Tensor) -> None:
        if self.kind == "sign":
            self.theta.add_(gradient.sign(), alpha=-self.lr)
            return
        beta1, beta2 = 0.9, 0.999
        self.steps += 1
        self.first.lerp_(gradient, 1 - beta1)
        self.second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        step = float(self.steps)
        correction2 = (1 - beta2**step) ** 0.5
        denominator = (self.second.sqrt() / correction2).add_(1e-8)
        self.theta.addcdiv_(self.first, denominator, value=-(self.lr / (1 - beta1**step)))


META_OPTIMIZERS = ("adam", "sign")
HVPS = ("autograd", "func", "finite_difference")


class HypergradientDescent:
    """Hyper-iterations of a meta-optimiser on hypergradients; one trial per hyper-iteration.

    ``ask`` returns the configuration of the current hyperparameters (learning rate, momentum and
    the L2 penalty of each group the task's space declares, ``task.l2_granularity``); ``evaluate``
    trains it and computes the hypergradient; ``tell`` takes the meta-step (``torch.optim.Adam``, or
    ``torch.optim.SGD`` on the hypergradient's sign: sign-SGD, as the DrMAD authors). A non-finite
    loss or hypergradient rejects the step: the hyperparameters go back to the last finite point and
    the meta step size halves. The continuous hyperparameters stay inside the task's search space
    (projected steps).

    Resume: each trial records theta (its hyperparameters in these coordinates) and its
    hypergradient in its metrics; ``restore`` and ``tell`` rebuild the meta-optimiser's state from
    them step by step, bit for bit, without training again.

    The space decides what is tuned: the continuous hyperparameters it leaves free are moved by the
    meta-steps, those it fixes (``task.space.<name>.fixed``) keep their value. A space that leaves
    any other hyperparameter free is refused: black-box methods would tune it and this method
    could not, so the two would not compare on the same space.

    A member of the family declares what it can tune (``TUNES``) and overrides ``hypergradient``
    (the forward and reverse computation), and where its trial is not plain training plus a
    meta-step, ``retrain`` (what the incumbent's fresh-seed retraining runs) and ``advance`` (how
    the hyperparameters move after a trial); the meta-optimiser, step rejection, projection and
    resume are this class's, shared by every member.
    """

    TUNES: tuple[str, ...] = (*CONTINUOUS, *LOSS_HYPERPARAMETERS)
    """The hyperparameters this method can move; a space leaving any other free is refused."""
    WHY = ""
    """Why ``TUNES`` is what it is, for the refusal's one line (``""``: no reason needed)."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        meta_optimizer: str = "adam",
        meta_step: float = 0.1,
        reverse_points: int | None = None,
        reverse_fraction: float | None = None,
        hvp: str = "autograd",
        trajectory_memory_mb: float = 2048,
    ) -> None:
        if meta_optimizer not in META_OPTIMIZERS:
            raise BenchError(f"method.meta_optimizer={meta_optimizer!r}: allowed: {', '.join(META_OPTIMIZERS)}")
        if hvp not in HVPS:
            raise BenchError(f"method.hvp={hvp!r}: allowed: {', '.join(HVPS)}")
        if not trajectory_memory_mb >= 0:
            raise BenchError(f"method.trajectory_memory_mb={trajectory_memory_mb}: must be zero or more")
        if not meta_step > 0:
            raise BenchError(f"method.meta_step={meta_step}: must be positive")
        if reverse_fraction is not None and not 0 < reverse_fraction <= 1:
            raise BenchError(f"method.reverse_fraction={reverse_fraction}: must be in (0, 1]")
        if reverse_points is not None and reverse_points < 1:
            raise BenchError(f"method.reverse_points={reverse_points}: must be at least 1, or null for K = T")
        name = type(self).__name__
        missing = [n for n in CONTINUOUS if not space.declares(n)]
        if missing:
            raise Unsupported(
                f"method {name} tunes {', '.join(CONTINUOUS)}; the task's space lacks {', '.join(missing)}"
            )
        untunable = list(dict.fromkeys(space.declared(n) for n in space.tuned if space.declared(n) not in self.TUNES))
        if untunable:
            fixes = " ".join(f"+task.space.{n}.fixed={space.default[space.members(n)[0]]!r}" for n in untunable)
            tunable = [n for n in self.TUNES if space.declares(n)]
            raise Unsupported(
                f"method {name} tunes only {', '.join(tunable)}{self.WHY}, but the task's space also tunes "
                f"{', '.join(untunable)}: fix them for every method alike, e.g. {fixes}"
            )
        self.space, self.seed = space, seed
        self.meta_optimizer, self.meta_step = meta_optimizer, meta_step
        self.reverse_points, self.reverse_fraction, self.hvp = reverse_points, reverse_fraction, hvp
        self.trajectory_memory_mb = trajectory_memory_mb
        self.tuned = tuple(n for n in CONTINUOUS if space.members(n)[0] in space.tuned)
        self.l2_names = space.members("l2")  # one per L2 group of the task, the space's names for them
        declared = [n for n in LOSS_HYPERPARAMETERS if space.declares(n)]
        self.loss_names = space.members(declared[0]) if declared else ()  # one per loss group of the task
        self.tuned += tuple(n for n in declared if space.members(n)[0] in space.tuned)
        logged = [d.name for d in space.dimensions if d.name in self.loss_names and d.prior != "uniform"]
        if logged:
            raise Unsupported(
                f"task.space.{space.declared(logged[0])}: method {name} steps loss weights on their own linear scale; "
                "declare them without log"
            )
        self.start = dict(space.default)
        if "momentum" in self.tuned:  # momentum is a logit: start inside its range
            self.start["momentum"] = min(max(self.start["momentum"], MOMENTUM_RANGE[0]), MOMENTUM_RANGE[1])
        self.theta: torch.Tensor | None = None  # Hyperparameters.as_tensor(), set at the first evaluation
        self.optimizer: MetaOptimiser | None = None
        self.low: torch.Tensor | None = None  # theta's bounds (``bounds``)
        self.high: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None  # 1 where theta is tuned, 0 where the space fixes it
        self.good: torch.Tensor | None = None  # the last theta with a finite loss and hypergradient
        self.good_gradient: torch.Tensor | None = None
        self.iteration = 0
        self.pending: Config | None = None
        self.last: Hypergradient | None = None
        self.last_gradient: torch.Tensor | None = None  # what tell steps on: the last trial's hypergradient
        self.last_next: torch.Tensor | None = None  # the last trial's Hypergradient.theta_next
        self.history: dict[tuple[Any, ...], tuple[torch.Tensor, float]] = {}  # config -> (theta, meta step) it ran with
        self.retrain_meta_step = meta_step  # the meta step of the trial a retraining repeats

    # ------------------------------------------------------------------ ask / evaluate / tell
    def ask(self, n: int) -> list[Config]:
        self.pending = self.space.check(
            self.start if self.theta is None else self.config(self.theta), where=type(self).__name__
        )
        return [self.pending]

    def evaluate(self, task: DifferentiableTask, config: Config, seed: int) -> Evaluation:
        problem, theta, retraining = self._prepare(task, config, seed)
        hyper = self.hyperparameters(theta.to(problem.w0))
        tic = time.perf_counter()
        if retraining:  # the incumbent's fresh-seed retraining
            w_final, cost_steps = self.retrain(problem, hyper)
            return replace(problem.score(w_final), cost_steps=cost_steps)
        self.last = self.hypergradient(problem, hyper)
        self.last_gradient, self.last_next = self.last.gradient, self.last.theta_next
        evaluation = problem.score(self.last.w_final)
        metrics = {
            **evaluation.metrics,
            "hyper_iteration": self.iteration,
            "meta_step": self.meta_step,
            "hypergradient_norm": float(self.last.gradient.norm()),
            "hypergradient_finite": bool(torch.isfinite(self.last.gradient).all()),
            "hypergradient_seconds": time.perf_counter() - tic,
            # the meta-state a resumed run restores (``restore``): theta in its own coordinates and its hypergradient
            "theta": theta.tolist(),
            "hypergradient": self.last.gradient.tolist(),
        }
        if self.last.theta_next is not None:  # the hyperparameters the method's own rule ended at
            metrics["theta_next"] = self.last.theta_next.tolist()
        if len(hyper.log_l2) > 1:
            l2 = hyper.log_l2.exp()
            metrics.update(l2_min=float(l2.min()), l2_median=float(l2.median()), l2_max=float(l2.max()))
        if hyper.loss_weights is not None and len(hyper.loss_weights) > 1:
            weights = hyper.loss_weights
            metrics.update(
                loss_weight_min=float(weights.min()),
                loss_weight_median=float(weights.median()),
                loss_weight_max=float(weights.max()),
            )
        return replace(evaluation, metrics=metrics, cost_steps=self.last.cost_steps)

    def restore(self, task: DifferentiableTask, config: Config, seed: int, evaluation: Evaluation) -> None:
        """Take the state ``evaluate(task, config, seed)`` would have left, from its recorded
        ``evaluation`` (a resumed run's record, or a trial trained in a worker process): the
        hyperparameters must be the recorded ones, and ``tell`` gets the recorded hypergradient."""
        try:
            _, theta, retraining = self._prepare(task, config, seed)
        except Exception:
            if evaluation.status == "failed":  # the trial failed the same way: evaluate left no state either
                return
            raise
        if retraining:
            return
        recorded = evaluation.metrics.get("theta")
        if recorded is not None and _tensor(recorded, theta).tolist() != theta.tolist():
            raise BenchError(
                f"cannot resume {type(self).__name__}: at hyper-iteration {self.iteration} its hyperparameters are "
                f"{theta.tolist()}, the record has {recorded}: the record was made with other settings"
            )
        gradient = evaluation.metrics.get("hypergradient")
        self.last_gradient = None if gradient is None else _tensor(gradient, theta)
        following = evaluation.metrics.get("theta_next")
        self.last_next = None if following is None else _tensor(following, theta)

    def tell(self, configs: Sequence[Config], evaluations: Sequence[Evaluation]) -> None:
        evaluation = evaluations[-1]
        gradient = self.last_gradient
        self.iteration += 1
        following = self.last_next
        finite = gradient is not None and bool(torch.isfinite(gradient).all())
        if following is not None:
            finite = finite and bool(torch.isfinite(following).all())
        if evaluation.ok and finite:
            self.good, self.good_gradient = self.theta.clone(), gradient
            self.advance(gradient, following)
            return
        # reject: back to the last good point, half the step
        self.meta_step /= 2
        self.optimizer.lr = self.meta_step
        if self.good is None:  # nothing finite yet: shrink the learning rate instead
            if float(self.mask[0]) == 0:  # the space fixes it: every next trial would repeat this one
                raise BenchError(
                    f"method {type(self).__name__}: the first trial gave no finite loss and hypergradient, and the "
                    f"learning rate is fixed at {self.space.default['learning_rate']!r}: nothing to step back to; "
                    "fix a smaller learning rate"
                )
            self.theta[0] -= math.log(2) * float(self.mask[0])
            self.theta.copy_(self.project(self.theta))
            return
        self.theta.copy_(self.good)
        self.advance(self.good_gradient, None)

    def advance(self, gradient: torch.Tensor, following: torch.Tensor | None) -> None:
        """Move the hyperparameters after a trial: a meta-step on ``gradient`` (after a rejection,
        the last good point's hypergradient, at the halved step). ``following``: where the trial's
        own rule ended them (``Hypergradient.theta_next``), ``None`` after a rejection."""
        self.step(self.optimizer, self.theta, gradient)

    def step(self, optimizer: MetaOptimiser, theta: torch.Tensor, gradient: torch.Tensor) -> None:
        """One meta-optimiser step on ``theta`` (in place; ``optimizer`` holds it): fixed
        hyperparameters get no step; projected into the space."""
        optimizer.step((self.mask * gradient).to(theta.dtype))
        theta.clamp_(self.low, self.high)

    # ------------------------------------------------------------------ pieces
    def _prepare(
        self, task: DifferentiableTask, config: Config, seed: int
    ) -> tuple[TrainingProblem, torch.Tensor, bool]:
        """The training problem of a trial, the hyperparameters it trains with, and whether it is a
        retraining (of an earlier trial's configuration) rather than this hyper-iteration's trial.
        Starts the meta-loop at the first trial and records which theta each trial tried."""
        problem = task.training_problem(config, seed)
        if len(problem.l2_names) != len(self.l2_names):
            raise BenchError(
                f"method {type(self).__name__}: the task trains {len(problem.l2_names)} L2 groups but its space has "
                f"{len(self.l2_names)} l2 entries: a task must offer its groups as the space's (task.l2_granularity)"
            )
        if len(problem.loss_names) != len(self.loss_names):
            raise BenchError(
                f"method {type(self).__name__}: the task weighs {len(problem.loss_names)} groups of training examples "
                f"but its space has {len(self.loss_names)} loss_weight entries: a task must offer its groups as the "
                "space's"
            )
        retraining = self.pending is None or config != self.pending
        self.pending = None
        if self.theta is None:
            self.start_meta_loop(self.initial(config, problem).as_tensor())
        if retraining:
            theta, self.retrain_meta_step = self.history.get(self.key(config), (self.theta, self.meta_step))
            return problem, theta, True
        self.history[self.key(config)] = (self.theta.clone(), self.meta_step)
        return problem, self.theta, False

    def start_meta_loop(self, theta: torch.Tensor) -> None:
        """Hyperparameters, tuned mask and meta-optimiser, once the number of L2 groups is known."""
        self.theta = theta.detach().clone()
        n_loss = len(self.loss_names)
        tuned = [name in self.tuned for name in ("learning_rate", "momentum")]
        tuned += ["l2" in self.tuned] * (len(theta) - 2 - n_loss)
        tuned += [any(n in self.tuned for n in LOSS_HYPERPARAMETERS)] * n_loss
        self.mask = torch.tensor(tuned, dtype=theta.dtype, device=theta.device)
        self.low, self.high = self.bounds(len(theta), theta)
        self.optimizer = self.meta_optimiser(self.theta, self.meta_step)

    def meta_optimiser(self, theta: torch.Tensor, lr: float) -> MetaOptimiser:
        return MetaOptimiser(theta, self.meta_optimizer, lr)

    def hypergradient(self, problem: TrainingProblem, hyper: Hyperparameters) -> Hypergradient:
        """Forward and reverse pass: the validation loss at w_T and its hypergradient."""
        return exact_hypergradient(problem, hyper, self.hvp, self.trajectory_memory_mb * 2**20)

    def points(self, steps: int) -> int | None:
        """K, the reverse steps of a shortened pass, from ``reverse_points`` or ``reverse_fraction``
        (at most T); ``None``: K = T."""
        points = self.reverse_points
        if self.reverse_fraction is not None:
            points = max(1, round(self.reverse_fraction * steps))
        return None if points is None else min(points, steps)

    def retrain(self, problem: TrainingProblem, hyper: Hyperparameters) -> tuple[torch.Tensor, int]:
        """What the incumbent's fresh-seed retraining runs, (w_T, steps it cost): plain training.
        (A member whose trial is more than training runs it with ``retrain_meta_step``, the meta
        step of the trial it repeats.)"""
        return train(problem, hyper)[0], problem.steps

    @staticmethod
    def train_only(problem: TrainingProblem, hyper: Hyperparameters) -> torch.Tensor:
        """The forward pass alone (plain training), w_T: what ``bench.perf hypergrad`` compares to."""
        return train(problem, hyper)[0]

    def initial(self, config: Config, problem: TrainingProblem) -> Hyperparameters:
        like = {"dtype": problem.w0.dtype, "device": problem.w0.device}  # the task's dtype and device
        return Hyperparameters(
            torch.tensor(math.log(config["learning_rate"]), **like),
            torch.logit(torch.tensor(config["momentum"], **like)),
            torch.tensor([math.log(config[name]) for name in self.l2_names], **like),
            torch.tensor([float(config[name]) for name in self.loss_names], **like) if self.loss_names else None,
        )

    def hyperparameters(self, theta: torch.Tensor) -> Hyperparameters:
        """``theta`` (``Hyperparameters.as_tensor``) as hyperparameters, with this space's loss groups."""
        return Hyperparameters.from_tensor(theta, len(self.loss_names))

    def bounds(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(n,)`` lower and upper bounds of theta: the space's bounds of the tuned entries in theta's
        coordinates (momentum also inside MOMENTUM_RANGE), unbounded where the space fixes the value."""
        low, high = [-math.inf] * n, [math.inf] * n
        n_loss = len(self.loss_names)
        entries = {"learning_rate": range(0, 1), "momentum": range(1, 2), "l2": range(2, n - n_loss)}
        entries |= {name: range(n - n_loss, n) for name in LOSS_HYPERPARAMETERS}
        for name, indices in entries.items():
            if name not in self.tuned:
                continue
            a, b = self.space.bounds[self.space.members(name)[0]]  # the groups of an entry share its bounds
            if name == "momentum":
                a, b = max(a, MOMENTUM_RANGE[0]), min(b, MOMENTUM_RANGE[1])
                a, b = math.log(a / (1 - a)), math.log(b / (1 - b))
            elif name not in LOSS_HYPERPARAMETERS:  # loss weights: their own coordinates
                a, b = math.log(a), math.log(b)
            for k in indices:
                low[k], high[k] = a, b
        return tuple(torch.tensor(x, dtype=like.dtype, device=like.device) for x in (low, high))

    def project(self, theta: torch.Tensor) -> torch.Tensor:
        """Clamp the tuned entries into the space's bounds (momentum also into MOMENTUM_RANGE)."""
        return theta.clamp(self.low, self.high)

    def config(self, theta: torch.Tensor) -> Config:
        hyper = self.hyperparameters(theta)
        alpha, gamma, _ = hyper.values()
        l2 = [math.exp(float(log_l2)) for log_l2 in hyper.log_l2]  # in float64, as configurations are
        values = {"learning_rate": alpha, "momentum": gamma} | dict(zip(self.l2_names, l2, strict=True))
        if self.loss_names:
            values |= dict(zip(self.loss_names, hyper.loss_weights.tolist(), strict=True))
        values = {name: value for name, value in values.items() if self.space.declared(name) in self.tuned}
        bounds = self.space.bounds  # a dict built per call: once here, not once per entry (d = 5,000 at per_example)
        for name, value in values.items():  # exp(log(high)) may land an ulp outside
            low, high = bounds[name]
            values[name] = min(max(value, low), high)
        return self.space.check({**self.start, **values}, where=type(self).__name__)

    def key(self, config: Config) -> tuple[Any, ...]:
        return tuple(config[name] for name in self.space.names)


class ExactHypergradient(HypergradientDescent):
    """Hyper-iterations on the exact reverse-mode hypergradient (every w_t stored)."""


class TruncatedHypergradient(HypergradientDescent):
    """Hyper-iterations on truncated reverse-mode hypergradients (the last K steps; Shaban et al. 2019)."""

    def hypergradient(self, problem: TrainingProblem, hyper: Hyperparameters) -> Hypergradient:
        return truncated_hypergradient(problem, hyper, self.points(problem.steps), self.hvp)


def _tensor(values: Sequence[float | None], like: torch.Tensor) -> torch.Tensor:
    """A recorded list (JSON null for a non-finite value) as a tensor of ``like``'s dtype and device."""
    return torch.tensor([math.nan if v is None else v for v in values], dtype=like.dtype, device=like.device)
