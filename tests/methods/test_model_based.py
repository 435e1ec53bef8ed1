"""What every model-based method shares (methods/model_based.py), checked on each of them."""

import numpy as np
import pytest

from bench.budget import Budget
from bench.build import build
from bench.errors import BenchError
from bench.protocols import Evaluation
from bench.runner import RunSettings, run
from tests.helpers import TINY, bench_config

MODEL_BASED = ["gp_ei", "gp_ts", "skopt_gp", "cmaes"]
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
    assert all(start == experiment.task.space.sobol(12, 4) for start in starts)


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


def test_turbo_proposes_inside_its_trust_region_and_adapts_it():
    """hartmann6 embedded in 12 dimensions: after the design, each proposal differs from the best
    point only inside the box (side ``length`` x lengthscale weights, clipped); improving batches
    double the side, failing ones halve it."""
    experiment = build(bench_config("task=hartmann6", "task.dimensions=12", "method=turbo", "method.n_initial=6"))
    method, task = experiment.method, experiment.task
    result = run(task, method, Budget(evaluations=10), 0, settings=RunSettings(incumbent_repeats=0))
    assert len(result.trials) == 10 and not result.method_errors  # every proposal is turbo's own
    model = method.fit()
    best = task.space.encode([method.configs[int(np.argmin(method.targets()))]])[0]
    lengthscale = model.covar_module.lengthscale.detach().reshape(-1).numpy()
    half = lengthscale / np.exp(np.log(lengthscale).mean()) * method.length / 2
    for config in method.ask(2):
        x = task.space.encode([config])[0]
        assert np.all((x >= np.clip(best - half, 0, 1) - 1e-9) & (x <= np.clip(best + half, 0, 1) + 1e-9))
    method.length, method.successes, method.failures = 0.4, 0, 0
    good = Evaluation(objective=float(np.min(method.targets())) - 1.0)
    for _ in range(method.success_tolerance):
        method.tell([task.space.sample(1, np.random.default_rng(len(method.configs)))[0]], [good])
        good = Evaluation(objective=good.objective - 1.0)
    assert method.length == 0.8
    bad = Evaluation(objective=0.0)
    for _ in range(12):  # failure tolerance: ceil(max(4, 12) / 1) batches of one
        method.tell([task.space.sample(1, np.random.default_rng(len(method.configs)))[0]], [bad])
    assert method.length == 0.4


def test_turbo_refuses_a_categorical_space_in_one_line():
    with pytest.raises(BenchError, match=r"method turbo moves a box over numeric hyperparameters; .* learning_rate"):
        build(bench_config(*DISCRETE, "method=turbo"))


def test_cmaes_starts_its_first_generation_at_the_best_design_point():
    experiment = build(bench_config("task=hartmann6", "method=cmaes", "method.n_initial=4", "seed=2"))
    method = experiment.method
    result = run(experiment.task, method, Budget(evaluations=12), 2, settings=RunSettings(incumbent_repeats=0))
    assert len(result.trials) == 12 and not result.method_errors  # every proposal is CMA-ES's own
    design = result.trials[:4]
    best = min(design, key=lambda t: t.evaluation.objective).config
    assert method.study.sampler._x0 == best
    assert all(t.config not in [d.config for d in design] for t in result.trials[4:])


def test_full_covariance_cmaes_refuses_hundreds_of_hyperparameters_and_the_separable_form_runs():
    """Above 256 numeric hyperparameters an ask of the full form takes tens of seconds
    (results/reference/perf_methods_dims_cpu.md): it refuses in one line, naming the way out."""
    with pytest.raises(BenchError, match=r"^method=cmaes with a full covariance: 300 numeric hyperparameters, allowed"):
        build(bench_config("task=branin", "task.dimensions=300", "method=cmaes"))
    experiment = build(
        bench_config(
            "task=branin", "task.dimensions=300", "method=cmaes", "method.use_separable_cma=true", "method.n_initial=2"
        )
    )
    result = run(
        experiment.task, experiment.method, Budget(evaluations=4), 0, settings=RunSettings(incumbent_repeats=0)
    )
    assert len(result.trials) == 4 and not result.method_errors
    assert all(t.config in experiment.task.space for t in result.trials)
