"""Every preset in conf/suite/ composes, and every job of its sweep passes the pre-flight build;
the comparison presets budget in training steps and give every method one space. A preset whose
jobs read Fashion-MNIST is built on it where it is installed and skipped, with the reason, where it
is not (``tests.helpers.command_jobs``); without its dataset it refuses before its first job."""

from pathlib import Path

import pytest

from bench.config import CONFIG_DIR
from bench.protocols import BLACK_BOX_KIND, HYPERGRADIENT_KIND, MULTI_FIDELITY_KIND, method_kind
from tests.helpers import command_jobs, run_bench

PRESETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "suite").glob("*.yaml"))
DIGITS = ["task.dataset=digits", "task.train_images=null"]  # offline and small, where the presets name Fashion-MNIST
OVERRIDES = {
    "drmad_mnist": DIGITS,
    "many_hyperparameters": DIGITS,
    "many_hyperparameters_full": DIGITS,
    "hyper_cleaning": DIGITS,
}


def setting_of(experiment) -> tuple:
    """A task at one granularity of its L2 penalties and of its loss weights, and how it sets them."""
    task = experiment.task
    return (
        experiment.task_name,
        getattr(task, "l2_granularity", None),
        getattr(task, "loss_granularity", None),
        getattr(task, "loss_weights_mode", None),
    )


def jobs(preset):
    """The preset's job configurations, and one built experiment per job that differs in more than
    its seed (building the same job under another seed checks nothing more)."""
    return command_jobs((f"suite={preset}", *OVERRIDES.get(preset, [])))


@pytest.mark.parametrize(
    "preset", [pytest.param(p, marks=pytest.mark.slow) if p == "many_hyperparameters_full" else p for p in PRESETS]
)
def test_every_job_of_a_preset_builds(preset):
    configs, experiments = jobs(preset)
    assert len(configs) >= 2
    for setting in {setting_of(e) for e in experiments}:  # one space for every method on each setting of a task
        assert len({repr(e.task.space) for e in experiments if setting_of(e) == setting}) == 1
    # drmad_mnist compares at the paper's hyper-iteration counts; lstm_odyssey runs one method for a
    # number of trials to read importance from: neither compares methods at equal compute
    if preset not in ("drmad_mnist", "lstm_odyssey"):
        for task in {e.task_name for e in experiments}:
            budgets = {
                (e.budget.evaluations, e.budget.train_steps, e.budget.seconds)
                for e in experiments
                if e.task_name == task
            }
            assert len(budgets) == 1  # one budget per task, in compute (training steps) or wall-clock seconds
            ((evaluations, steps, seconds),) = budgets
            assert evaluations is None and (steps is not None or seconds is not None)


def test_the_fair_baseline_gives_each_model_default_and_tuned_rows_on_one_space():
    configs, experiments = jobs("fair_baseline_text")
    pairs = sorted((e.task_name, e.method_name) for e in experiments)
    assert pairs == [
        ("text_linear", "default"),
        ("text_linear", "gp_ei"),
        ("text_linear", "random"),
        ("text_rnn", "default"),
        ("text_rnn", "drmad"),
        ("text_rnn", "gp_ei"),
        ("text_rnn", "random"),
    ]
    rnn = next(e for e in experiments if e.task_name == "text_rnn")
    assert rnn.task.space.tuned == ["learning_rate", "momentum", "l2"]  # what DrMAD can tune, for all
    assert sorted({c.seed for c in configs}) == list(range(5)) and len(configs) == 35


def test_the_headline_comparison_has_every_method_on_the_space_hypergradients_can_tune():
    configs, experiments = jobs("bo_vs_hypergrad")
    methods = [e.method_name for e in experiments]
    assert sorted(methods) == sorted(
        [
            "default",
            "random",
            "gp_ei",
            "gp_ts",
            "skopt_gp",
            "optuna_tpe",
            "optuna_gp",
            "drmad",
            "drmad",
            "exact_hypergrad",
            "truncated_hypergrad",
            "online_hypergrad",
        ]
    )
    assert {e.method.reverse_fraction for e in experiments if e.method_name == "drmad"} == {None, 0.1}  # K = T, T/10
    space = experiments[0].task.space
    assert space.fixed == {"iterations": 2000, "hidden_nodes": 16}
    assert space.tuned == ["learning_rate", "momentum", "l2"]
    assert sorted({c.seed for c in configs}) == list(range(10)) and len(configs) == 120


def test_the_30_training_preset_gives_each_tuner_the_steps_of_30_gru_trainings():
    configs, experiments = jobs("fair_baseline_text_30")
    assert sorted(e.method_name for e in experiments) == ["default", "gp_ei", "random"]
    gp_ei = next(e for e in experiments if e.method_name == "gp_ei")
    assert gp_ei.method.n_initial == 6  # chosen for this budget on held-out seeds (the 100-s preset's is 2)
    steps = {e.task.steps(e.task.space.default) for e in experiments}  # epochs are fixed in this space
    assert steps == {638} and gp_ei.budget.train_steps == 30 * 638
    assert sorted({c.seed for c in configs}) == list(range(5)) and len(configs) == 15


@pytest.mark.parametrize(
    ("preset", "seeds", "steps", "iterations"),
    [("many_hyperparameters", 5, 10000, 500), ("many_hyperparameters_full", 10, 60000, 2000)],
)
def test_the_many_hyperparameter_presets_run_every_method_at_five_d_on_one_space_each(preset, seeds, steps, iterations):
    """From 1 to the per-unit count of L2 penalties (digits here: 64 + 50 + 50 + 50 = 214 inputs),
    every black-box method that runs at that d, the hypergradient family and the default, one
    training-step budget, the learning rate, momentum and length fixed at the paper's values."""
    configs, experiments = jobs(preset)
    dims = {e.task.l2_granularity: len(e.task.space) for e in experiments}
    assert dims == {"universal": 1, "per_layer": 4, "blocks_8": 32, "blocks_32": 128, "per_unit": 214}
    methods = {e.method_name for e in experiments}
    assert methods == {
        "random",
        "cmaes",
        "optuna_tpe",
        "gp_ei",
        "turbo",
        "drmad",
        "exact_hypergrad",
        "implicit_hypergrad",
        "truncated_hypergrad",
        "default",
    }
    assert len(experiments) == 50 and sorted({c.seed for c in configs}) == list(range(seeds))
    for e in experiments:
        assert e.task.space.fixed == {"iterations": iterations, "learning_rate": 0.05, "momentum": 0.95}
        assert (e.budget.evaluations, e.budget.train_steps) == (None, steps)
        if e.method_name == "drmad":
            assert e.method.reverse_fraction == 0.1  # K = T/10
        if e.method_name == "cmaes":
            assert e.method.options["use_separable_cma"]


def test_the_multi_fidelity_preset_runs_every_kind_of_method_on_one_space_per_task_at_equal_steps():
    """Multi-fidelity methods against full-training BO, a hypergradient method and the default: two
    fidelity tasks, their continuous hyperparameters tuned and their length fixed, a budget of whole
    trainings per task, 5 seeds."""
    configs, experiments = jobs("multi_fidelity")
    assert sorted({c.seed for c in configs}) == [0, 1, 2, 3, 4] and len(configs) == 2 * 9 * 5
    kinds = {e.method_name: method_kind(e.method) for e in experiments}
    assert kinds == {
        "asha": MULTI_FIDELITY_KIND,
        "hyperband": MULTI_FIDELITY_KIND,
        "bohb": MULTI_FIDELITY_KIND,
        "top_k_early": MULTI_FIDELITY_KIND,
        "random": BLACK_BOX_KIND,
        "gp_ei": BLACK_BOX_KIND,
        "optuna_tpe": BLACK_BOX_KIND,
        "default": BLACK_BOX_KIND,
        "drmad": HYPERGRADIENT_KIND,
    }
    trainings = {"text_rnn": 6, "mnist_mlp": 20}
    for e in experiments:
        assert [d.name for d in e.task.space.dimensions] == ["learning_rate", "momentum", "l2"]
        assert e.task.full_fidelity is not None
        assert e.budget.train_steps == trainings[e.task_name] * e.task.full_fidelity


@pytest.mark.parametrize(
    "arguments",
    [["suite=many_hyperparameters"], ["suite=multi_fidelity", "experiment=multi_fidelity/mnist_mlp"]],
    ids=" ".join,
)
def test_a_preset_whose_dataset_is_missing_refuses_before_its_first_job_in_one_line(tmp_path, arguments):
    """Fashion-MNIST read from an empty folder, as on a machine without Debian's package: the pre-flight
    build of the first job refuses, saying what is missing and how to get it, and nothing is written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_bench(*arguments, f"task.data_dir={empty}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.stderr.startswith(f"error: task.dataset=fashion_mnist: Fashion-MNIST is missing: {empty} has none")
    assert "scripts/install-data" in done.stderr and "apt-get install dataset-fashion-mnist" in done.stderr
    assert "task.data_dir" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not any(empty.iterdir())  # no results/
