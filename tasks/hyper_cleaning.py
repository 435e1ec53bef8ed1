"""Data hyper-cleaning (Franceschi, Donini, Frasconi and Pontil, ICML 2017): a classifier trained
on labels of which a part is wrong, with one training-loss weight per group of examples to tune.

The training set is the first ``train_images`` images of the dataset's training split (Fashion-MNIST
at CPU size: 5,000; ``task.dataset=digits task.train_images=null`` for a fast offline variant of
1,000, never chosen unasked), cut into K = len(``corruption``) contiguous
**sources** of (nearly) equal size. Source k has ``corruption[k]`` of its labels replaced: exactly
round(rate x size) examples, drawn without replacement, each given a class drawn uniformly from the
nine wrong ones, by a generator seeded with ``corruption_seed`` (the same corrupted set for every
method and run seed; ``run.json`` records the rates, the counts and a digest of the labels). The
validation and test sets are clean.

The training loss of a batch B is the weighted mean cross-entropy::

    L_train(w, B) = 1/|B| sum_{i in B} lambda_{group(i)} CE(f_w(x_i), y~_i)

with one weight lambda per group, declared in the space as ``loss_weight`` (bounds [0, 1], linear,
default 1: the plain training) and offered to every method as one entry per group
(``loss_weight_<group>``). ``loss_granularity`` sets the groups, d:

- ``universal``: one weight for all (d = 1);
- ``per_source``: one per source (d = K);
- ``blocks_D``: each source cut into D / K contiguous blocks (D a multiple of K);
- ``per_example``: one per training example (d = n).

Each grouping nests in the next finer one (a source's blocks at D = c D' are its blocks at D' cut c
ways, and every block lies in one source), so every coarser configuration can be written at a finer
granularity, each group given its source's (or block's) weight, and trains identically. The model:
softmax regression, as in Franceschi et al. (``layers: []``), or the MLP of ``tasks.mnist_mlp``
(``layers: [50]``, ...). Objective: the
clean validation set's cross-entropy; test metric: test error (%). Also recorded: validation error,
the training loss on the corrupted labels, and the training error on the clean labels.

``oracle_config`` (with ``task.loss_weights=tuned``) is the configuration that weighs clean examples 1
and corrupted ones 0 (at ``per_example``, or wherever the groups separate them), from the corruption
record; ``task.loss_weights=oracle`` fixes the space's weights there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import BenchError
from bench.protocols import Evaluation, TrainingProblem
from bench.space import Config, SearchSpace
from bench.training import with_loss_weights
from tasks.mnist_data import MNIST_URL
from tasks.mnist_mlp import HYPERPARAMETERS as NETWORK_HYPERPARAMETERS
from tasks.mnist_mlp import MnistMLPTask

HYPERPARAMETERS = (*NETWORK_HYPERPARAMETERS, "loss_weight")
LOSS_GRANULARITIES = ("universal", "per_source", "blocks_D", "per_example")
LOSS_WEIGHTS = ("tuned", "ones", "oracle")
"""``task.loss_weights``: the space tunes them; fixes every one at 1 (plain training on the corrupted
labels: the few-hyperparameter control, and with ``method=default`` the default row); or fixes them
at the oracle's values (``oracle_config``: the bound a cleaning can reach)."""


def check_loss_granularity(granularity: str, sources: int) -> str:
    """``granularity`` if it names a grouping of ``sources`` sources, else a one-line error."""
    if granularity in ("universal", "per_source", "per_example"):
        return granularity
    head, _, count = str(granularity).partition("_")
    if head == "blocks" and count.isdigit() and int(count) >= sources and int(count) % sources == 0:
        return granularity
    raise BenchError(
        f"task.loss_granularity={granularity!r}: allowed: universal, per_source, blocks_D (D a multiple of the "
        f"{sources} sources: each source in D / {sources} contiguous blocks), per_example"
    )


def example_groups(granularity: str, sizes: Sequence[int]) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Each training example's group and one name per group, for sources of ``sizes`` examples
    laid end to end: one group (``all``); one per source (``source_k``); D / K contiguous blocks per
    source (``source_k_block_b``, example i of a source of m in block floor(i (D / K) / m)); one per
    example (``example_i``)."""
    n = sum(sizes)
    if granularity == "universal":
        return torch.zeros(n, dtype=torch.long), ("all",)
    source = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    if granularity == "per_source":
        return source, tuple(f"source_{k}" for k in range(len(sizes)))
    if granularity == "per_example":
        return torch.arange(n), tuple(f"example_{i}" for i in range(n))
    per_source = int(granularity.split("_")[1]) // len(sizes)
    if per_source > min(sizes):
        raise BenchError(
            f"task.loss_granularity={granularity}: {per_source} blocks per source, but a source has {min(sizes)} "
            "examples; allowed at most that many blocks per source"
        )
    within = torch.cat([torch.arange(m) * per_source // m for m in sizes])
    names = tuple(f"source_{k}_block_{b}" for k in range(len(sizes)) for b in range(per_source))
    return source * per_source + within, names


def corrupt(labels: np.ndarray, rates: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Labels with ``rates[k]`` of source k's replaced by a wrong class, drawn uniformly from the
    other nine, by ``numpy.random.default_rng(seed)``: (labels, corrupted mask, source sizes). The
    sources are contiguous and of equal size (the first ``n % K`` one example larger)."""
    n, k = len(labels), len(rates)
    sizes = [n // k + (s < n % k) for s in range(k)]
    generator = np.random.default_rng(seed)
    noisy, corrupted, start = labels.copy(), np.zeros(n, dtype=bool), 0
    for rate, size in zip(rates, sizes, strict=True):
        chosen = start + np.sort(generator.choice(size, round(rate * size), replace=False))
        noisy[chosen] = (labels[chosen] + generator.integers(1, 10, len(chosen))) % 10
        corrupted[chosen] = True
        start += size
    return noisy, corrupted, sizes


class HyperCleaningTask(MnistMLPTask):
    HYPERPARAMETERS = HYPERPARAMETERS
    SOFTMAX_REGRESSION = True
    TASK_NAME = "hyper_cleaning"
    LOSS_GRANULARITIES = LOSS_GRANULARITIES

    def __init__(
        self,
        space: SearchSpace,
        device: str = "cpu",
        dataset: str = "fashion_mnist",
        data_dir: str | None = None,
        layers: tuple[int, ...] = (),
        batch_size: int = 100,
        dtype: str = "float32",
        url: str = MNIST_URL,
        l2_granularity: str = "universal",
        train_images: int | None = 5000,
        corruption: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
        corruption_seed: int = 0,
        loss_granularity: str = "per_source",
        loss_weights: str = "tuned",
    ) -> None:
        if loss_weights not in LOSS_WEIGHTS:
            raise BenchError(f"task.loss_weights={loss_weights!r}: allowed: {', '.join(LOSS_WEIGHTS)}")
        rates = [float(r) for r in corruption]
        if not rates or not all(0 <= r <= 1 for r in rates):
            raise BenchError(f"task.corruption={list(corruption)}: give one rate in [0, 1] per source, at least one")
        self.loss_granularity = check_loss_granularity(loss_granularity, len(rates))
        super().__init__(space, device, dataset, data_dir, layers, batch_size, dtype, url, l2_granularity, train_images)
        x, clean = self.train
        if len(clean) < len(rates):
            raise BenchError(f"task.corruption: {len(rates)} sources for {len(clean)} training images")
        noisy, corrupted, sizes = corrupt(clean.cpu().numpy(), rates, corruption_seed)
        self.clean_labels = clean
        self.train = (x, torch.tensor(noisy, device=self.device))
        self.corrupted = torch.tensor(corrupted, device=self.device)
        self.rates, self.sizes_per_source, self.corruption_seed = rates, sizes, corruption_seed
        self.labels_sha256 = hashlib.sha256(noisy.astype(np.int64).tobytes()).hexdigest()
        groups, self.loss_names = example_groups(self.loss_granularity, sizes)
        self.example_group = groups.to(self.device)
        self.space = self.space.grouped("loss_weight", self.loss_names)
        self.loss_weights_mode = loss_weights
        if loss_weights != "tuned":
            members = self.space.members("loss_weight")
            if any(name in self.space.fixed for name in members):
                raise BenchError(
                    f"task.loss_weights={loss_weights}: the space already fixes loss_weight; "
                    "fix the weights one way: leave task.space.loss_weight unfixed, or use task.loss_weights=tuned"
                )
            values = self.oracle_weights() if loss_weights == "oracle" else dict.fromkeys(members, 1.0)
            self.space = self.space.fixing(values)

    # ------------------------------------------------------------------ loss weights
    def loss_weights(self, configs: Sequence[Config]) -> torch.Tensor:
        return self.grouped_values(configs, "loss_weight")

    def training_problem(self, config: Config, seed: int, l2_granularity: str | None = None) -> TrainingProblem:
        """``MnistMLPTask``'s problem on the corrupted labels, trained on the weighted mean of the
        examples' cross-entropies with the configuration's loss weights."""
        problem = super().training_problem(config, seed, l2_granularity)
        groups = self.example_group

        def example_losses(w: torch.Tensor, batch: Any) -> torch.Tensor:
            return F.cross_entropy(self.logits(w, batch[0]), batch[1], reduction="none")

        problem = replace(
            problem,
            loss_names=self.space.members("loss_weight"),
            example_losses=example_losses,
            example_groups=lambda batch: groups[batch[2]],
        )
        return with_loss_weights(problem, self.loss_weights([config])[0])

    def oracle_weights(self) -> dict[str, float]:
        """Weight 1 on clean examples and 0 on corrupted ones, per loss-weight entry; at a
        granularity whose groups mix them, each group's share of clean examples."""
        names = self.space.members("loss_weight")
        clean, groups = (~self.corrupted).to(torch.float64).cpu(), self.example_group.cpu()
        share = torch.zeros(len(names), dtype=torch.float64).index_add_(0, groups, clean)
        count = torch.zeros(len(names), dtype=torch.float64).index_add_(0, groups, torch.ones_like(clean))
        return dict(zip(names, (share / count).tolist(), strict=True))

    def oracle_config(self) -> Config:
        """The space's default with the oracle's loss weights (``oracle_weights``)."""
        return self.space.check({**self.space.default, **self.oracle_weights()})

    # ------------------------------------------------------------------ records
    def score(self, w: torch.Tensor) -> Evaluation:
        evaluation = super().score(w)
        if evaluation.status != "ok":
            return evaluation
        with torch.no_grad():
            predicted = self.logits(w.detach(), self.train[0]).argmax(1)
            clean_error = float((predicted != self.clean_labels).double().mean()) * 100
        return replace(evaluation, metrics={**evaluation.metrics, "train_error_clean_labels": clean_error})

    def describe(self) -> dict[str, Any]:
        corrupted = self.corrupted.cpu()
        start, per_source = 0, []
        for size in self.sizes_per_source:
            per_source.append(int(corrupted[start : start + size].sum()))
            start += size
        return {
            **super().describe(),
            "model": "softmax regression" if len(self.sizes) == 2 else "MLP",
            "training": f"momentum SGD on the weighted mean cross-entropy + L2 on weights, {self.batch_size} images "
            "per step, one loss weight per group of training examples",
            "corruption": {
                "process": "per source, exactly round(rate x size) examples drawn without replacement, each given a "
                "class drawn uniformly from the nine wrong ones, numpy.random.default_rng(seed)",
                "seed": self.corruption_seed,
                "rates": self.rates,
                "source_sizes": self.sizes_per_source,
                "corrupted_per_source": per_source,
                "corrupted": int(corrupted.sum()),
                "labels_sha256": self.labels_sha256,
            },
            "loss_granularity": self.loss_granularity,
            "loss_weights": self.loss_weights_mode,
            "loss_groups": len(self.loss_names),
        }
