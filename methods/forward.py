"""Forward-mode hypergradients (Franceschi, Donini, Frasconi and Pontil, ICML 2017, "Forward-HG"):
the derivative of the weights with respect to each hyperparameter, carried forward with the
training.

For each tuned entry k of theta = (log alpha, logit gamma, log l2_1 .. l2_G, loss weights
lambda_1 .. lambda_D), the tangents Z_t = dw_t/dtheta_k and U_t = dv_t/dtheta_k start at 0 (w_0
does not depend on theta) and follow the momentum-SGD step of ``bench.training`` differentiated
(lam: the per-weight L2 coefficients)::

    dg      = H_t Z_t + lam * Z_t + [k = log l2_g] l2_g w_t 1_g + [k = lambda_j] grad_w L_j(w_t)
    U_{t+1} = gamma U_t - (1 - gamma) dg + [k = logit gamma] gamma (1 - gamma) (v_t + g_t)
    Z_{t+1} = Z_t + alpha U_{t+1} + [k = log alpha] alpha v_{t+1}

and the hypergradient is grad_w L_val(w_T) . Z_T per entry: the exact hypergradient (the same as
reverse mode's, up to rounding), with memory O(n x P) for n tuned entries, whatever T, and n
Hessian-vector products per training step (the first also gives the step's training gradient; a
product counts 2 training steps, so a hyper-iteration costs 2nT): cheap for a few
hyperparameters, expensive for many (reverse mode is the other way round). Hyperparameters the
space fixes get no tangent. L_j is the batch mean of group j's examples' losses (the others count
0), one more gradient per loss weight per step (``bench.training.loss_weight_gradient``, counted as
a training step).
"""

from __future__ import annotations

import math

import torch

from bench.errors import BenchError, Unsupported
from bench.protocols import TrainingProblem
from bench.space import SearchSpace
from bench.training import loss_gradient, loss_weight_gradient, penalty, validation_loss_gradient
from methods.hypergradient import Hypergradient, HypergradientDescent, Hyperparameters, gradient_and_hvp


def forward_hypergradient(
    problem: TrainingProblem, hyper: Hyperparameters, tuned: torch.Tensor | None = None, hvp: str = "autograd"
) -> Hypergradient:
    """Train T steps carrying dw/dtheta_k for each entry k where ``tuned`` is nonzero (default: all);
    the others' entries are 0."""
    problem = hyper.weighting(problem)
    alpha, gamma, l2 = hyper.values()
    lam = penalty(problem, l2)
    groups = problem.l2_groups
    n_l2 = len(l2)
    n = 2 + n_l2 + len(problem.loss_names)
    entries = range(n) if tuned is None else [k for k in range(n) if float(tuned[k]) != 0]
    loss_entries = sum(k >= 2 + n_l2 for k in entries)  # each a gradient of its group's losses per step

    def forward_steps(steps: int) -> int:
        """Training gradients beyond the products: none where the first product's gradient trains
        (a product counts ``HVP_STEPS``, a gradient included), one per step otherwise."""
        return 0 if len(entries) and hvp != "finite_difference" else steps

    w, v = problem.w0.clone(), torch.zeros_like(problem.w0)
    z = {k: torch.zeros_like(w) for k in entries}
    u = {k: torch.zeros_like(w) for k in entries}
    exact_gradient = hvp != "finite_difference"  # its gradient is the mean of two at w +- eps d, not train()'s
    for t in range(problem.steps):
        batch = problem.batch(t)
        # finite-difference products give the mean of two gradients, not train()'s: the training gradient here
        g = None if exact_gradient else loss_gradient(problem, w, batch) + lam * w
        for k in entries:
            g_data, h = gradient_and_hvp(problem, w, batch, z[k], hvp)
            if g is None and exact_gradient:
                g = g_data + lam * w
            dg = h + lam * z[k]
            if 2 <= k < 2 + n_l2:  # d/dlog l2_g of lam * w: l2_g w on the weights of group g
                dg = dg + (groups == k - 2) * (l2[k - 2] * w)
            elif k >= 2 + n_l2:  # d/d weight_j of the training gradient: the gradient of group j's losses
                dg = dg + loss_weight_gradient(problem, w, batch, k - 2 - n_l2)
            u[k] = gamma * u[k] - (1 - gamma) * dg
            if k == 1:
                u[k] = u[k] + gamma * (1 - gamma) * (v + g)
        if g is None:  # nothing tuned (plain training): the training gradient
            g = loss_gradient(problem, w, batch) + lam * w
        v = gamma * v - (1 - gamma) * g
        w = w + alpha * v
        for k in entries:
            z[k] = z[k] + alpha * u[k]
            if k == 0:
                z[k] = z[k] + alpha * v
        if not bool(torch.isfinite(w).all()):
            nan = torch.full((n,), math.nan, dtype=w.dtype, device=w.device)
            return Hypergradient(math.nan, nan, w, forward_steps(t + 1), (t + 1) * len(entries), (t + 1) * loss_entries)
    loss, dw = validation_loss_gradient(problem, w)
    gradient = torch.zeros(n, dtype=w.dtype, device=w.device)
    for k in entries:
        gradient[k] = dw @ z[k]
    return Hypergradient(
        loss, gradient, w, forward_steps(problem.steps), problem.steps * len(entries), problem.steps * loss_entries
    )


class ForwardHypergradient(HypergradientDescent):
    """Hyper-iterations on forward-mode hypergradients (Franceschi et al. 2017): exact, memory
    independent of T, a Hessian-vector product per tuned hyperparameter per training step."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        meta_optimizer: str = "adam",
        meta_step: float = 0.2,
        hvp: str = "autograd",
        max_tangents: int = 64,
    ) -> None:
        super().__init__(space, seed, meta_optimizer, meta_step, hvp=hvp)
        if not (isinstance(max_tangents, int) and max_tangents >= 1):
            raise BenchError(f"method.max_tangents={max_tangents!r}: must be a whole number, 1 or more")
        if len(space.tuned) > max_tangents:
            raise Unsupported(
                f"method.max_tangents={max_tangents}: forward mode carries a tangent per tuned hyperparameter, each "
                f"a Hessian-vector product per training step, and this space tunes {len(space.tuned)}; use a "
                "reverse-mode member (drmad, exact_hypergrad, truncated_hypergrad) or raise method.max_tangents"
            )

    def hypergradient(self, problem: TrainingProblem, hyper: Hyperparameters) -> Hypergradient:
        return forward_hypergradient(problem, hyper, self.mask, self.hvp)
