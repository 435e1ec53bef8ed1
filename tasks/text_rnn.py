"""Recurrent text classifiers with the search space of Greff et al., "LSTM: A Search Space Odyssey"
(2017), tunable by black-box methods and, through its training loop, by hypergradients.

Tokens. A text is lowercased and split by the regular expression ``TOKEN`` (words, numbers, and
words with an apostrophe such as "don't"). The vocabulary comes from the training split only: the
``max_vocabulary`` most frequent tokens seen at least ``min_count`` times (ties broken
alphabetically); id 0 is padding, id 1 an unknown token. A text keeps its first ``max_length``
tokens (48 covers more than 99% of rotten_tomatoes snippets) and is padded with 0 on the right.

Network. An embedding of ``embedding_size`` (with Gaussian noise of standard deviation
``input_noise`` added to every embedded token in training, Greff et al.'s input noise), ``layers``
recurrent layers of ``hidden_units`` GRU or LSTM cells (``cell``; PyTorch's gate equations, written
here from torch operations so they support double backward on CPU and CUDA, which cuDNN's fused
RNN does not), and a linear softmax layer on the state after the text's last token. Masking: texts
are right-padded, so that state has seen no padding, and padding never changes a prediction.
Initialisation as PyTorch's: recurrent and output weights uniform in +-1/sqrt(hidden units),
embeddings N(0, 1).

Training. Momentum SGD on the mean cross-entropy of ``batch_size`` training texts per step, drawn
with replacement (``bench.training``, the same training a hypergradient method differentiates), for
``epochs`` x (training texts / batch size) steps, with an L2 penalty on the weights (biases
unpenalised). Batches and input noise are rebuilt per step from the seed, in any order.

Objective: validation error rate (what a practitioner tunes an RNN classifier for; a hypergradient
method descends its smooth surrogate, the validation cross-entropy). Test metrics: accuracy (the
headline) and error rate. Also recorded: validation cross-entropy, and the training loss and error
on a fixed sample of 1,000 training texts.

The default configuration is what people run untuned: a 1-layer LSTM of 128 units on 128-wide
embeddings, batches of 32, 10 epochs, learning rate 0.1 with momentum 0.9, no noise, no penalty,
the settings of tutorials written for corpora of hundreds of thousands of texts; on 10,200 short
snippets they fit the training split and overfit.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import BenchError
from bench.protocols import Evaluation, PausedTraining, TrainingProblem
from bench.space import Config, SearchSpace
from bench.training import (
    L2_GRANULARITIES,
    BatchSchedule,
    check_granularity,
    torch_dtype,
    train_to,
    weight_groups,
)
from tasks.text_data import SPLIT_SHARES, load_corpus

ARCHITECTURE = ("cell", "layers", "hidden_units", "embedding_size")
"""The hyperparameters that shape the weights: fixed in the space when the L2 penalty is grouped."""
HYPERPARAMETERS = (
    "cell",
    "embedding_size",
    "hidden_units",
    "layers",
    "epochs",
    "batch_size",
    "learning_rate",
    "momentum",
    "input_noise",
    "l2",
)
CELLS = {"gru": 3, "lstm": 4}  # gates per cell
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
PAD, UNKNOWN = 0, 1
SPLITS = tuple(SPLIT_SHARES)
TRAIN_SAMPLE, TRAIN_SAMPLE_SEED = 1000, 0  # training texts the training loss and error are measured on


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def build_vocabulary(texts: list[str], max_vocabulary: int, min_count: int) -> dict[str, int]:
    """token -> id (from 2), the ``max_vocabulary`` most frequent with at least ``min_count`` uses."""
    counts = Counter(token for text in texts for token in tokenize(text))
    kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))[:max_vocabulary]
    return {token: index + 2 for index, token in enumerate(kept)}


def encode(texts: list[str], vocabulary: dict[str, int], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(n, max_length)``, right-padded with 0, and lengths ``(n,)`` (at least 1: an
    empty text is one unknown token)."""
    ids = torch.zeros(len(texts), max_length, dtype=torch.long)
    lengths = torch.ones(len(texts), dtype=torch.long)
    for row, text in enumerate(texts):
        tokens = [vocabulary.get(t, UNKNOWN) for t in tokenize(text)][:max_length] or [UNKNOWN]
        ids[row, : len(tokens)] = torch.tensor(tokens)
        lengths[row] = len(tokens)
    return ids, lengths


# --------------------------------------------------------------------------------- the network
def layout(config: Config, vocabulary: int, classes: int) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the parameters in the flat weight vector, in order."""
    gates, hidden, width = CELLS[config["cell"]], config["hidden_units"], config["embedding_size"]
    shapes = [("embedding", (vocabulary, width))]
    for layer in range(config["layers"]):
        n_in = width if layer == 0 else hidden
        shapes += [
            (f"layer_{layer}.w_ih", (n_in, gates * hidden)),
            (f"layer_{layer}.w_hh", (hidden, gates * hidden)),
            (f"layer_{layer}.b_ih", (gates * hidden,)),
            (f"layer_{layer}.b_hh", (gates * hidden,)),
        ]
    return [*shapes, ("output.w", (hidden, classes)), ("output.b", (classes,))]


def unflatten(w: torch.Tensor, shapes: list[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    pieces = torch.split(w, [math.prod(shape) for _, shape in shapes])
    return {name: piece.reshape(shape) for (name, shape), piece in zip(shapes, pieces, strict=True)}


def logits(
    params: dict[str, torch.Tensor],
    cell: str,
    layers: int,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(n, L)`` token ids and ``(n,)`` lengths -> ``(n, classes)`` logits. ``noise``: ``(n, >= W, E)``
    added to the embedded tokens (training only), W the longest length here.

    Masking: texts are right-padded, so the state after a text's last token has seen no padding;
    the classifier reads that state (position ``length - 1``) and padding never changes a
    prediction. Steps after the longest text are padding for every row and are skipped."""
    width = int(lengths.max())
    x = F.embedding(ids[:, :width], params["embedding"])  # (n, W, E)
    if noise is not None:
        x = x + noise[:, :width]
    n = ids.shape[0]
    for layer in range(layers):
        w_ih, w_hh = params[f"layer_{layer}.w_ih"], params[f"layer_{layer}.w_hh"]
        b_ih, b_hh = params[f"layer_{layer}.b_ih"], params[f"layer_{layer}.b_hh"]
        hidden = w_hh.shape[0]
        # every step's input term in one product, then one (n, G*H) piece per step: unbind's backward
        # stacks the pieces' gradients once, where indexing [:, t] would fill a zero (n, W, G*H) per step
        bias = b_ih + b_hh if cell == "lstm" else b_ih  # the GRU's b_hn sits inside r * (...)
        projected = torch.addmm(bias, x.reshape(n * width, -1), w_ih).reshape(n, width, -1).unbind(1)
        h = x.new_zeros(n, hidden)
        c = h
        outputs = []
        for t in range(width):
            if cell == "gru":  # PyTorch's GRU equations; gates (r, z, n)
                recurrent = torch.addmm(b_hh, h, w_hh)
                r, z = torch.sigmoid(projected[t][:, : 2 * hidden] + recurrent[:, : 2 * hidden]).chunk(2, dim=1)
                candidate = torch.tanh(torch.addcmul(projected[t][:, 2 * hidden :], r, recurrent[:, 2 * hidden :]))
                h = torch.lerp(candidate, h, z)  # (1 - z) * n + z * h
            else:  # PyTorch's LSTM equations; gates stored (i, f, o, g) so one sigmoid covers three
                gates = torch.addmm(projected[t], h, w_hh)
                i, f, o = torch.sigmoid(gates[:, : 3 * hidden]).chunk(3, dim=1)
                c = torch.addcmul(f * c, i, torch.tanh(gates[:, 3 * hidden :]))
                h = o * torch.tanh(c)
            outputs.append(h)
        x = torch.stack(outputs, dim=1)  # (n, W, H): the next layer's input
    last = x[torch.arange(n, device=x.device), lengths - 1]  # the state after each text's last token
    return last @ params["output.w"] + params["output.b"]


class TextRNNTask:
    test_metric = "accuracy"
    public_metrics = ("train_loss",)
    pass_criteria: dict[str, str] = {}
    L2_GRANULARITIES = L2_GRANULARITIES

    def __init__(
        self,
        space: SearchSpace,
        device: str = "cpu",
        dataset: str = "rotten_tomatoes",
        max_length: int = 48,
        max_vocabulary: int = 10000,
        min_count: int = 2,
        dtype: str = "float32",
        l2_granularity: str = "universal",
    ) -> None:
        if sorted(space.names) != sorted(HYPERPARAMETERS):
            raise BenchError(f"task.space for text_rnn must declare exactly {', '.join(HYPERPARAMETERS)}")
        for name, value in (("max_length", max_length), ("max_vocabulary", max_vocabulary), ("min_count", min_count)):
            if value < 1:
                raise BenchError(f"task.{name}={value}: must be a positive whole number")
        cell = space.fixed.get("cell")
        choices = [cell] if cell is not None else next(d.categories for d in space.dimensions if d.name == "cell")
        unknown = [c for c in choices if c not in CELLS]
        if unknown:
            raise BenchError(f"task.space.cell: {unknown} are not cells; allowed: {', '.join(CELLS)}")
        self.l2_granularity = check_granularity(l2_granularity, "task.l2_granularity")
        free = [name for name in ARCHITECTURE if name not in space.fixed]
        if l2_granularity != "universal" and free:
            fixes = " ".join(f"+task.space.{name}.fixed={space.default[name]!r}" for name in free)
            raise BenchError(
                f"task.l2_granularity={l2_granularity}: the groups depend on the network, whose {', '.join(free)} "
                f"the space tunes; fix them, e.g. {fixes}"
            )
        self.device, self.dtype = torch.device(device), torch_dtype(dtype)
        self.max_length, self.max_vocabulary, self.min_count = max_length, max_vocabulary, min_count
        self.corpus = load_corpus(dataset)
        texts = {split: self.corpus.part(split) for split in SPLITS}
        self.vocabulary = build_vocabulary(texts["train"][0], max_vocabulary, min_count)
        self.data = {}
        for split, (text, labels) in texts.items():
            ids, lengths = encode(text, self.vocabulary, max_length)
            self.data[split] = (
                ids.to(self.device),
                lengths.to(self.device),
                torch.as_tensor(labels, dtype=torch.long, device=self.device),
            )
        self.classes = len(self.corpus.labels)
        # training-split metrics on a fixed sample: scoring all 10,200 texts would cost as much as an epoch
        sample = np.random.default_rng(TRAIN_SAMPLE_SEED).permutation(len(texts["train"][1]))[:TRAIN_SAMPLE]
        rows = torch.as_tensor(np.sort(sample), device=self.device)
        self.data["train_sample"] = tuple(tensor[rows] for tensor in self.data["train"])
        shapes = layout(space.default, len(self.vocabulary) + 2, self.classes)
        self.space = space.grouped("l2", self.groups(shapes)[1])  # one l2 entry per group; universal: l2 itself

    def groups(
        self, shapes: list[tuple[str, tuple[int, ...]]], l2_granularity: str | None = None
    ) -> tuple[list[torch.Tensor], tuple[str, ...]]:
        """The L2 groups of the weight matrices of ``layout`` (``bench.training.weight_groups``)."""
        matrices = [(name, *shape) for name, shape in shapes if len(shape) == 2]
        return weight_groups(l2_granularity or self.l2_granularity, matrices)

    # ------------------------------------------------------------------ protocol
    def evaluate(self, config: Config, seed: int) -> Evaluation:
        return self.train_to(config, seed, self.steps(config))[0]  # the whole training

    def l2(self, config: Config) -> torch.Tensor:
        """``(G,)``: the configuration's L2 penalty per group, in the space's order."""
        return torch.tensor([config[name] for name in self.space.members("l2")], dtype=self.dtype, device=self.device)

    @property
    def full_fidelity(self) -> int | None:
        """Steps of every full training when the space fixes ``epochs`` and ``batch_size``."""
        fixed = self.space.fixed
        return self.steps(fixed) if "epochs" in fixed and "batch_size" in fixed else None

    def train_to(
        self, config: Config, seed: int, steps: int, paused: PausedTraining | None = None
    ) -> tuple[Evaluation, PausedTraining]:
        """``evaluate``'s training stopped at ``steps`` (or continued from ``paused``), scored there."""
        problem = self.training_problem(config, seed)
        return train_to(problem, config["learning_rate"], config["momentum"], self.l2(config), steps, paused)

    def steps(self, config: Config) -> int:
        """Training steps: ``epochs`` passes' worth of batches over the training split."""
        return max(1, round(config["epochs"] * len(self.data["train"][2]) / config["batch_size"]))

    def training_problem(self, config: Config, seed: int, l2_granularity: str | None = None) -> TrainingProblem:
        """``evaluate(config, seed)``'s training as pure functions of the flat weights (``layout``).
        L2 groups (biases never penalised; default the task's ``l2_granularity``, whose groups are
        the space's): ``universal`` one for every weight matrix; ``per_layer`` one per matrix;
        ``blocks_K`` each matrix's input units (rows) in K contiguous blocks; ``per_unit`` one per
        input unit (row) of each matrix."""
        shapes = layout(config, len(self.vocabulary) + 2, self.classes)
        w0, groups, names = self._initial(shapes, seed, l2_granularity)
        cell, layers = config["cell"], config["layers"]
        ids, lengths, labels = self.data["train"]
        schedule = BatchSchedule(len(labels), config["batch_size"], seed, self.device)
        noise_std, width = float(config["input_noise"]), config["embedding_size"]

        def batch(t: int) -> tuple[torch.Tensor, ...]:
            rows = schedule.rows(t)
            noise = None
            if noise_std > 0:  # rebuilt from (seed, t): the same noise whichever order steps are read in
                state = int(np.random.SeedSequence([seed, 7, t]).generate_state(1)[0])
                generator = torch.Generator(device=self.device).manual_seed(state)
                shape = (len(rows), int(lengths[rows].max()), width)  # up to the batch's longest text
                noise = noise_std * torch.randn(shape, generator=generator, dtype=self.dtype, device=self.device)
            return ids[rows], lengths[rows], labels[rows], noise

        def forward(w: torch.Tensor, split_ids, split_lengths, noise=None) -> torch.Tensor:
            return logits(unflatten(w, shapes), cell, layers, split_ids, split_lengths, noise)

        def train_loss(w: torch.Tensor, b: tuple[torch.Tensor, ...]) -> torch.Tensor:
            return F.cross_entropy(forward(w, b[0], b[1], b[3]), b[2])

        def validation_loss(w: torch.Tensor) -> torch.Tensor:
            split_ids, split_lengths, split_labels = self.data["validation"]
            return F.cross_entropy(forward(w, split_ids, split_lengths), split_labels)

        def score(w: torch.Tensor) -> Evaluation:
            w = w.detach()
            if not bool(torch.isfinite(w).all()):
                return Evaluation(objective=math.inf, status="diverged", error="weights are non-finite")
            with torch.no_grad():
                results = {}
                for split in ("train_sample", "validation", "test"):
                    split_ids, split_lengths, split_labels = self.data[split]
                    out = forward(w, split_ids, split_lengths)
                    results[split] = (
                        float(F.cross_entropy(out, split_labels)),
                        float((out.argmax(1) == split_labels).double().mean()),
                    )
            return Evaluation(
                objective=1.0 - results["validation"][1],
                test={"accuracy": results["test"][1], "error": 1.0 - results["test"][1]},
                metrics={
                    "validation_loss": results["validation"][0],
                    "train_loss": results["train_sample"][0],
                    "train_error": 1.0 - results["train_sample"][1],
                    "dataset": self.corpus.dataset,
                },
            )

        return TrainingProblem(
            w0=w0,
            steps=self.steps(config),
            batch=batch,
            train_loss=train_loss,
            validation_loss=validation_loss,
            l2_groups=groups,
            l2_names=names,
            score=score,
        )

    def _initial(
        self, shapes: list[tuple[str, tuple[int, ...]]], seed: int, l2_granularity: str | None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
        """Initial weights ``(P,)`` as PyTorch initialises them, each weight's L2 group and the names."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        options = {"dtype": self.dtype, "device": self.device, "generator": generator}
        bound = 1 / math.sqrt(dict(shapes)["output.w"][0])  # recurrent and output layers: 1/sqrt(hidden units)
        matrix_groups, names = self.groups(shapes, l2_granularity)
        pieces, groups, matrices = [], [], iter(matrix_groups)
        for name, shape in shapes:
            if name == "embedding":
                piece = torch.randn(shape, **options)
            else:
                piece = (torch.rand(shape, **options) * 2 - 1) * bound
            pieces.append(piece.reshape(-1))
            groups.append(torch.full((shape[0],), -1) if len(shape) == 1 else next(matrices))  # biases: no penalty
        groups_tensor = torch.cat(groups).long().to(self.device)
        return torch.cat(pieces), groups_tensor, names

    def describe(self) -> dict[str, Any]:
        return {
            **self.corpus.describe(),
            "tokens": f"lowercased, {TOKEN.pattern}; vocabulary from the training split: "
            f"{len(self.vocabulary)} tokens (max {self.max_vocabulary}, min count {self.min_count}) + pad + unknown; "
            f"first {self.max_length} tokens, right-padded, masked",
            "network": "embedding (+ Gaussian input noise) -> GRU/LSTM layers -> linear softmax on the last state",
            "training": "momentum SGD on mean cross-entropy + L2 on weight matrices, batches drawn with replacement",
            "objective": "validation error rate",
            "test_metric": "test accuracy",
        }
