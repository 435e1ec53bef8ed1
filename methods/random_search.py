"""Random search: independent draws from each hyperparameter's prior (log-uniform where declared).

Own code rather than scikit-optimize's ``dummy_minimize``, which is broken with scikit-learn 1.9.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.protocols import Evaluation
from bench.space import Config, SearchSpace


class RandomSearch:
    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space = space
        self.rng = np.random.default_rng([seed, 0x5EED])

    def ask(self, n: int) -> list[Config]:
        return self.space.sample(n, self.rng)

    def tell(self, configs: Sequence[Config], evaluations: Sequence[Evaluation]) -> None:
        """Random search learns nothing from results."""
