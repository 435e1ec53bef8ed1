"""The runner's side of multi-fidelity runs: rungs, lineages and paused trainings.

A multi-fidelity method (``FidelityMethod``) asks for ``Rung``s: train this configuration to r
steps, as a new training or continuing one it trained before (its ``lineage``). Each rung is one
trial, recording the ``fidelity`` it reached and the trial it ``continues`` (None: a new training);
its ``cost_steps`` counts only the steps trained in it, so the step budget counts every rung once.
A continued training keeps the seed of its first rung (its initial weights and batches), and the
task continues it from the state it paused in (``FidelityTask.train_to``), bit for bit as if it had
never stopped.

Paused trainings (``PausedTrainings``) are kept by the trial that paused them. In memory, at most
``in_memory`` of them, the most recently used (a GRU of 660,000 weights pauses in 5 MB: weights and
velocities); in a run folder, every one is also written to ``paused/<trial>.pt`` before its trial is
recorded, so a training evicted from memory is read back, and a killed run resumed with
``resume=true`` continues its paused trainings bit for bit. The folder is removed when the run
completes. Without a folder (a run from Python) nothing is evicted.
"""

from __future__ import annotations

import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.budget import Budget, Spent
from bench.errors import BenchError, Unsupported
from bench.files import write_atomically
from bench.protocols import Evaluation, FidelityMethod, FidelityTask, PausedTraining, Rung, Task
from bench.space import Config

PAUSED_DIR = "paused"
IN_MEMORY = 16
"""Paused trainings a run keeps in memory by default (the rest on disk only)."""


class PausedTrainings:
    """Paused trainings by the trial that paused them: the ``in_memory`` most recently used in
    memory, every one in ``folder`` (``<trial>.pt``) when there is one (then nothing is lost to
    eviction; without a folder nothing is evicted)."""

    def __init__(self, folder: Path | None = None, in_memory: int = IN_MEMORY) -> None:
        if isinstance(in_memory, bool) or not isinstance(in_memory, int) or in_memory < 1:
            raise BenchError(f"paused_in_memory={in_memory!r}: must be a positive whole number")
        self.folder = None if folder is None else Path(folder)
        self.in_memory = in_memory
        self._kept: OrderedDict[int, PausedTraining] = OrderedDict()

    def path(self, trial: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{trial}.pt"

    def put(self, trial: int, state: PausedTraining) -> None:
        """Keep the training ``trial`` paused; on disk (atomically) before this returns."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path(trial), lambda tmp: torch.save(state, tmp))
        self._keep(trial, state)

    def get(self, trial: int) -> PausedTraining:
        """The training ``trial`` paused; a one-line error if it was never kept or its file is gone."""
        if trial in self._kept:
            self._kept.move_to_end(trial)
            return self._kept[trial]
        if self.folder is None or not self.path(trial).exists():
            where = "" if self.folder is None else f" ({self.path(trial)} is missing)"
            raise BenchError(f"cannot continue trial {trial}: its paused training was not kept{where}")
        try:
            state = torch.load(self.path(trial), weights_only=True)
        except Exception as error:  # noqa: BLE001 - a damaged file must stop a resume, not fail a trial
            raise BenchError(f"cannot continue trial {trial}: {self.path(trial)} is unreadable ({error})") from None
        self._keep(trial, state)
        return state

    def clear(self) -> None:
        """Forget every paused training and remove the folder (a completed run needs none)."""
        self._kept.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _keep(self, trial: int, state: PausedTraining) -> None:
        self._kept[trial] = state
        self._kept.move_to_end(trial)
        while self.folder is not None and len(self._kept) > self.in_memory:
            self._kept.popitem(last=False)


@dataclass(frozen=True)
class _Lineage:
    seed: int
    """The training seed of its first rung, which every later rung keeps."""
    trial: int
    """The trial of its latest rung, whose paused training the next rung continues."""
    fidelity: int


class FidelityRun:
    """A multi-fidelity method's run: which trial each rung continues, with which seed, and the
    training of each rung from its paused state."""

    def __init__(self, task: Task, method: FidelityMethod, paused: PausedTrainings | None = None) -> None:
        self.task = check_fidelity(task, type(method).__name__)
        self.full = int(self.task.full_fidelity)  # type: ignore[arg-type]
        self.paused = paused if paused is not None else PausedTrainings()
        self.lineages: dict[int, _Lineage] = {}
        method.begin(self.full)

    def check(self, rungs: list[Rung], where: str) -> list[Rung]:
        """The rungs, after checking each continues its lineage to more steps, within a full training."""
        seen: set[int] = set()
        for rung in rungs:
            if not isinstance(rung, Rung):
                raise RuntimeError(f"{where}: asked for {rung!r}, not a Rung")
            before = self.lineages.get(rung.lineage)
            low = 1 if before is None else before.fidelity + 1
            if not low <= rung.fidelity <= self.full or rung.lineage in seen:
                raise RuntimeError(
                    f"{where}: rung of lineage {rung.lineage} to {rung.fidelity} steps; allowed {low} .. {self.full}, "
                    "each lineage at most once per ask"
                )
            seen.add(rung.lineage)
        return rungs

    def passes(self, budget: Budget, spent: Spent, rungs: list[Rung]) -> str | None:
        """Why the run stops before these rungs: they would take its training steps past
        ``budget.train_steps`` (their new steps are known before training, unlike a full training's:
        a multi-fidelity run never passes the step budget, where a trial that starts inside it may
        finish past it); None when they fit."""
        if budget.train_steps is None:
            return None
        new = sum(
            rung.fidelity - (self.lineages[rung.lineage].fidelity if rung.lineage in self.lineages else 0)
            for rung in rungs
        )
        if spent.train_steps + new <= budget.train_steps:
            return None
        if not spent.train_steps:
            raise BenchError(
                f"budget.train_steps={budget.train_steps} is smaller than the first rung ({new} steps): raise it, or "
                "lower method.min_fidelity"
            )
        return (
            f"budget.train_steps={budget.train_steps} reached: the next rung's {new} steps would pass it "
            f"({spent.train_steps} used)"
        )

    def continues(self, rung: Rung) -> int | None:
        """The trial whose paused training ``rung`` continues; None for a new training."""
        before = self.lineages.get(rung.lineage)
        return None if before is None else before.trial

    def seed(self, rung: Rung, new_seed: int) -> int:
        """A new training's seed is ``new_seed`` (its trial's); a continued one keeps its first."""
        before = self.lineages.get(rung.lineage)
        return new_seed if before is None else before.seed

    def evaluator(self, rungs: list[Rung], first: int, start: int) -> Callable[[Config, int], Evaluation]:
        """Evaluate the rungs ``start``, ``start + 1``, .. in turn (trials ``first + start`` ..),
        each paused training on disk before its trial is recorded."""
        position = start

        def evaluate(config: Config, seed: int) -> Evaluation:
            nonlocal position
            rung, trial = rungs[position], first + position
            position += 1
            continued = self.continues(rung)
            paused = None if continued is None else self.paused.get(continued)
            evaluation, state = self.task.train_to(config, seed, rung.fidelity, paused)
            if evaluation.status != "failed":  # as replayed() reads the record: a failed rung paused nothing
                self.paused.put(trial, state)
                self.lineages[rung.lineage] = _Lineage(seed, trial, rung.fidelity)
            return evaluation

        return evaluate

    def replayed(self, rung: Rung, trial: int, seed: int, failed: bool) -> None:
        """A recorded rung: its lineage moves on unless it failed (a failed rung paused nothing)."""
        if not failed:
            self.lineages[rung.lineage] = _Lineage(seed, trial, rung.fidelity)


def check_fidelity(task: Task, method: str) -> FidelityTask:
    """``task``, if a multi-fidelity method can run on it; else a one-line error saying why."""
    if not isinstance(task, FidelityTask):
        raise Unsupported(
            f"method {method} trains configurations part of the way and needs a fidelity task (one with "
            f"train_to() and full_fidelity); task {type(task).__name__} is not"
        )
    if task.full_fidelity is None:
        raise Unsupported(
            f"method {method} needs one training length for every configuration; task {type(task).__name__}'s space "
            "tunes it: fix it (e.g. +task.space.iterations.fixed=N, or task.space.epochs and task.space.batch_size)"
        )
    return task


def check_untimed(trial_timeout_s: float | None, method: str) -> None:
    """A one-line error for a multi-fidelity run with ``trial_timeout_s``: its paused trainings live
    in the run's process, and a timed trial runs in a forked worker."""
    if trial_timeout_s is not None:
        raise BenchError(
            f"trial_timeout_s={trial_timeout_s} with {method}: a multi-fidelity method's paused trainings live in "
            "the run's process, not in a timed worker; use trial_timeout_s=null"
        )
