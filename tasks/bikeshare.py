"""The Udacity bikeshare MLP ("Your first neural network") on UCI hour.csv.

Network as in the project: 56 inputs -> ``hidden_nodes`` sigmoid units -> 1 linear output, no
biases, weights drawn from N(0, fan_in^-0.5). Each of ``iterations`` steps draws 128 training rows
with replacement and adds ``learning_rate`` times the batch-mean backpropagated error: plain
gradient descent on half the mean squared error. Objective: validation MSE on standardised
``cnt``; test metric: MSE on the last 21 days; also recorded: train MSE and the project's rubric
("the training loss is below 0.09 and the validation loss is below 0.18").

Momentum and L2 (optional hyperparameters, for hypergradient methods; at ``momentum=0`` and
``l2=0`` the training is the project's). The step is momentum SGD in the form of Maclaurin et al.
(2015), on half the MSE plus ``0.5 * l2 * |w|^2``::

    v <- momentum * v - (1 - momentum) * gradient;   w <- w + learning_rate * v

``training_problem`` hands the same training to a hypergradient method as pure functions of the
flat weights (``bench.protocols.TrainingProblem``): same initial weights, same batches.

``evaluate_batch`` trains q configurations at once (``train_mlp_batch``): one batched matrix
product per layer and step for all of them, each with its own initialisation and batch schedule,
so each equals its ``evaluate`` up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from bench.errors import BenchError
from bench.protocols import Evaluation, PausedTraining, TrainingProblem
from bench.space import Config, SearchSpace
from bench.training import L2_GRANULARITIES, BatchSchedule, check_granularity, torch_dtype, train_to, weight_groups
from tasks.bikeshare_data import PYPI_REQUIREMENT, UCI_URL, load_hour, udacity_splits

HYPERPARAMETERS = ("iterations", "learning_rate", "hidden_nodes")
OPTIONAL = {"momentum": 0.0, "l2": 0.0}  # value when the space leaves one out
RUBRIC_TRAIN, RUBRIC_VALIDATION = 0.09, 0.18


class BikeshareTask:
    test_metric = "mse"
    public_metrics = ("train_mse",)  # training-split metrics: a method may see them
    pass_criteria = {"rubric": f"Udacity rubric: train MSE < {RUBRIC_TRAIN} and validation MSE < {RUBRIC_VALIDATION}"}
    L2_GRANULARITIES = L2_GRANULARITIES

    def __init__(
        self,
        space: SearchSpace,
        device: str = "cpu",
        data_path: str | None = None,
        scaling: str = "train_validation",
        batch_size: int = 128,
        dtype: str = "float32",
        uci_url: str = UCI_URL,
        pypi_requirement: str = PYPI_REQUIREMENT,
        l2_granularity: str = "universal",
    ) -> None:
        missing = [name for name in HYPERPARAMETERS if name not in space.names]
        extra = [name for name in space.names if name not in HYPERPARAMETERS and name not in OPTIONAL]
        if missing or extra:
            raise BenchError(
                f"task.space for bikeshare must declare {', '.join(HYPERPARAMETERS)} and may declare "
                f"{', '.join(OPTIONAL)}; missing {missing}, unknown {extra}"
            )
        if batch_size < 1:
            raise BenchError(f"task.batch_size={batch_size}: must be a positive whole number")
        self.l2_granularity = check_granularity(l2_granularity, "task.l2_granularity")
        if l2_granularity != "universal" and "l2" not in space.names:
            raise BenchError(f"task.l2_granularity={l2_granularity}: the space declares no l2 to group")
        if l2_granularity not in ("universal", "per_layer") and "hidden_nodes" not in space.fixed:
            raise BenchError(
                f"task.l2_granularity={l2_granularity}: the groups depend on the hidden units, which the space tunes; "
                f"fix them, e.g. +task.space.hidden_nodes.fixed={space.default['hidden_nodes']}"
            )
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        self.batch_size = batch_size
        self.data = load_hour(data_path, uci_url, pypi_requirement)
        self.splits = udacity_splits(self.data.frame, scaling)
        self.scaling = scaling

        def tensor(array: Any) -> torch.Tensor:
            return torch.tensor(array, dtype=self.dtype, device=self.device)  # a copy: pandas arrays are read-only

        s = self.splits
        self.train = (tensor(s.train_x), tensor(s.train_y))
        self.validation = (tensor(s.validation_x), tensor(s.validation_y))
        self.test = (tensor(s.test_x), tensor(s.test_y))
        hidden = space.default["hidden_nodes"]
        self.space = space if l2_granularity == "universal" else space.grouped("l2", self.groups(hidden)[1])

    def groups(
        self, hidden_nodes: int, l2_granularity: str | None = None
    ) -> tuple[list[torch.Tensor], tuple[str, ...]]:
        """The L2 groups of W_ih (56 x h) and w_ho (h x 1) (``bench.training.weight_groups``)."""
        matrices = [("input_hidden", self.train[0].shape[1], hidden_nodes), ("hidden_output", hidden_nodes, 1)]
        return weight_groups(l2_granularity or self.l2_granularity, matrices)

    def penalties(self, config: Config) -> float | tuple[torch.Tensor, torch.Tensor]:
        """The L2 coefficient the training applies: one number, or each weight's, shaped as (W_ih, w_ho)."""
        if self.l2_granularity == "universal":
            return config["l2"]
        (first, second), _ = self.groups(config["hidden_nodes"])
        l2 = torch.tensor([config[name] for name in self.space.members("l2")], dtype=self.dtype, device=self.device)
        return l2[first.to(self.device)].reshape(-1, config["hidden_nodes"]), l2[second.to(self.device)]

    def evaluate(self, config: Config, seed: int) -> Evaluation:
        config = {**OPTIONAL, **config}
        weights, steps = train_mlp(
            *self.train,
            hidden_nodes=config["hidden_nodes"],
            learning_rate=config["learning_rate"],
            momentum=config["momentum"],
            l2=self.penalties(config),
            iterations=config["iterations"],
            schedule=self.schedule(seed),
            generator=torch.Generator(device=self.device).manual_seed(seed),
        )
        return self._evaluation(weights, steps)

    @property
    def full_fidelity(self) -> int | None:
        """Steps of every full training when the space fixes ``iterations`` (multi-fidelity methods)."""
        return self.space.fixed.get("iterations")

    def train_to(
        self, config: Config, seed: int, steps: int, paused: PausedTraining | None = None
    ) -> tuple[Evaluation, PausedTraining]:
        """The training of ``training_problem`` (the momentum-SGD form, equal to ``evaluate``'s up to
        float rounding) stopped at ``steps`` or continued from ``paused``, scored there."""
        config = {**OPTIONAL, **config}
        l2 = torch.tensor([float(config[n]) for n in self.space.members("l2")], dtype=self.dtype, device=self.device)
        problem = self.training_problem(config, seed)
        return train_to(problem, config["learning_rate"], config["momentum"], l2, steps, paused)

    def evaluate_batch(self, configs: Sequence[Config], seeds: Sequence[int]) -> list[Evaluation]:
        """``[evaluate(c, s) for c, s in zip(configs, seeds)]``, trained together: configurations
        of similar width and length in one ``train_mlp_batch`` each (``similar_shapes``)."""
        configs = [{**OPTIONAL, **config} for config in configs]
        evaluations: list[Evaluation | None] = [None] * len(configs)
        for group in similar_shapes(configs):
            # too few to share the steps' fixed cost, or a grouped L2 penalty: one at a time
            if len(group) < SMALLEST_BATCH or self.l2_granularity != "universal":
                for i in group:
                    evaluations[i] = self.evaluate(configs[i], seeds[i])
                continue
            trained = train_mlp_batch(
                *self.train,
                configs=[configs[i] for i in group],
                schedules=[self.schedule(seeds[i]) for i in group],
                generators=[torch.Generator(device=self.device).manual_seed(seeds[i]) for i in group],
            )
            for i, (weights, steps) in zip(group, trained, strict=True):
                evaluations[i] = self._evaluation(weights, steps)
        return evaluations

    def _evaluation(self, weights: tuple[torch.Tensor, torch.Tensor] | None, steps: int) -> Evaluation:
        if weights is None:
            return Evaluation(
                objective=math.inf,
                status="diverged",
                cost_steps=steps,
                error=f"weights became non-finite by step {steps}",
            )
        return replace(self.score(weights), cost_steps=steps)

    def schedule(self, seed: int) -> BatchSchedule:
        return BatchSchedule(len(self.train[1]), self.batch_size, seed, self.device)

    def score(self, weights: tuple[torch.Tensor, torch.Tensor]) -> Evaluation:
        """Objective, test metric, train MSE and rubric of trained weights."""
        if not all(bool(torch.isfinite(w).all()) for w in weights):
            return Evaluation(objective=math.inf, status="diverged", error="weights are non-finite")
        train_mse, validation_mse, test_mse = (
            mse(weights, *split) for split in (self.train, self.validation, self.test)
        )
        return Evaluation(
            objective=validation_mse,
            test={"mse": test_mse},
            metrics={
                "train_mse": train_mse,
                "rubric": bool(train_mse < RUBRIC_TRAIN and validation_mse < RUBRIC_VALIDATION),
            },
        )

    def training_problem(self, config: Config, seed: int, l2_granularity: str | None = None) -> TrainingProblem:
        """``evaluate(config, seed)``'s training as pure functions of w = [W_ih (56 x h) row-major, w_ho (h)].

        L2 groups (``bench.training.weight_groups``; default the task's ``l2_granularity``, whose
        groups are the space's): ``universal`` one; ``per_layer`` W_ih and w_ho; ``blocks_K`` each
        matrix's input units in K blocks; ``per_unit`` one per input unit of each layer (56 rows of
        W_ih, then the h hidden units feeding w_ho).
        """
        check_granularity(l2_granularity or self.l2_granularity)
        n_in, h = self.train[0].shape[1], config["hidden_nodes"]
        generator = torch.Generator(device=self.device).manual_seed(seed)
        w_ih, w_ho = init_weights(n_in, h, generator, self.train[0])
        schedule = self.schedule(seed)
        x, y = self.train

        def unflatten(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return w[: n_in * h].reshape(n_in, h), w[n_in * h :]

        def batch(t: int) -> tuple[torch.Tensor, torch.Tensor]:
            rows = schedule.rows(t)
            return x[rows], y[rows]

        def train_loss(w: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            return 0.5 * ((predict(unflatten(w), batch[0]) - batch[1]) ** 2).mean()

        def validation_loss(w: torch.Tensor) -> torch.Tensor:
            return ((predict(unflatten(w), self.validation[0]) - self.validation[1]) ** 2).mean()

        pieces, names = self.groups(h, l2_granularity)
        groups = torch.cat(pieces)
        return TrainingProblem(
            w0=torch.cat([w_ih.reshape(-1), w_ho]),
            steps=config["iterations"],
            batch=batch,
            train_loss=train_loss,
            validation_loss=validation_loss,
            l2_groups=groups.to(self.device),
            l2_names=names,
            score=lambda w: self.score(unflatten(w.detach())),
        )

    def describe(self) -> dict[str, Any]:
        s = self.splits
        return {
            "dataset": "UCI Bike Sharing hour.csv (Fanaee-T and Gama 2013)",
            "source": self.data.source,
            "sha256": self.data.sha256,
            "preprocessing": f"Udacity first-neural-network; z-score statistics from {self.scaling} rows",
            "features": len(s.features),
            "rows": {"train": len(s.train_y), "validation": len(s.validation_y), "test": len(s.test_y)},
            "network": "56-h-1, sigmoid hidden, linear output, no biases, N(0, fan_in^-0.5) init",
            "training": f"momentum SGD on 0.5*MSE + 0.5*l2*|w|^2 (momentum 0, l2 0: the project's gradient descent), "
            f"{self.batch_size} rows per step with replacement",
            "objective": "validation MSE on standardised cnt",
            "rubric": f"train MSE < {RUBRIC_TRAIN} and validation MSE < {RUBRIC_VALIDATION}",
        }


def init_weights(
    n_inputs: int, hidden_nodes: int, generator: torch.Generator, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Udacity's initialisation: each layer's weights ~ N(0, fan_in^-0.5); shapes (n_in, h), (h,)."""
    options = {"dtype": like.dtype, "device": like.device, "generator": generator}
    w_input_hidden = torch.randn(n_inputs, hidden_nodes, **options) * n_inputs**-0.5
    w_hidden_output = torch.randn(hidden_nodes, **options) * hidden_nodes**-0.5
    return w_input_hidden, w_hidden_output


def predict(weights: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """(n, 56) -> (n,): sigmoid hidden layer, identity output."""
    w_input_hidden, w_hidden_output = weights
    return torch.sigmoid(x @ w_input_hidden) @ w_hidden_output


def mse(weights: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    return float(((predict(weights, x) - y) ** 2).mean())


def udacity_step(
    weights: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, y: torch.Tensor, learning_rate: float
) -> None:
    """One ``NeuralNetwork.train(features, targets)`` call of the project, in place.

    Backpropagation as the project writes it: output error term ``y - f`` (identity output),
    hidden error term ``(y - f) w_ho * h (1 - h)``; weights += lr * (sum of deltas) / n_records.
    """
    w_input_hidden, w_hidden_output = weights
    hidden = torch.sigmoid(x @ w_input_hidden)  # (B, h)
    error = y - hidden @ w_hidden_output  # (B,)
    hidden_error_term = error[:, None] * w_hidden_output * hidden * (1 - hidden)  # (B, h)
    scale = learning_rate / len(y)
    w_hidden_output.add_(hidden.T @ error, alpha=scale)
    w_input_hidden.addmm_(x.T, hidden_error_term, alpha=scale)


def momentum_step(
    weights: tuple[torch.Tensor, torch.Tensor],
    velocity: tuple[torch.Tensor, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    learning_rate: float,
    momentum: float,
    l2: float | tuple[torch.Tensor, torch.Tensor],
) -> None:
    """One momentum-SGD step on 0.5 * MSE + 0.5 * l2 * |w|^2, in place (gradients by hand); ``l2``
    one coefficient, or one per weight shaped as (W_ih, w_ho) (``BikeshareTask.penalties``)."""
    l2_ih, l2_ho = (l2, l2) if isinstance(l2, float | int) else l2
    w_input_hidden, w_hidden_output = weights
    hidden = torch.sigmoid(x @ w_input_hidden)
    error = y - hidden @ w_hidden_output
    hidden_error_term = error[:, None] * w_hidden_output * hidden * (1 - hidden)
    gradients = (
        -(x.T @ hidden_error_term) / len(y) + l2_ih * w_input_hidden,
        -(hidden.T @ error) / len(y) + l2_ho * w_hidden_output,
    )
    for w, v, g in zip(weights, velocity, gradients, strict=True):
        v.mul_(momentum).add_(g, alpha=-(1 - momentum))
        w.add_(v, alpha=learning_rate)


def train_mlp(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    hidden_nodes: int,
    learning_rate: float,
    iterations: int,
    schedule: BatchSchedule,
    generator: torch.Generator,
    momentum: float = 0.0,
    l2: float | tuple[torch.Tensor, torch.Tensor] = 0.0,
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, int]:
    """Train from a fresh initialisation (weights from ``generator``, batches from ``schedule``);
    returns (weights, steps), weights None if they diverged. With momentum 0 and l2 0 each step is
    the project's ``udacity_step``."""
    weights = init_weights(x.shape[1], hidden_nodes, generator, x)
    velocity = tuple(torch.zeros_like(w) for w in weights) if momentum or l2 else None
    done = 0
    with torch.no_grad():
        while done < iterations:
            rows = schedule.block(done // schedule.chunk)[: iterations - done]
            batches_x, batches_y = x[rows], y[rows]
            for t in range(len(rows)):
                if velocity is None:
                    udacity_step(weights, batches_x[t], batches_y[t], learning_rate)
                else:
                    momentum_step(weights, velocity, batches_x[t], batches_y[t], learning_rate, momentum, l2)
            done += len(rows)
            if not all(bool(torch.isfinite(w).all()) for w in weights):
                return None, done
    return weights, done


PADDING_LIMIT = 1.5
"""``similar_shapes`` pads a group's networks to at most this many times their own work."""
STEP_OVERHEAD_UNITS = 8
"""The fixed cost of a training step, in hidden units' worth of work (dispatch, gathers)."""
SMALLEST_BATCH = 4
"""Groups smaller than this train one network at a time: on a CPU a batched step of 2 or 3
networks costs more than their separate steps (``python -m bench.perf batched``)."""


def similar_shapes(configs: Sequence[Config]) -> list[list[int]]:
    """Indices of ``configs`` in groups to train together: sorted by (hidden units, iterations)
    and cut wherever padding the group to its widest and longest network would cost more than
    ``PADDING_LIMIT`` times the work of its networks (a step of width h costs h + overhead)."""
    order = sorted(range(len(configs)), key=lambda i: (configs[i]["hidden_nodes"], configs[i]["iterations"]))
    groups: list[list[int]] = []
    for i in order:
        candidate = [*groups[-1], i] if groups else [i]
        widths = [configs[j]["hidden_nodes"] + STEP_OVERHEAD_UNITS for j in candidate]
        lengths = [configs[j]["iterations"] for j in candidate]
        padded = len(candidate) * max(widths) * max(lengths)
        if groups and padded <= PADDING_LIMIT * sum(w * t for w, t in zip(widths, lengths, strict=True)):
            groups[-1] = candidate
        else:
            groups.append([i])
    return groups


def train_mlp_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    configs: Sequence[Config],
    schedules: Sequence[BatchSchedule],
    generators: Sequence[torch.Generator],
) -> list[tuple[tuple[torch.Tensor, torch.Tensor] | None, int]]:
    """``train_mlp`` for q configurations at once; one (weights, steps) per configuration.

    The q networks are stacked, padded to the widest hidden layer: a padded unit has zero weights
    in and out, its outgoing weight's gradient is masked, so it never changes an output. Each step
    is one batched product per layer for all q (``torch.bmm``), each network on its own batch of
    its own schedule, with its own learning rate, momentum and L2 (momentum SGD, which at momentum
    0 and l2 0 is the project's step). Networks train for the longest ``iterations`` and each stops
    at its own; divergence is checked where ``train_mlp`` checks it (every ``schedule.chunk`` steps
    and at the end), so the steps reported are the same. Shapes: q networks, B rows per batch,
    n inputs, H = max hidden units.
    """
    q, n_in = len(configs), x.shape[1]
    like = {"dtype": x.dtype, "device": x.device}
    widths = [int(c["hidden_nodes"]) for c in configs]
    lengths = torch.tensor([int(c["iterations"]) for c in configs], device=x.device)
    w_ih, w_ho = torch.zeros(q, n_in, max(widths), **like), torch.zeros(q, max(widths), **like)
    for i, (width, generator) in enumerate(zip(widths, generators, strict=True)):
        first, second = init_weights(n_in, width, generator, x)  # the same draws as train_mlp
        w_ih[i, :, :width], w_ho[i, :width] = first, second
    unit = (torch.arange(max(widths), device=x.device) < torch.tensor(widths, device=x.device)[:, None]).to(x.dtype)

    def column(name: str) -> torch.Tensor:
        return torch.tensor([float(c[name]) for c in configs], **like)

    learning_rate, momentum, l2 = column("learning_rate"), column("momentum"), column("l2")
    momentum_ih, momentum_ho = momentum[:, None, None], momentum[:, None]
    decay_ih, decay_ho = 1 - momentum_ih, 1 - momentum_ho
    l2_ih, l2_ho = l2[:, None, None], l2[:, None, None]
    batch = schedules[0].batch_size
    v_ih, v_ho = torch.zeros_like(w_ih), torch.zeros_like(w_ho)
    alive = torch.ones(q, dtype=torch.bool, device=x.device)
    steps = lengths.clone()
    chunk, total, done = schedules[0].chunk, int(lengths.max()), 0
    with torch.no_grad():
        while done < total:
            rows = torch.stack([s.block(done // chunk) for s in schedules])[:, : total - done]  # (q, steps, B)
            for t in range(rows.shape[1]):
                xb, yb = x[rows[:, t]], y[rows[:, t]]  # (q, B, n), (q, B)
                hidden = torch.sigmoid(torch.bmm(xb, w_ih))  # (q, B, H)
                error = yb - torch.bmm(hidden, w_ho[:, :, None]).squeeze(-1)  # (q, B)
                hidden_error_term = error[:, :, None] * w_ho[:, None, :] * hidden * (1 - hidden)
                # g = -(backpropagated error) / B + l2 * w;  v <- momentum v - (1 - momentum) g
                g_ih = torch.baddbmm(l2_ih * w_ih, xb.transpose(1, 2), hidden_error_term, alpha=-1 / batch)
                g_ho = torch.baddbmm(
                    l2_ho * w_ho[:, :, None], hidden.transpose(1, 2), error[:, :, None], alpha=-1 / batch
                )
                v_ih.mul_(momentum_ih).addcmul_(decay_ih, g_ih, value=-1)
                v_ho.mul_(momentum_ho).addcmul_(decay_ho, g_ho.squeeze(-1) * unit, value=-1)
                step = learning_rate * (alive & (done + t < lengths))  # 0 for networks done or diverged
                w_ih.addcmul_(step[:, None, None], v_ih)
                w_ho.addcmul_(step[:, None], v_ho)
            trained_here = alive & (lengths > done)
            done += rows.shape[1]
            finite = torch.isfinite(w_ih).flatten(1).all(1) & torch.isfinite(w_ho).all(1)
            diverged = trained_here & ~finite
            steps = torch.where(diverged, torch.clamp(lengths, max=done), steps)
            alive &= finite | ~trained_here
    return [
        ((w_ih[i, :, :width].clone(), w_ho[i, :width].clone()) if bool(alive[i]) else None, int(steps[i]))
        for i, width in enumerate(widths)
    ]
