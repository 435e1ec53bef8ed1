import numpy as np
import pytest
import torch

from bench.app import build
from bench.budget import Budget
from bench.runner import run
from tests.helpers import bench_config


def branin_regret(method: str, evaluations: int = 25, seed: int = 0) -> float:
    experiment = build(bench_config("task=branin", f"method={method}", f"seed={seed}"))
    result = run(experiment.task, experiment.method, Budget(evaluations=evaluations), seed, incumbent_repeats=0)
    return result.incumbent.evaluation.test["regret"]


@pytest.mark.parametrize("method", ["gp_ei", "gp_ts"])
def test_bayesian_optimisation_finds_the_branin_minimum(method):
    """25 evaluations, 4 of them the Sobol design: regret below 0.1, where random search with the
    same seed and budget stays above it (Branin's minimum is 0.397887; regret is exact)."""
    assert branin_regret("random") > 0.1
    assert branin_regret(method) < 0.1


def test_warm_start_carries_hyperparameters_but_not_the_outcome_scaling():
    experiment = build(bench_config("task=hartmann6", "method=gp_ei", "seed=0"))
    method = experiment.method
    run(experiment.task, method, Budget(evaluations=14), 0, incumbent_repeats=0)
    first = method.fit()
    assert set(method.hyperparameters) and all(
        k.startswith(("covar_module", "likelihood", "mean_module")) for k in method.hyperparameters
    )
    method.objectives = [100.0 * y for y in method.objectives]  # the same data on another scale
    second = method.fit()
    y = torch.tensor(method.objectives)
    assert float(second.outcome_transform.means) == pytest.approx(float(-y.mean()))
    x = torch.tensor(method.space.encode(method.configs))
    mean = second.posterior(x).mean.squeeze(-1).detach().numpy()
    np.testing.assert_allclose(-mean, method.objectives, atol=0.05 * float(y.std()))
    assert not torch.equal(first.outcome_transform.stdvs, second.outcome_transform.stdvs)
