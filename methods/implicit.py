"""Implicit differentiation (Lorraine, Vicol and Duvenaud, AISTATS 2020): the hypergradient at the
trained weights, as if they were the training objective's optimum.

At an optimum w*(lambda) of the penalised training loss L_train(w) + 0.5 sum_i l2_i w_i^2, the
implicit function theorem gives::

    dL_val/dlambda = - grad_w L_val(w*) . H^-1 . d2 L_train / (dw dlambda)

with H the penalised training loss's Hessian at w*. For an L2 penalty, d2 / (dw_i dl2_g) = w_i for
the weights i of group g, so dL_val/dl2_g = - sum_{i in g} (H^-1 grad_w L_val)_i w_i. The method
takes w* = w_T, the weights T steps of momentum SGD reach (``bench.training``), and approximates
the inverse-Hessian-vector product x = H^-1 u (u = grad_w L_val(w_T)) with ``terms`` = i
Hessian-vector products:

- ``inverse="neumann"`` (the paper's choice): x = eta sum_{j=0}^{i} (I - eta H)^j u, which converges
  to H^-1 u when 0 < eta lambda < 2 for every eigenvalue lambda of H; ``eta`` (``neumann_step``)
  defaults to 1 / |lambda|_max, estimated by ``POWER_ITERATIONS`` power-iteration products (counted
  in the cost), so no positive-curvature direction diverges. With i terms a direction of curvature
  lambda is resolved to within (1 - eta lambda)^i: low-curvature directions are cut off, the
  series' implicit regularisation (``python -m bench.perf agreement`` measures i = 10 and 50).
- ``inverse="cg"``: at most i iterations of conjugate gradients on H x = u (exact after P iterations
  when H is positive definite; stops where it meets non-positive curvature).

H is the Hessian on the training batch of the last step (a fixed operator for both), plus the
penalty's diagonal. A minibatch Hessian with fewer rows than weights is singular up to the penalty,
and near but not at a minimum it can be indefinite: the approximate inverse is what the paper
uses, not H^-1 of the whole training loss. Only what defines the optimum can be tuned this way: the
L2 penalties and the training loss's weights (d2 L_train / (dw dweight_k) is the batch mean of group
k's examples' loss gradients, so dL_val/dweight_k = -(that) . x, one forward-mode pass,
``bench.training.loss_weight_products``); the learning rate and momentum change the path to the
optimum, not the optimum, so a space that leaves them free is refused.
The products share one graph of the training gradient at w_T (``hessian_operator``), so each is one
backward pass through it, about one training step on the bikeshare MLP (``python -m bench.perf
hypergrad``). Cost in training steps: T forward steps and ``HVP_STEPS`` per Hessian-vector product,
as the other members of the family count them; memory O(P), whatever T.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bench.errors import BenchError
from bench.protocols import LOSS_HYPERPARAMETERS, TrainingProblem
from bench.space import SearchSpace
from bench.training import loss_weight_products, penalty, validation_loss_gradient
from methods.hypergradient import Hypergradient, HypergradientDescent, Hyperparameters, gradient_and_hvp, train

INVERSES = ("neumann", "cg")
POWER_ITERATIONS = 10
"""Hessian-vector products that estimate |lambda|_max of H for the Neumann step's default 1 / |lambda|_max."""


def hessian_operator(problem: TrainingProblem, w: torch.Tensor, lam: torch.Tensor, batch: Any, hvp: str) -> Any:
    """``d -> H d``: the penalised training loss's Hessian at ``w`` on ``batch``, ``lam`` the
    per-weight L2 coefficients (``bench.training.penalty``)."""

    if hvp != "autograd":

        def product(direction: torch.Tensor) -> torch.Tensor:
            return gradient_and_hvp(problem, w, batch, direction, hvp)[1] + lam * direction

        return product
    # H is one fixed operator here (one w, one batch): the gradient's graph is built once and each
    # product is one backward pass through it, not a forward pass and two backward passes.
    with torch.enable_grad():
        leaf = w.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(problem.train_loss(leaf, batch), leaf, create_graph=True)

    def retained(direction: torch.Tensor) -> torch.Tensor:
        if not g.requires_grad:  # the loss is linear in w: no curvature
            return lam * direction
        with torch.enable_grad():
            (h,) = torch.autograd.grad(g, leaf, direction, retain_graph=True, allow_unused=True)
        return (torch.zeros_like(w) if h is None else h) + lam * direction

    return retained


def neumann(product: Any, vector: torch.Tensor, terms: int, step: float) -> torch.Tensor:
    """eta sum_{j=0}^{terms} (I - eta H)^j vector, ``terms`` products with H."""
    term = vector.clone()
    total = vector.clone()
    for _ in range(terms):
        term = term - step * product(term)
        total += term
    return step * total


def conjugate_gradient(product: Any, vector: torch.Tensor, terms: int) -> tuple[torch.Tensor, int]:
    """At most ``terms`` iterations of conjugate gradients on H x = vector from x = 0, and the
    products taken: stops once the residual is zero, or where H has no positive curvature along
    the search direction (a minibatch Hessian away from a minimum can be indefinite)."""
    x = torch.zeros_like(vector)
    residual = vector.clone()
    direction = residual.clone()
    rr = residual @ residual
    products = 0
    for _ in range(terms):
        if float(rr) == 0:
            break
        hd = product(direction)
        products += 1
        curvature = direction @ hd
        if not float(curvature) > 0:
            break
        step = rr / curvature
        x += step * direction
        residual -= step * hd
        rr_next = residual @ residual
        direction = residual + (rr_next / rr) * direction
        rr = rr_next
    return x, products


def largest_eigenvalue(product: Any, like: torch.Tensor, iterations: int) -> float:
    """|lambda|_max of H by ``iterations`` power-iteration products from a fixed start (ones)."""
    vector = torch.ones_like(like) / like.numel() ** 0.5
    value = 0.0
    for _ in range(iterations):
        image = product(vector)
        value = float(image.norm())
        if not value > 0 or not math.isfinite(value):
            return value
        vector = image / value
    return value


def implicit_hypergradient(
    problem: TrainingProblem,
    hyper: Hyperparameters,
    terms: int = 20,
    inverse: str = "neumann",
    neumann_step: float | None = None,
    hvp: str = "autograd",
) -> Hypergradient:
    """Train T steps, then the IFT hypergradient at w_T with ``terms`` Hessian-vector products. The
    gradient has entries for every hyperparameter (``Hyperparameters.as_tensor``); those of the
    learning rate and momentum are 0 (the IFT does not see them). Loss weights (``TrainingProblem.loss_names``) get
    -(d2 L_train / dw dweight_k) . x on the batch H is taken on: only the groups with an example in
    that batch get a nonzero entry."""
    problem = hyper.weighting(problem)
    w_final, _, _ = train(problem, hyper)
    alpha, gamma, l2 = hyper.values()
    n_groups = len(hyper.log_l2)
    if not bool(torch.isfinite(w_final).all()):
        nan = torch.full((len(hyper.as_tensor()),), float("nan"), dtype=w_final.dtype, device=w_final.device)
        return Hypergradient(float("nan"), nan, w_final, problem.steps, 0)
    lam = penalty(problem, l2)
    loss, u = validation_loss_gradient(problem, w_final)
    last_batch = problem.batch(problem.steps - 1)
    product = hessian_operator(problem, w_final, lam, last_batch, hvp)
    if inverse == "cg":
        x, products = conjugate_gradient(product, u, terms)
    else:
        products = terms
        step = neumann_step
        if step is None:  # 1 / |lambda|_max: every positive-curvature direction's term shrinks
            top = largest_eigenvalue(product, w_final, POWER_ITERATIONS)
            products += POWER_ITERATIONS
            step = 1 / top if top > 0 and math.isfinite(top) else math.nan
        x = neumann(product, u, terms, step)
    groups = problem.l2_groups
    per_group = w_final.new_zeros(n_groups).index_add_(0, groups.clamp(min=0), -(x * w_final) * (groups >= 0))
    parts = [w_final.new_zeros(2), l2 * per_group]  # d / d log l2 = l2 d / d l2
    if problem.loss_names:  # d / d weight_k = -(d2 L_train / dw dweight_k) . x, on the same batch as H
        parts.append(-loss_weight_products(problem, w_final, last_batch, x))
    gradient = torch.cat(parts)
    return Hypergradient(loss, gradient, w_final, problem.steps, products, 1 if problem.loss_names else 0)


class ImplicitHypergradient(HypergradientDescent):
    """Hyper-iterations on implicit-function-theorem hypergradients of the L2 penalties."""

    TUNES = ("l2", *LOSS_HYPERPARAMETERS)
    WHY = (
        " (implicit differentiation sees only what defines the training optimum; "
        "the learning rate and momentum do not move it)"
    )

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        meta_optimizer: str = "adam",
        meta_step: float = 0.1,
        hvp: str = "autograd",
        inverse: str = "neumann",
        terms: int = 20,
        neumann_step: float | None = None,
    ) -> None:
        if inverse not in INVERSES:
            raise BenchError(f"method.inverse={inverse!r}: allowed: {', '.join(INVERSES)}")
        if not (isinstance(terms, int) and terms >= 0):
            raise BenchError(f"method.terms={terms!r}: must be a whole number, zero or more")
        if neumann_step is not None and not neumann_step > 0:
            raise BenchError(f"method.neumann_step={neumann_step}: must be positive, or null for 1 / |lambda|_max")
        super().__init__(space, seed, meta_optimizer, meta_step, hvp=hvp)
        self.inverse, self.terms, self.neumann_step = inverse, terms, neumann_step

    def hypergradient(self, problem: TrainingProblem, hyper: Hyperparameters) -> Hypergradient:
        return implicit_hypergradient(problem, hyper, self.terms, self.inverse, self.neumann_step, self.hvp)
