"""The interfaces that tasks and methods implement. The core never imports a concrete one: they
are named in config (``_target_``) and built by Hydra, with these constructor conventions::

    Task(space: SearchSpace, device: str, **options)     # options from conf/task/<name>.yaml
    Method(space: SearchSpace, seed: int, **options)     # options from conf/method/<name>.yaml

Black-box methods are ask/tell objects that never see the training loop (``Method``). Beside
them: a task that trains several configurations in one vectorised run (``BatchTask``), a task that
hands its training loop over as pure functions (``DifferentiableTask``), and a method that tunes
through that loop (``TrainingLoopMethod``, the hypergradients); a task that trains part of the way
and continues later (``FidelityTask``), and a method that asks for such partial trainings and
stops the poor ones early (``FidelityMethod``, the multi-fidelity methods). The runner's loop (ask, evaluate,
record, tell) and the trial records are the same for every kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from bench.space import Config, SearchSpace

Status = Literal["ok", "diverged", "failed"]
"""``ok``: a finite objective. ``diverged``: training ran but the objective is not finite.
``failed``: the evaluation raised; ``Evaluation.error`` says why."""


@dataclass(frozen=True)
class Evaluation:
    """The outcome of training one configuration once.

    ``objective`` is the validation loss the methods minimise (lower is better). ``test`` holds
    test-split metrics and anything else a method must not see (a synthetic function's noise-free
    value). ``metrics`` holds anything else worth keeping (train loss, a pass/fail criterion the
    task declares in ``Task.pass_criteria``). Both are recorded, but a method is told only the
    objective, the status, the costs and the metrics its task declares public
    (``Task.public_metrics``; ``observed``).
    Costs count the evaluation only: ``cost_seconds`` is measured by the runner unless the task
    reports its own (a simulated cost); ``cost_steps`` counts training work in training steps (an
    optimizer update is 1; a hypergradient method adds its reverse pass in the same unit).
    """

    objective: float
    test: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    status: Status = "ok"
    cost_steps: int = 0
    cost_seconds: float | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status == "ok" and not math.isfinite(self.objective):
            object.__setattr__(self, "status", "diverged")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def observed(self, public_metrics: Sequence[str] = ()) -> Evaluation:
        """What a method is told: objective, status and costs, plus the ``public_metrics``."""
        return Evaluation(
            objective=self.objective,
            metrics={key: self.metrics[key] for key in public_metrics if key in self.metrics},
            status=self.status,
            cost_steps=self.cost_steps,
            cost_seconds=self.cost_seconds,
        )


@runtime_checkable
class Task(Protocol):
    """Something to tune: a search space and a way to train and score one configuration."""

    space: SearchSpace
    test_metric: str
    """The key of ``Evaluation.test`` that holds the task's headline test score."""
    public_metrics: tuple[str, ...]
    """Keys of ``Evaluation.metrics`` a method may see beside the objective (usually none)."""
    pass_criteria: Mapping[str, str]
    """The task's pass/fail criteria the report shows beside the scores, usually none: a boolean key
    of ``Evaluation.metrics`` -> what passing means, in words (bikeshare: its course's pass mark)."""

    def evaluate(self, config: Config, seed: int) -> Evaluation:
        """Train ``config`` with randomness from ``seed`` only, and score it."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provenance written into ``run.json``: dataset, source, checksum, splits, preprocessing."""
        ...


def missing_members(obj: object, protocol: type) -> list[str]:
    """The members of ``protocol`` (its attributes and methods) that ``obj`` lacks, sorted."""
    names = {name for name in vars(protocol) if not name.startswith("_")}
    names |= set(vars(protocol).get("__annotations__", {}))
    return sorted(name for name in names if not hasattr(obj, name))


@runtime_checkable
class BatchTask(Task, Protocol):
    """A task that trains several configurations in one vectorised run (small models).

    The runner uses it for black-box trials when a method asks for more than one configuration
    at a time (``batch_size`` > 1). Each result must equal ``evaluate(config, seed)`` up to float
    rounding, seed for seed.
    """

    def evaluate_batch(self, configs: Sequence[Config], seeds: Sequence[int]) -> list[Evaluation]: ...


@runtime_checkable
class Method(Protocol):
    """A hyperparameter optimiser with an ask/tell interface.

    ``ask(n)`` returns up to ``n`` configurations to evaluate next; fewer than ``n`` is allowed
    and an empty list means the method has nothing left to propose (the run stops). ``tell``
    receives the same configurations with what the method may see of their evaluations
    (``Evaluation.observed``: objective, status, costs and the task's public metrics).

    Two things the runner relies on. Determinism: a method built with the same seed and told the
    same outcomes asks the same configurations (resuming a run replays its record through the
    method and checks each proposal). Faults: a method may declare ``fallback(n) -> list[Config]``,
    a simpler proposal (random) the runner uses once when ``ask`` raises; a ``tell`` that raises
    is called once more, so it should change nothing when it raises.
    """

    def ask(self, n: int) -> list[Config]: ...

    def tell(self, configs: Sequence[Config], evaluations: Sequence[Evaluation]) -> None: ...


@dataclass(frozen=True)
class TrainingProblem:
    """One training run as pure functions of a flat weight vector, for hypergradient methods.

    The training is momentum SGD in the form of Maclaurin et al. (2015, Algorithm 1), from
    ``w0`` with ``v0 = 0``, for t = 0 .. steps-1::

        g_t     = grad_w [ train_loss(w_t, batch(t)) + 0.5 * sum_i exp(log_l2[l2_groups[i]]) * w_i^2 ]
        v_{t+1} = momentum * v_t - (1 - momentum) * g_t
        w_{t+1} = w_t + learning_rate * v_{t+1}

    Parameters whose ``l2_groups`` entry is -1 carry no penalty. The continuous hyperparameters
    (learning rate, momentum, one log-L2 penalty per group) are the method's to choose; everything
    else (architecture, number of steps, the batch schedule) is fixed by the configuration and seed.
    """

    w0: Any
    """Initial weights for this seed, a tensor of shape ``(P,)``."""
    steps: int
    """Number of training steps T."""
    batch: Any
    """``t: int -> batch``: step t's training batch in this seed's fixed schedule (any step, in any
    order: a reverse pass reads them backwards)."""
    train_loss: Any
    """``(w (P,), batch) -> scalar``: the unpenalised training loss on a batch; differentiable
    twice in ``w`` with ``torch.func``."""
    validation_loss: Any
    """``w (P,) -> scalar``: the objective the hyperparameters are tuned on, differentiable."""
    l2_groups: Any
    """``(P,)`` integer tensor: the L2 group of each weight, -1 for none."""
    l2_names: tuple[str, ...]
    """One name per L2 group (``all``; a layer; a layer's input unit)."""
    score: Any
    """``w (P,) -> Evaluation``: the task's objective, test metrics and metrics of trained weights."""
    loss_names: tuple[str, ...] = ()
    """One name per group of training examples whose loss has its own weight (the space's
    ``loss_weight`` entries); empty for a task without loss hyperparameters."""
    loss_weights: Any = None
    """``(D,)`` tensor: the weight of each group's loss, one per ``loss_names``; ``train_loss`` is the
    weighted mean ``mean(loss_weights[example_groups(batch)] * example_losses(w, batch))``
    (``bench.training.with_loss_weights`` sets the three together)."""
    example_losses: Any = None
    """``(w (P,), batch) -> (B,)``: each example's unweighted training loss, differentiable in ``w``
    by ``torch.func`` (a task with loss hyperparameters only)."""
    example_groups: Any = None
    """``batch -> (B,)`` integer tensor: the loss-weight group of each example of a batch."""


HYPERGRADIENT_KIND, BLACK_BOX_KIND, MULTI_FIDELITY_KIND = "hypergradient", "black-box", "multi-fidelity"
"""A method's kind as ``run.json`` records it (``method_kind``) and the report reads it:
hypergradient for a ``TrainingLoopMethod``, multi-fidelity for a ``FidelityMethod``, black-box for
any other (each of its trials a full training)."""


HYPERGRADIENT_HYPERPARAMETERS = ("learning_rate", "momentum", "l2")
"""What a differentiable task's space declares for hypergradient methods: the continuous
hyperparameters of its momentum-SGD training. A hypergradient method tunes those the space leaves
free; every other hyperparameter must be fixed (``task.space.<name>.fixed``)."""
LOSS_HYPERPARAMETERS = ("loss_weight",)
"""What a differentiable task's space may declare besides: hyperparameters inside the training loss
(``TrainingProblem.loss_names``), one entry per group of training examples, a linear scale."""


@runtime_checkable
class DifferentiableTask(Task, Protocol):
    """A task that can hand its training loop to a hypergradient method.

    Its space declares ``learning_rate``, ``momentum`` and ``l2`` (the continuous hyperparameters
    a hypergradient method tunes); ``evaluate`` trains with the same momentum SGD as
    ``TrainingProblem``, so black-box and hypergradient trials score the same training.
    """

    L2_GRANULARITIES: tuple[str, ...]
    l2_granularity: str
    """How the weights are grouped into L2 penalties (``bench.training.weight_groups``); the space
    holds one entry per group (``SearchSpace.grouped``: ``l2`` itself when there is one)."""

    def training_problem(self, config: Config, seed: int, l2_granularity: str | None = None) -> TrainingProblem:
        """The training ``evaluate(config, seed)`` runs, as pure functions; its L2 groups are the
        task's (the space's), unless ``l2_granularity`` asks for others (numerical checks)."""
        ...


@runtime_checkable
class TrainingLoopMethod(Method, Protocol):
    """A method that trains the configurations it proposes itself (hypergradients).

    The runner calls ``evaluate(task, config, seed)`` instead of ``task.evaluate`` for its trials
    and for the incumbent's retrainings; it must score the same training as ``task.evaluate``.
    """

    def evaluate(self, task: Task, config: Config, seed: int) -> Evaluation: ...

    def restore(self, task: Task, config: Config, seed: int, evaluation: Evaluation) -> None:
        """Take the state ``evaluate(task, config, seed)`` would have left, from the ``evaluation``
        it returned, recorded (a resumed run) or computed in a worker process (``trial_timeout_s``).
        ``evaluate`` must therefore record in ``Evaluation.metrics`` what this needs."""
        ...


@dataclass(frozen=True)
class Rung:
    """What a multi-fidelity method asks for: train ``config`` up to ``fidelity`` training steps.

    ``lineage`` is the method's name for one training of one configuration (any whole number it
    chooses, unique per training): a rung whose lineage trained before continues that paused
    training from where it stopped (it must ask for more steps than before), with that training's
    seed, so it costs only the new steps; a new lineage starts from scratch.
    """

    config: Config
    fidelity: int
    lineage: int


PausedTraining = dict[str, Any]
"""A paused training as a fidelity task hands it back: tensors and plain numbers only (saved with
``torch.save`` and read with ``weights_only=True``), opaque to the runner."""


@runtime_checkable
class FidelityTask(Task, Protocol):
    """A task that trains a configuration part of the way and continues it later (freeze-thaw).

    Continuing to step r2 a training paused at r1 must give the same weights and objective, bit
    for bit, as training straight to r2 with the same seed; and training to ``full_fidelity`` the
    same objective as ``evaluate`` up to float rounding.
    """

    full_fidelity: int | None
    """Training steps of ``evaluate``, the same for every configuration of the space; None when
    the space tunes the training length (a multi-fidelity method then cannot run)."""

    def train_to(
        self, config: Config, seed: int, steps: int, paused: PausedTraining | None = None
    ) -> tuple[Evaluation, PausedTraining]:
        """Train ``config`` (randomness from ``seed``) to ``steps`` training steps, from scratch or
        from ``paused`` (which this task returned for the same configuration and seed at fewer
        steps), and score it there. ``cost_steps`` counts only the steps trained in this call."""
        ...


@runtime_checkable
class FidelityMethod(Protocol):
    """A multi-fidelity method: it asks for ``Rung``s instead of configurations, and decides per
    training whether to continue it (a later rung of the same lineage) or stop it (never again).

    ``ask(n)`` returns up to ``n`` rungs and ``tell`` gets them back with what the method may see of
    their evaluations, as for ``Method``, with the same determinism and fault contract. The runner
    calls ``begin(full_fidelity)`` once, before the first ``ask``: the steps of a full training.
    """

    multi_fidelity: bool
    """True: marks the method as one (a protocol member, so ``isinstance`` can tell it apart)."""

    def begin(self, full_fidelity: int) -> None: ...

    def ask(self, n: int) -> list[Rung]: ...

    def tell(self, rungs: Sequence[Rung], evaluations: Sequence[Evaluation]) -> None: ...


def method_kind(method: Method) -> str:
    """``HYPERGRADIENT_KIND`` for a method that trains through the loop, ``MULTI_FIDELITY_KIND`` for
    one that stops trainings early, else ``BLACK_BOX_KIND``."""
    if isinstance(method, TrainingLoopMethod):
        return HYPERGRADIENT_KIND
    return MULTI_FIDELITY_KIND if isinstance(method, FidelityMethod) else BLACK_BOX_KIND
