"""The training every ``TrainingProblem`` defines: momentum SGD on flat weights.

Maclaurin et al. (2015), Algorithm 1, from ``w0`` with ``v0 = 0``, for t = 0 .. T-1::

    g_t     = grad_w train_loss(w_t, batch(t)) + l2_i * w_i      (penalty 0.5 * sum_i l2_i w_i^2)
    v_{t+1} = momentum * v_t - (1 - momentum) * g_t
    w_{t+1} = w_t + learning_rate * v_{t+1}

Tasks train their black-box evaluations with it and hypergradient methods differentiate it, so the
two score the same training by construction. ``BatchSchedule`` gives each step's batch for a seed,
rebuildable in any order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.func import jvp

from bench.errors import BenchError
from bench.protocols import Evaluation, PausedTraining, TrainingProblem

L2_GRANULARITIES = ("universal", "per_layer", "blocks_K", "per_unit")
"""How a differentiable task groups its weights into L2 penalties: one for all; one per weight
matrix; each matrix's input units (rows) in K contiguous blocks (``blocks_8``: K = 8); one per input
unit of each matrix. Each group is one hyperparameter of the space (``grouped_space``)."""
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def check_granularity(l2_granularity: str, where: str = "l2_granularity") -> str:
    """``l2_granularity`` if it names a granularity, else a one-line error."""
    if l2_granularity in ("universal", "per_layer", "per_unit"):
        return l2_granularity
    head, _, count = str(l2_granularity).partition("_")
    if head == "blocks" and count.isdigit() and int(count) >= 1:
        return l2_granularity
    raise BenchError(
        f"{where}={l2_granularity!r}: allowed: universal, per_layer, blocks_K (K a whole number, 1 or more: each "
        "weight matrix's input units in K contiguous blocks), per_unit"
    )


def weight_groups(
    l2_granularity: str, matrices: Sequence[tuple[str, int, int]]
) -> tuple[list[torch.Tensor], tuple[str, ...]]:
    """The L2 groups of penalised weight matrices stored row-major, a row per input unit:
    ``matrices`` = [(name, rows, columns), ...] -> one ``(rows * columns,)`` long tensor of group
    indices per matrix, and one name per group (``all``; the matrix; ``<matrix>_block_<b>``;
    ``<matrix>_input_<i>``). ``blocks_K`` cuts each matrix's rows into min(K, rows) contiguous
    blocks of sizes differing by at most one (row i in block floor(i K / rows))."""
    check_granularity(l2_granularity)
    groups, names = [], []
    for name, rows, columns in matrices:
        if l2_granularity == "universal":
            row_group, row_names = torch.zeros(rows, dtype=torch.long), ["all"] if not names else []
        elif l2_granularity == "per_layer":
            row_group, row_names = torch.zeros(rows, dtype=torch.long), [name]
        elif l2_granularity == "per_unit":
            row_group, row_names = torch.arange(rows), [f"{name}_input_{i}" for i in range(rows)]
        else:
            blocks = min(int(l2_granularity.split("_")[1]), rows)
            row_group = torch.arange(rows) * blocks // rows
            row_names = [f"{name}_block_{b}" for b in range(blocks)]
        offset = 0 if l2_granularity == "universal" else len(names)
        groups.append((offset + row_group).repeat_interleave(columns))
        names += row_names
    return groups, tuple(names)


def torch_dtype(name: str, where: str = "task.dtype") -> torch.dtype:
    if name not in DTYPES:
        raise BenchError(f"{where}={name!r}: allowed: {', '.join(DTYPES)}")
    return DTYPES[name]


def penalty(problem: TrainingProblem, l2: torch.Tensor) -> torch.Tensor:
    """``(P,)``: each weight's L2 coefficient ``l2[group]`` (``l2`` has one entry per group), 0
    where the group is -1."""
    groups = problem.l2_groups
    coefficients = l2[groups.clamp(min=0)]
    return torch.where(groups >= 0, coefficients, torch.zeros_like(coefficients))


def with_loss_weights(problem: TrainingProblem, weights: torch.Tensor) -> TrainingProblem:
    """``problem`` training on the weighted mean of its examples' losses with ``weights`` (``(D,)``,
    one per loss group): ``train_loss(w, batch) = mean(weights[example_groups(batch)] *
    example_losses(w, batch))``. A problem without loss groups is returned as it is."""
    if not problem.loss_names:
        return problem
    if weights.shape != (len(problem.loss_names),):
        raise ValueError(f"{tuple(weights.shape)} loss weights for {len(problem.loss_names)} groups")
    losses, groups = problem.example_losses, problem.example_groups

    def train_loss(w: torch.Tensor, batch: Any) -> torch.Tensor:
        return (weights[groups(batch)] * losses(w, batch)).mean()

    return replace(problem, loss_weights=weights, train_loss=train_loss)


def loss_weight_products(
    problem: TrainingProblem, w: torch.Tensor, batch: Any, direction: torch.Tensor
) -> torch.Tensor:
    """``(D,)``: d/d weights of ``grad_w train_loss(w, batch) . direction``, the training gradient's
    mixed derivative in the loss weights along ``direction``: for group k, the batch mean of
    ``[group(i) = k] grad_w loss_i(w) . direction``, each example's directional derivative from one
    forward-mode pass through ``example_losses``."""
    _, tangent = jvp(lambda x: problem.example_losses(x, batch), (w,), (direction,))
    groups = problem.example_groups(batch)
    total = tangent.new_zeros(len(problem.loss_names)).index_add_(0, groups, tangent)
    return total / len(groups)


def loss_weight_gradient(problem: TrainingProblem, w: torch.Tensor, batch: Any, group: int) -> torch.Tensor:
    """``(P,)``: d/d weights[group] of ``grad_w train_loss(w, batch)``, the gradient of the batch
    mean of the group's examples' losses (0 where none of them is in the batch)."""
    groups = problem.example_groups(batch)
    with torch.enable_grad():
        leaf = w.detach().requires_grad_(True)
        losses = problem.example_losses(leaf, batch)
        (g,) = torch.autograd.grad(losses, leaf, (groups == group).to(losses.dtype) / len(groups))
    return g


def loss_gradient(problem: TrainingProblem, w: torch.Tensor, batch: Any) -> torch.Tensor:
    """``(P,)``: grad_w train_loss(w, batch), unpenalised."""
    with torch.enable_grad():
        leaf = w.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(problem.train_loss(leaf, batch), leaf)
    return g


def validation_loss_gradient(problem: TrainingProblem, w: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``(L_val(w), grad_w L_val(w))``: where every hypergradient of the validation loss starts."""
    with torch.enable_grad():
        leaf = w.detach().requires_grad_(True)
        loss = problem.validation_loss(leaf)
        (gradient,) = torch.autograd.grad(loss, leaf)
    return float(loss.detach()), gradient


def momentum_sgd(
    problem: TrainingProblem,
    learning_rate: float,
    momentum: float,
    l2: torch.Tensor,
    keep_trajectory: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Train from ``problem.w0``; returns w_T and, if asked, [w_0 .. w_T] and [v_0 .. v_T]
    (memory O(T x P)). ``l2``: ``(G,)``, one coefficient per L2 group."""
    w, v = problem.w0.clone(), torch.zeros_like(problem.w0)
    ws, vs = ([w], [v]) if keep_trajectory else ([], [])
    for w, v in sgd_steps(problem, learning_rate, momentum, penalty(problem, l2), w, v, 0, problem.steps):  # noqa: B020
        if keep_trajectory:
            ws.append(w)
            vs.append(v)
    return w, ws, vs


def train_to(
    problem: TrainingProblem,
    learning_rate: float,
    momentum: float,
    l2: torch.Tensor,
    steps: int,
    paused: PausedTraining | None = None,
) -> tuple[Evaluation, PausedTraining]:
    """A ``FidelityTask.train_to`` for any task with a ``TrainingProblem``: the momentum SGD above
    from ``problem.w0`` (or from ``paused``: ``{"step", "w", "v"}``) to step ``steps``, scored by
    ``problem.score``; ``cost_steps`` counts the new steps only. Each step depends only on (w_t,
    v_t, t), so a paused training continued equals one run straight through, bit for bit."""
    start, w, v = 0, problem.w0, torch.zeros_like(problem.w0)
    if paused is not None:
        start, w, v = int(paused["step"]), paused["w"].to(problem.w0), paused["v"].to(problem.w0)
    if not start < steps <= problem.steps:
        raise ValueError(f"train_to: {steps} steps from step {start}; allowed {start + 1} .. {problem.steps}")
    for w, v in sgd_steps(problem, learning_rate, momentum, penalty(problem, l2), w, v, start, steps):  # noqa: B007, B020
        pass
    evaluation = problem.score(w)
    return replace(evaluation, cost_steps=steps - start), {"step": steps, "w": w.detach(), "v": v.detach()}


def sgd_steps(
    problem: TrainingProblem,
    learning_rate: float,
    momentum: float,
    lam: torch.Tensor,
    w: torch.Tensor,
    v: torch.Tensor,
    start: int,
    stop: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(w_{t+1}, v_{t+1}) for t = start .. stop-1, from (w_start, v_start); ``lam``: ``(P,)`` per-weight
    L2 coefficients (``penalty``). Steps are deterministic: a segment recomputed from a checkpoint
    gives the same weights, bit for bit."""
    for t in range(start, stop):
        g = loss_gradient(problem, w, problem.batch(t)) + lam * w
        v = momentum * v - (1 - momentum) * g
        w = w + learning_rate * v
        yield w, v


class BatchSchedule:
    """The rows of each training step for one seed: step t's ``batch_size`` rows, with replacement.

    Steps come in chunks of ``chunk``; chunk c is drawn from its own generator seeded by
    (seed, c), so any step's batch can be rebuilt in any order (a reverse pass reads them
    backwards) while holding one chunk, not the whole schedule.
    """

    def __init__(self, n_rows: int, batch_size: int, seed: int, device: torch.device, chunk: int = 256) -> None:
        self.n_rows, self.batch_size, self.seed, self.device, self.chunk = n_rows, batch_size, seed, device, chunk
        self._index, self._rows = -1, torch.empty(0)

    def block(self, c: int) -> torch.Tensor:
        """``(chunk, batch_size)`` row indices of steps c * chunk .. (c + 1) * chunk - 1."""
        if c != self._index:
            state = int(np.random.SeedSequence([self.seed, c]).generate_state(1)[0])
            generator = torch.Generator(device=self.device).manual_seed(state)
            self._rows = torch.randint(
                0, self.n_rows, (self.chunk, self.batch_size), generator=generator, device=self.device
            )
            self._index = c
        return self._rows

    def rows(self, t: int) -> torch.Tensor:
        return self.block(t // self.chunk)[t % self.chunk]
