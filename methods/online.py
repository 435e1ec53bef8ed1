"""Online hypergradients: the hyperparameters adapted during one training run, by one-step
hypergradients.

Training is the momentum SGD of ``bench.training``, with the hyperparameters of step t,
theta_t = (log alpha_t, logit gamma_t, log l2_t), changing between steps::

    g_t     = grad_w L_train(w_t, batch(t)) + l2_t * w_t
    v_{t+1} = gamma_t v_t - (1 - gamma_t) g_t
    w_{t+1} = w_t + alpha_t v_{t+1}

Before step t + 1 uses them, theta_t takes a meta-optimiser step (Adam, or SGD on the sign) on the
one-step hypergradient of step t's update, i.e. the derivative of a loss at w_{t+1} through
w_{t+1}'s dependence on theta_t alone:

- learning rate and momentum, hypergradient descent on the training loss (Baydin et al., ICLR
  2018): d/dtheta of L_train(w_{t+1}, batch(t+1)) + 0.5 sum l2_t w_{t+1}^2, which is
  g_{t+1} . dw_{t+1}/dtheta with dw_{t+1}/dlog alpha = alpha v_{t+1} and dw_{t+1}/dlogit gamma =
  alpha (v_t + g_t) gamma (1 - gamma): the next step's gradient, which training computes anyway;
- L2 penalties, the validation loss's one-step hypergradient (Luketina et al., ICML 2016, "T1-T2"):
  d/dlog l2_g of L_val(w_{t+1}) = grad_w L_val(w_{t+1}) . dw_{t+1}/dlog l2_g, with
  dw_{t+1}/dlog l2_g = -alpha (1 - gamma) l2_g w_t on the weights of group g: one validation
  gradient at steps ``validation_every``, 2 x ``validation_every``, ... (a run no longer than
  that: at its last update), each counted as a training step.

Each trial is one such run from w_0, with a fresh meta-optimiser; its configuration is where the
hyperparameters start, the next trial starts from where this one's ended (the record's
``theta_next``; ``final_learning_rate``, ``final_momentum``, ``final_l2``), and the incumbent's
retraining runs the same adaptation from its start on a fresh seed. A run that diverges is
rejected as in the other members (back to the last good start, half the meta step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from bench.errors import BenchError
from bench.protocols import DifferentiableTask, Evaluation, TrainingProblem
from bench.space import Config, SearchSpace
from bench.training import loss_gradient, penalty, validation_loss_gradient
from methods.hypergradient import CONTINUOUS, Hypergradient, HypergradientDescent, Hyperparameters


@dataclass(frozen=True)
class Step:
    """One update w_t -> w_{t+1} and what its one-step hypergradients need."""

    w: torch.Tensor  # w_t
    v: torch.Tensor  # v_t
    g: torch.Tensor  # g_t, the penalised gradient the update used
    theta: torch.Tensor  # theta_t, the hyperparameters it used
    lam: torch.Tensor  # their per-weight L2 coefficients (``bench.training.penalty``)
    w_next: torch.Tensor  # w_{t+1}
    v_next: torch.Tensor  # v_{t+1}


def update(
    problem: TrainingProblem, theta: torch.Tensor, w: torch.Tensor, v: torch.Tensor, g_data: torch.Tensor
) -> Step:
    """One momentum-SGD step from (w_t, v_t) with step t's unpenalised gradient ``g_data``: the
    arithmetic of ``bench.training.sgd_steps``."""
    alpha, gamma, l2 = Hyperparameters.from_tensor(theta, len(problem.loss_names)).values()  # weights: fixed
    lam = penalty(problem, l2)
    g = g_data + lam * w
    v_next = gamma * v - (1 - gamma) * g
    return Step(w, v, g, theta, lam, w + alpha * v_next, v_next)


def one_step_hypergradient(
    problem: TrainingProblem, step: Step, g_next: torch.Tensor, validation_gradient: torch.Tensor | None
) -> torch.Tensor:
    """d/dtheta_t of the one-step losses (see the module): entries 0, 1 from ``g_next``, the
    penalised training gradient at w_{t+1} (l2_t); entries 2.. from ``validation_gradient`` at
    w_{t+1}, zero when it is ``None`` (a step without a validation gradient)."""
    alpha, gamma, l2 = Hyperparameters.from_tensor(step.theta, len(problem.loss_names)).values()
    out = torch.zeros_like(step.theta)  # loss weights (fixed: online does not tune them) get 0
    out[0] = alpha * (g_next @ step.v_next)
    out[1] = alpha * gamma * (1 - gamma) * (g_next @ (step.v + step.g))
    if validation_gradient is not None:
        groups = problem.l2_groups
        per_weight = validation_gradient * step.w * (groups >= 0)
        per_group = step.w.new_zeros(len(l2)).index_add_(0, groups.clamp(min=0), per_weight)
        out[2 : 2 + len(l2)] = -alpha * (1 - gamma) * l2 * per_group
    return out


class OnlineHypergradient(HypergradientDescent):
    """Trials of one training run each, the hyperparameters adapted at every step (see the module)."""

    TUNES = CONTINUOUS
    WHY = (
        " (its rules adapt the learning rate and momentum on the training loss, which weights inside it would "
        "lower by going to 0, and the L2 penalties on the validation loss)"
    )

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        meta_optimizer: str = "adam",
        meta_step: float = 0.001,
        validation_every: int = 10,
    ) -> None:
        if not (isinstance(validation_every, int) and validation_every >= 1):
            raise BenchError(f"method.validation_every={validation_every!r}: must be a whole number, 1 or more")
        super().__init__(space, seed, meta_optimizer, meta_step)
        self.validation_every = validation_every

    def hypergradient(
        self, problem: TrainingProblem, hyper: Hyperparameters, meta_step: float | None = None
    ) -> Hypergradient:
        """One adapted training run from ``hyper`` (per-step optimiser at ``meta_step``, default the
        current one): the validation loss at w_T, the sum of the one-step hypergradients taken, and
        where the hyperparameters ended (``theta_next``)."""
        theta = hyper.as_tensor().clone()
        optimizer = self.meta_optimiser(theta, self.meta_step if meta_step is None else meta_step)
        tuned_l2 = "l2" in self.tuned
        total = torch.zeros_like(theta)
        w, v = problem.w0.clone(), torch.zeros_like(problem.w0)
        previous: Step | None = None
        validations = steps = 0
        every = self.validation_every  # steps every, 2 every, ...; a run no longer than that: its last update
        for t in range(problem.steps):
            g_data = loss_gradient(problem, w, problem.batch(t))
            if previous is not None:
                g_next = g_data + previous.lam * w
                check = tuned_l2 and (t % every == 0 or (problem.steps <= every and t == problem.steps - 1))
                if check:
                    validations += 1
                h = one_step_hypergradient(
                    problem, previous, g_next, validation_loss_gradient(problem, w)[1] if check else None
                )
                if bool(torch.isfinite(h).all()):
                    total += h
                    self.step(optimizer, theta, h)
            previous = update(problem, theta.detach().clone(), w, v, g_data)
            w, v = previous.w_next, previous.v_next
            steps += 1
            if not bool(torch.isfinite(w).all()):  # diverged: the rest of the run cannot recover
                break
        finite = bool(torch.isfinite(w).all())
        loss = float(problem.validation_loss(w)) if finite else math.nan
        return Hypergradient(loss, total, w, steps + validations, 0, theta_next=theta.detach().clone())

    def retrain(self, problem: TrainingProblem, hyper: Hyperparameters) -> tuple[torch.Tensor, int]:
        """The incumbent's retraining: the same adapted run from its start (at the meta step its trial
        ran with), on the fresh seed."""
        result = self.hypergradient(problem, hyper, self.retrain_meta_step)
        return result.w_final, result.cost_steps

    def advance(self, gradient: torch.Tensor, following: torch.Tensor | None) -> None:
        """The next trial starts where this one's hyperparameters ended (after a rejection: at the
        last good start, already restored)."""
        if following is not None:
            self.theta.copy_(following)

    def evaluate(self, task: DifferentiableTask, config: Config, seed: int) -> Evaluation:
        """As every member's, with where the hyperparameters ended in the trial's metrics."""
        evaluation = super().evaluate(task, config, seed)
        if "theta_next" not in evaluation.metrics or not bool(torch.isfinite(self.last.theta_next).all()):
            return evaluation  # a retraining, or a diverged run
        alpha, gamma, l2 = self.hyperparameters(self.last.theta_next).values()
        final = {"final_learning_rate": alpha, "final_momentum": gamma, "final_l2": math.exp(float(l2.log().mean()))}
        return replace(evaluation, metrics={**evaluation.metrics, **final})
