"""What every model-based method shares (methods/model_based.py), checked on each of them."""

import pytest

from bench.budget import Budget
from bench.build import build
from bench.runner import RunSettings, run
from tests.helpers import TINY, bench_config

MODEL_BASED = ["gp_ei", "gp_ts", "skopt_gp"]
# bikeshare with 3 x 2 x 2 = 12 configurations in all
DISCRETE = [
    *TINY,
    "task.space.iterations={type:int,low:10,high:12,default:10}",
    "task.space.hidden_nodes={type:int,low:1,high:2,default:1}",
    "~task.space.learning_rate",
    "+task.space.learning_rate={type:categorical,choices:[0.1,0.5],default:0.1}",
    "~task.space.momentum",  # optional in bikeshare: plain gradient descent
    "~task.space.l2",
]


def test_every_model_based_method_starts_from_the_same_sobol_design():
    starts = []
    for method in MODEL_BASED:
        experiment = build(bench_config("task=hartmann6", f"method={method}", "seed=4"))
        result = run(
            experiment.task, experiment.method, Budget(evaluations=12), 4, settings=RunSettings(incumbent_repeats=0)
        )
        starts.append([t.config for t in result.trials])
    assert starts[0] == starts[1] == starts[2] == experiment.task.space.sobol(12, 4)


@pytest.mark.parametrize("method", MODEL_BASED)
def test_a_small_discrete_space_is_exhausted_without_repeats(method):
    experiment = build(bench_config(*DISCRETE, f"method={method}", "method.n_initial=4"))
    result = run(
        experiment.task,
        experiment.method,
        Budget(evaluations=20),
        0,
        settings=RunSettings(batch_size=3, incumbent_repeats=0),
    )
    keys = [tuple(t.config.values()) for t in result.trials]
    assert len(keys) == len(set(keys)) == 12
    assert result.stop_reason == "the method has nothing left to ask"


@pytest.mark.parametrize("method", MODEL_BASED)
def test_failed_trials_are_imputed_and_the_run_goes_on(method):
    """Learning rates from 1 to 1e4: most trials diverge; the model must keep proposing."""
    experiment = build(
        bench_config(
            *TINY,
            f"method={method}",
            "method.n_initial=4",
            "task.space.learning_rate={type:real,low:1.0,high:1e4,log:true,default:1.0}",
        )
    )
    result = run(
        experiment.task, experiment.method, Budget(evaluations=9), 0, settings=RunSettings(incumbent_repeats=0)
    )
    statuses = [t.evaluation.status for t in result.trials]
    assert len(result.trials) == 9 and "diverged" in statuses and "ok" in statuses
    targets = experiment.method.targets()
    ok = [t.evaluation.objective for t in result.trials if t.evaluation.ok]
    assert targets.max() == max(ok)  # a diverged trial counts as the worst observed
