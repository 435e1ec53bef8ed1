"""How one trial's training runs inside the tuning loop: an exception inside training becomes a
``failed`` evaluation with its reason, a trial under ``trial_timeout_s`` runs in a forked worker
process that ``pebble`` kills at the limit, and a batch of a ``BatchTask`` trains as one vectorised
run whose seconds its trials share. The loop itself is ``bench.runner``.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
import traceback
from collections.abc import Callable, Iterator

from pebble import concurrent

from bench.errors import BenchError
from bench.protocols import Evaluation
from bench.space import Config

log = logging.getLogger(__name__)

Evaluate = Callable[[Config, int], Evaluation]
EvaluateBatch = Callable[[list[Config], list[int]], list[Evaluation]]


class TrialTimeout(Exception):  # noqa: N818 - named for what happened, as TimeoutError
    """A trial ran past ``trial_timeout_s`` and its worker was stopped."""


def in_worker(evaluate: Evaluate, timeout_s: float) -> Evaluate:
    """``evaluate`` in a forked worker process that ``pebble`` kills after ``timeout_s`` seconds.

    Forked, so the task and its data are not pickled (only the ``Evaluation`` comes back); a
    method that trains itself gets its state back through ``TrainingLoopMethod.restore``.
    """
    worker = concurrent.process(timeout=timeout_s, context=multiprocessing.get_context("fork"))(evaluate)

    def evaluate_with_timeout(config: Config, seed: int) -> Evaluation:
        try:
            return worker(config, seed).result()
        except TimeoutError as error:
            if error.args[:1] == ("Task Timeout",):  # pebble's, not one the task raised itself
                raise TrialTimeout(timeout_s) from None
            raise

    return evaluate_with_timeout


def evaluate_all(
    evaluate: Evaluate,
    evaluate_batch: EvaluateBatch | None,
    configs: list[Config],
    seeds: list[int],
    timeout_s: float | None,
) -> Iterator[tuple[Evaluation, float]]:
    """Each configuration's evaluation and its seconds, as each finishes. With ``evaluate_batch``
    (a task that trains several configurations in one vectorised run) the whole batch finishes at
    once and shares its seconds evenly; if it raises, each trial fails with its error."""
    if evaluate_batch is not None and len(configs) > 1:
        tic = time.perf_counter()
        try:
            evaluations = evaluate_batch(configs, seeds)
        except BenchError:
            raise
        except Exception as error:  # noqa: BLE001 - as _evaluate, for the whole batch
            log.warning(
                "batched evaluation of %d configurations failed: %s: %s", len(configs), type(error).__name__, error
            )
            evaluations = [failed(error)] * len(configs)
        each = (time.perf_counter() - tic) / len(configs)
        yield from ((evaluation, each) for evaluation in evaluations)
        return
    for config, seed in zip(configs, seeds, strict=True):
        tic = time.perf_counter()
        evaluation = evaluate_once(evaluate, config, seed, timeout_s)
        yield evaluation, time.perf_counter() - tic


def failed(error: Exception) -> Evaluation:
    return Evaluation(objective=math.nan, status="failed", error=f"{type(error).__name__}: {error}")


def evaluate_once(evaluate: Evaluate, config: Config, seed: int, timeout_s: float | None = None) -> Evaluation:
    """Run one evaluation; an exception inside training, or a timeout, becomes a ``failed`` trial."""
    try:
        return evaluate(config, seed)
    except BenchError:
        raise
    except TrialTimeout:
        log.warning("evaluation of %s ran past trial_timeout_s=%g s and was stopped", config, timeout_s)
        error = f"timeout: ran past trial_timeout_s={timeout_s:g} s"
        return Evaluation(objective=math.nan, status="failed", error=error)
    except Exception as error:  # noqa: BLE001 - a crashing configuration must not end the run
        log.warning("evaluation of %s failed: %s: %s", config, type(error).__name__, error)
        log.debug("%s", traceback.format_exc())
        return failed(error)
