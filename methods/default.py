"""The untuned baseline: the task's default configuration, evaluated ``repeats`` times per run.

This is the "default settings" baseline that papers too often compare against. Run it over several
seeds (``python -m bench -m method=default seed=0,1,2``) to see its spread; its one evaluation per
run is not selected on noise, so its best validation objective is an honest estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.errors import BenchError
from bench.protocols import Evaluation
from bench.space import Config, SearchSpace


class DefaultConfig:
    uses_seed = False  # nothing random to seed: every seed asks for the same configuration

    def __init__(self, space: SearchSpace, seed: int, repeats: int = 1) -> None:
        if repeats < 1:
            raise BenchError(f"method.repeats={repeats}: must be at least 1")
        self.space, self.default = space, space.default
        self.left = repeats

    def ask(self, n: int) -> list[Config]:
        count = min(n, self.left)
        self.left -= count
        return [dict(self.default) for _ in range(count)]

    def tell(self, configs: Sequence[Config], evaluations: Sequence[Evaluation]) -> None:
        """The default configuration does not depend on results."""
