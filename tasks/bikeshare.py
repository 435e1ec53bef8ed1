"""The Udacity bikeshare MLP ("Your first neural network") on UCI hour.csv.

Network as in the project: 56 inputs -> ``hidden_nodes`` sigmoid units -> 1 linear output, no
biases, weights drawn from N(0, fan_in^-0.5). Each of ``iterations`` steps draws 128 training rows
with replacement and adds ``learning_rate`` times the batch-mean backpropagated error: plain
gradient descent on half the mean squared error. Objective: validation MSE on standardised
``cnt``; test metric: MSE on the last 21 days; also recorded: train MSE and the project's rubric
("the training loss is below 0.09 and the validation loss is below 0.18").
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bench.errors import BenchError
from bench.protocols import Evaluation
from bench.space import Config, SearchSpace
from tasks.bikeshare_data import PYPI_REQUIREMENT, UCI_URL, load_hour, udacity_splits

HYPERPARAMETERS = ("iterations", "learning_rate", "hidden_nodes")
RUBRIC_TRAIN, RUBRIC_VALIDATION = 0.09, 0.18
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class BikeshareTask:
    test_metric = "mse"

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
    ) -> None:
        missing = [name for name in HYPERPARAMETERS if name not in space.names]
        extra = [name for name in space.names if name not in HYPERPARAMETERS]
        if missing or extra:
            raise BenchError(
                f"task.space for bikeshare must declare exactly {', '.join(HYPERPARAMETERS)}; "
                f"missing {missing}, unknown {extra}"
            )
        if dtype not in DTYPES:
            raise BenchError(f"task.dtype={dtype!r}: allowed: {', '.join(DTYPES)}")
        if batch_size < 1:
            raise BenchError(f"task.batch_size={batch_size}: must be a positive whole number")
        self.space = space
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
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

    def evaluate(self, config: Config, seed: int) -> Evaluation:
        generator = torch.Generator(device=self.device).manual_seed(seed)
        weights, steps = train_mlp(
            *self.train,
            hidden_nodes=config["hidden_nodes"],
            learning_rate=config["learning_rate"],
            iterations=config["iterations"],
            batch_size=self.batch_size,
            generator=generator,
        )
        if weights is None:
            return Evaluation(
                objective=math.inf,
                status="diverged",
                cost_steps=steps,
                error=f"weights became non-finite by step {steps}",
            )
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
            cost_steps=steps,
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
            "training": f"gradient descent on 0.5*MSE, {self.batch_size} rows per step with replacement",
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


def train_mlp(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    hidden_nodes: int,
    learning_rate: float,
    iterations: int,
    batch_size: int,
    generator: torch.Generator,
    chunk: int = 256,
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, int]:
    """Train from a fresh initialisation; returns (weights, steps), weights None if they diverged.

    Batch indices are drawn ``chunk`` steps at a time from ``generator`` (one stream per seed).
    """
    weights = init_weights(x.shape[1], hidden_nodes, generator, x)
    done = 0
    with torch.no_grad():
        while done < iterations:
            steps = min(chunk, iterations - done)
            rows = torch.randint(0, len(y), (steps, batch_size), generator=generator, device=x.device)
            batches_x, batches_y = x[rows], y[rows]
            for t in range(steps):
                udacity_step(weights, batches_x[t], batches_y[t], learning_rate)
            done += steps
            if not all(bool(torch.isfinite(w).all()) for w in weights):
                return None, done
    return weights, done
