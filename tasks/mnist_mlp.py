"""The DrMAD paper's MNIST MLP (Fu et al. 2016; the authors' ``exp1/mad/mad.py``).

A tanh MLP with ``layers`` hidden layers (default 50-50-50) and a 10-way softmax output, trained
by momentum SGD (``bench.training``) on the mean cross-entropy of batches of 50 images drawn with
replacement, for ``iterations`` steps (default T = 2000), with an L2 penalty on the weights (biases
unpenalised). Initial weights N(0, 1/fan_in), biases 0. Defaults as the authors': learning rate
0.05, momentum 0.95, L2 exp(-4). Objective: validation cross-entropy (what the hypergradient
lowers); test metric: test error in percent; also recorded: validation error and training loss.
Data: ``tasks.mnist_data`` (MNIST, Fashion-MNIST or scikit-learn's digits; the run names which).
``train_images`` keeps the first n images of the training split (null: all of them, 15,000 for
the 28x28 sets): the CPU-sized ``suite=many_hyperparameters`` trains on 3,750 for T = 500 steps,
the paper's 6.7 epochs at a quarter of its steps.

``evaluate_batch`` trains q configurations at once: every configuration has the same network, so
the q weight vectors are stacked and each step is one batched forward pass (``torch.baddbmm``
per layer) and one backward pass for all q, each network on its own batch with its own learning
rate, momentum, L2 and length; each equals its ``evaluate`` up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from bench.errors import BenchError
from bench.protocols import Evaluation, PausedTraining, TrainingProblem
from bench.space import Config, SearchSpace
from bench.training import (
    L2_GRANULARITIES,
    BatchSchedule,
    check_granularity,
    penalty,
    torch_dtype,
    train_to,
    weight_groups,
)
from tasks.mnist_data import MNIST_URL, load_images

HYPERPARAMETERS = ("iterations", "learning_rate", "momentum", "l2")
SPLITS = ("train", "validation", "test")


class MnistMLPTask:
    HYPERPARAMETERS = HYPERPARAMETERS
    test_metric = "error"
    public_metrics = ("train_loss",)  # training-split metrics: a method may see them
    pass_criteria: dict[str, str] = {}
    L2_GRANULARITIES = L2_GRANULARITIES
    SOFTMAX_REGRESSION = False  # whether ``layers: []`` (no hidden layer) is allowed
    TASK_NAME = "mnist_mlp"  # for messages
    example_group: torch.Tensor | None = None
    """``(n,)``: each training example's loss-weight group, for a task that weighs them (``None``: none)."""

    def __init__(
        self,
        space: SearchSpace,
        device: str = "cpu",
        dataset: str = "auto",
        data_dir: str | None = None,
        layers: tuple[int, ...] = (50, 50, 50),
        batch_size: int = 50,
        dtype: str = "float32",
        url: str = MNIST_URL,
        l2_granularity: str = "universal",
        train_images: int | None = None,
    ) -> None:
        if sorted(space.names) != sorted(self.HYPERPARAMETERS):
            raise BenchError(f"task.space for {self.TASK_NAME} must declare exactly {', '.join(self.HYPERPARAMETERS)}")
        if batch_size < 1 or min(layers, default=1) < 1 or (not layers and not self.SOFTMAX_REGRESSION):
            raise BenchError(f"task.batch_size={batch_size}, task.layers={list(layers)}: give positive whole numbers")
        self.l2_granularity = check_granularity(l2_granularity, "task.l2_granularity")
        self.device = torch.device(device)
        self.dtype = torch_dtype(dtype)
        self.batch_size = batch_size
        self.images = load_images(dataset, data_dir, url)
        available = len(self.images.train[1])
        if train_images is not None:
            if not 1 <= train_images <= available:
                raise BenchError(
                    f"task.train_images={train_images}: {self.images.dataset} has {available} training images; "
                    f"allowed 1..{available} (or null: all of them)"
                )
            x, y = self.images.train
            self.images = replace(self.images, train=(x[:train_images], y[:train_images]))  # the first n, as read
        self.sizes = [self.images.train[0].shape[1], *layers, 10]

        def tensors(split: tuple[Any, Any]) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = split
            return torch.tensor(x, dtype=self.dtype, device=self.device), torch.tensor(y, device=self.device)

        self.train, self.validation, self.test = (
            tensors(s) for s in (self.images.train, self.images.validation, self.images.test)
        )
        self.space = space.grouped("l2", self.groups()[1])  # one l2 entry per group; universal: l2 itself

    def groups(self, l2_granularity: str | None = None) -> tuple[list[torch.Tensor], tuple[str, ...]]:
        """The L2 groups of the weight matrices ``layer_0`` .. (``bench.training.weight_groups``)."""
        shapes = zip(self.sizes[:-1], self.sizes[1:], strict=True)
        layers = [(f"layer_{k}", n_in, n_out) for k, (n_in, n_out) in enumerate(shapes)]
        return weight_groups(l2_granularity or self.l2_granularity, layers)

    def loss_weights(self, configs: Sequence[Config]) -> torch.Tensor | None:
        """``(q, D)``: each configuration's training-loss weight per group of examples; ``None`` for
        a task whose examples all count 1."""
        return None

    def l2(self, configs: Sequence[Config]) -> torch.Tensor:
        """``(q, G)``: each configuration's L2 penalty per group, in the space's order."""
        return self.grouped_values(configs, "l2")

    def grouped_values(self, configs: Sequence[Config], name: str) -> torch.Tensor:
        """``(q, groups)``: each configuration's values of the declared entry ``name``, one per group
        in the space's order, in the task's dtype and device."""
        names = self.space.members(name)
        return torch.tensor([[float(c[n]) for n in names] for c in configs], dtype=self.dtype, device=self.device)

    # ------------------------------------------------------------------ protocol
    def evaluate(self, config: Config, seed: int) -> Evaluation:
        return self.train_to(config, seed, config["iterations"])[0]  # the whole training

    @property
    def full_fidelity(self) -> int | None:
        """Steps of every full training when the space fixes ``iterations`` (multi-fidelity methods)."""
        return self.space.fixed.get("iterations")

    def train_to(
        self, config: Config, seed: int, steps: int, paused: PausedTraining | None = None
    ) -> tuple[Evaluation, PausedTraining]:
        """``evaluate``'s training stopped at ``steps`` (or continued from ``paused``), scored there."""
        problem = self.training_problem(config, seed)
        return train_to(problem, config["learning_rate"], config["momentum"], self.l2([config])[0], steps, paused)

    def evaluate_batch(self, configs: Sequence[Config], seeds: Sequence[int]) -> list[Evaluation]:
        """``[evaluate(c, s) for c, s in zip(configs, seeds)]``, trained together: the momentum SGD
        of ``bench.training`` on a ``(q, P)`` stack of weights, each step's q losses through one
        batched forward pass (``batched_logits``) and their gradients through one backward pass."""
        problems = [self.training_problem(config, seed) for config, seed in zip(configs, seeds, strict=True)]
        schedules = [BatchSchedule(len(self.train[1]), self.batch_size, seed, self.device) for seed in seeds]
        like = {"dtype": self.dtype, "device": self.device}

        def column(name: str) -> torch.Tensor:
            return torch.tensor([float(config[name]) for config in configs], **like)[:, None]  # (q, 1)

        learning_rate, momentum = column("learning_rate"), column("momentum")
        weights = self.loss_weights(configs)  # (q, D), or None: every example's loss counts 1
        lam = torch.stack([penalty(problems[0], l2) for l2 in self.l2(configs)])  # (q, P); biases: none
        lengths = torch.tensor([problem.steps for problem in problems], device=self.device)
        w = torch.stack([problem.w0 for problem in problems])
        v = torch.zeros_like(w)
        x, y = self.train
        total, chunk, done = int(lengths.max()), schedules[0].chunk, 0
        while done < total:
            rows = torch.stack([schedule.block(done // chunk) for schedule in schedules])[:, : total - done]
            for t in range(rows.shape[1]):
                with torch.enable_grad():
                    leaf = w.detach().requires_grad_(True)
                    logits = self.batched_logits(leaf, x[rows[:, t]])  # (q, B, 10)
                    losses = F.cross_entropy(logits.flatten(0, 1), y[rows[:, t]].flatten(), reduction="none")
                    losses = losses.view(len(configs), -1)
                    if weights is not None:  # as bench.training.with_loss_weights, row by row
                        losses = weights.gather(1, self.example_group[rows[:, t]]) * losses
                    (g,) = torch.autograd.grad(losses.mean(1).sum(), leaf)
                g = g + lam * w  # as bench.training.sgd_steps, row by row
                v = momentum * v - (1 - momentum) * g
                w = w + (learning_rate * (done + t < lengths)[:, None]) * v  # a network past its length stays put
            done += rows.shape[1]
        return [replace(problem.score(w[i]), cost_steps=problem.steps) for i, problem in enumerate(problems)]

    def training_problem(self, config: Config, seed: int, l2_granularity: str | None = None) -> TrainingProblem:
        """w = [W_1 (in x out) row-major, b_1, W_2, b_2, ...]. L2 groups (default the task's
        ``l2_granularity``, whose groups are the space's): ``universal`` one for all weights;
        ``per_layer`` one per weight matrix; ``blocks_K`` each matrix's input units in K contiguous
        blocks; ``per_unit`` one per input unit of each layer (784 + 50 + 50 + 50 = 934 for MNIST, as
        the authors); biases never penalised."""
        weight_pieces, names = self.groups(l2_granularity)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        pieces, groups = [], []
        shapes = zip(self.sizes[:-1], self.sizes[1:], strict=True)
        for (n_in, n_out), weight_groups_ in zip(shapes, weight_pieces, strict=True):
            options = {"dtype": self.dtype, "device": self.device}
            pieces.append(torch.randn(n_in, n_out, generator=generator, **options).reshape(-1) / math.sqrt(n_in))
            pieces.append(torch.zeros(n_out, **options))
            groups += [weight_groups_, torch.full((n_out,), -1).long()]
        schedule = BatchSchedule(len(self.train[1]), self.batch_size, seed, self.device)
        x, y = self.train

        def batch(t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            rows = schedule.rows(t)
            return x[rows], y[rows], rows

        return TrainingProblem(
            w0=torch.cat(pieces),
            steps=config["iterations"],
            batch=batch,
            train_loss=lambda w, b: F.cross_entropy(self.logits(w, b[0]), b[1]),
            validation_loss=lambda w: F.cross_entropy(self.logits(w, self.validation[0]), self.validation[1]),
            l2_groups=torch.cat(groups).to(self.device),
            l2_names=names,
            score=self.score,
        )

    def describe(self) -> dict[str, Any]:
        images = self.images
        return {
            "dataset": images.name,
            "source": images.source,
            "sha256": images.sha256,
            "rows": {
                "train": len(images.train[1]),
                "validation": len(images.validation[1]),
                "test": len(images.test[1]),
            },
            "network": "-".join(map(str, self.sizes)) + ", tanh hidden layers, softmax output, N(0, 1/fan_in) init",
            "training": f"momentum SGD on mean cross-entropy + L2 on weights, {self.batch_size} images per step",
            "objective": "validation cross-entropy",
            "test_metric": "test error (%)",
        }

    # ------------------------------------------------------------------ the network
    def logits(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(n, pixels) -> (n, 10)``."""
        offset = 0
        h = x
        for k, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            weight = w[offset : offset + n_in * n_out].reshape(n_in, n_out)
            bias = w[offset + n_in * n_out : offset + n_in * n_out + n_out]
            offset += n_in * n_out + n_out
            h = h @ weight + bias
            if k < len(self.sizes) - 2:
                h = torch.tanh(h)
        return h

    def batched_logits(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``logits`` of q networks at once: ``w`` (q, P), ``x`` (q, n, pixels) -> (q, n, 10)."""
        q, offset, h = len(w), 0, x
        for k, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            weight = w[:, offset : offset + n_in * n_out].reshape(q, n_in, n_out)
            bias = w[:, offset + n_in * n_out : offset + n_in * n_out + n_out]
            offset += n_in * n_out + n_out
            h = torch.baddbmm(bias[:, None, :], h, weight)
            if k < len(self.sizes) - 2:
                h = torch.tanh(h)
        return h

    def score(self, w: torch.Tensor) -> Evaluation:
        w = w.detach()
        if not bool(torch.isfinite(w).all()):
            return Evaluation(objective=math.inf, status="diverged", error="weights are non-finite")
        with torch.no_grad():
            validation_logits = self.logits(w, self.validation[0])
            objective = float(F.cross_entropy(validation_logits, self.validation[1]))
            validation_error = float((validation_logits.argmax(1) != self.validation[1]).double().mean()) * 100
            test_error = float((self.logits(w, self.test[0]).argmax(1) != self.test[1]).double().mean()) * 100
            train_loss = float(F.cross_entropy(self.logits(w, self.train[0]), self.train[1]))
        return Evaluation(
            objective=objective,
            test={"error": test_error},
            metrics={"validation_error": validation_error, "train_loss": train_loss, "dataset": self.images.dataset},
        )
