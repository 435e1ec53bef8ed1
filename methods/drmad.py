"""DrMAD (Fu, Luo, Ren and Chua, IJCAI 2016, "DrMAD: distilling reverse-mode automatic
differentiation for optimizing hyperparameters of deep neural networks"): reverse mode through the
training loop with only w_0 and w_T kept, memory O(P) whatever T.

``drmad_hypergradient`` keeps only w_0 and w_T (Fu et al. 2016) and runs the same recursion at
K points of the line w(beta) = (1 - beta) w_0 + beta w_T, beta_j = j / K, reverse step j reading
batch t_j = j T / K; the velocity is rebuilt from neighbouring points, v = (w_T - w_0) / (T alpha)
(v_0 = 0). With K = T and a straight trajectory (T = 1) it is exact. With K < T it is the
authors' shortened reverse pass (their code: K = T / 10): K recursion steps stand for T, so the
hypergradient's scale shrinks roughly by K / T and its direction is what it estimates (sign-SGD
and Adam, the meta-optimisers used with it, do not depend on the scale).

The recursion, its costs and the meta-loop are the family's (``methods/hypergradient.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from bench.errors import BenchError
from bench.protocols import TrainingProblem
from methods.hypergradient import Hypergradient, HypergradientDescent, Hyperparameters, reverse, reversed_over, train


def drmad_hypergradient(
    problem: TrainingProblem, hyper: Hyperparameters, points: int | None = None, hvp: str = "autograd"
) -> Hypergradient:
    """DrMAD: the reverse pass along the line from w_0 to w_T at ``points`` = K (default T)."""
    steps = problem.steps
    k = steps if points is None else points
    if not 1 <= k <= steps:
        raise BenchError(f"method.reverse_points={points}: must be between 1 and the number of steps {steps}")
    w_final, _, _ = train(problem, hyper)
    w0 = problem.w0
    alpha = hyper.values()[0]
    velocity = (w_final - w0) / (steps * alpha)

    def line() -> Any:
        for j in reversed(range(k)):
            beta = j / k
            w = torch.lerp(w0, w_final, beta) if j else w0
            yield j * steps // k, w, (velocity if j else torch.zeros_like(w0)), velocity

    loss, gradient = reverse(problem, hyper, w_final, line(), hvp)
    return reversed_over(problem, loss, gradient, w_final, steps, k)


class DrMAD(HypergradientDescent):
    """Hyper-iterations on DrMAD hypergradients (only w_0 and w_T kept)."""

    def hypergradient(self, problem: TrainingProblem, hyper: Hyperparameters) -> Hypergradient:
        return drmad_hypergradient(problem, hyper, self.points(problem.steps), self.hvp)
