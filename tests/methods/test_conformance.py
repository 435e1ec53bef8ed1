"""The conformance checks (bench/conformance.py) over every registered method (conf/method/*.yaml)
on every task it accepts (a black-box method on one setting of each kind of space:
``BLACK_BOX_SETTINGS``), over every variant a preset runs (conf/method/<preset>/*.yaml) on its
preset's task, and over every registered task (conf/task/*.yaml)."""

from pathlib import Path

import pytest

from bench.budget import Budget
from bench.build import build
from bench.config import CONFIG_DIR
from bench.conformance import check_method, check_task
from bench.errors import BenchError
from tests.helpers import TINY, TINY_FIXED, bench_config

METHODS = sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml"))
VARIANTS = sorted(
    str(p.relative_to(Path(CONFIG_DIR) / "method").with_suffix(""))
    for p in (Path(CONFIG_DIR) / "method").glob("*/*.yaml")
)
TASKS = sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml"))
MNIST = ["task.dataset=digits", "task.layers=[8]", "task.space.iterations.low=5", "task.space.iterations.high=30"]
TEXT_RNN = [  # a small network on the real corpus: an epoch of 40 steps of 256 texts cut to 12 tokens
    "task=text_rnn",
    "task.max_vocabulary=500",
    "task.max_length=12",
    "task.space.embedding_size.low=2",
    "task.space.embedding_size.high=6",
    "task.space.embedding_size.default=4",
    "task.space.hidden_units.low=2",
    "task.space.hidden_units.high=6",
    "task.space.hidden_units.default=4",
    "+task.space.epochs.fixed=1",
    "+task.space.batch_size.fixed=256",
]
TEXT_RNN_FIXED = [f"+task.space.{name}.fixed={value}" for name, value in [("cell", "gru"), ("layers", 1)]] + [
    f"+task.space.{name}.fixed={value}" for name, value in [("embedding_size", 4), ("hidden_units", 4)]
]
L2_ONLY_SPACE = ["+task.space.learning_rate.fixed=0.1", "+task.space.momentum.fixed=0.9"]
HYPER_CLEANING = [  # softmax regression on digits' 1,000 training images in 10 sources, a loss weight per source
    "task=hyper_cleaning",
    "task.dataset=digits",
    "task.train_images=null",
    "task.batch_size=20",
    "task.space.iterations.low=5",
    "task.space.iterations.high=30",
]
SETTINGS = {  # cheap settings of every task; "[fixed]": discrete hyperparameters fixed, as hypergradients need
    "bikeshare": ["task=bikeshare", *TINY],
    "bikeshare[fixed]": ["task=bikeshare", *TINY_FIXED],
    "branin": ["task=branin"],
    "hartmann6": ["task=hartmann6"],
    "learning_curves": ["task=learning_curves"],
    "mnist_mlp": ["task=mnist_mlp", *MNIST, "task.space.iterations.default=10"],
    "mnist_mlp[fixed]": ["task=mnist_mlp", *MNIST, "+task.space.iterations.fixed=10"],
    "text_linear": ["task=text_linear"],
    "text_rnn": TEXT_RNN,
    "text_rnn[fixed]": [*TEXT_RNN, *TEXT_RNN_FIXED, "+task.space.input_noise.fixed=0.1"],
    # "[l2]": only the L2 penalty tuned, what implicit differentiation needs
    "bikeshare[l2]": ["task=bikeshare", *TINY_FIXED, *L2_ONLY_SPACE],
    "mnist_mlp[l2]": ["task=mnist_mlp", *MNIST, "+task.space.iterations.fixed=10", *L2_ONLY_SPACE],
    "hyper_cleaning": [*HYPER_CLEANING, "task.space.iterations.default=10"],
    "hyper_cleaning[fixed]": [*HYPER_CLEANING, "+task.space.iterations.fixed=10"],
    "hyper_cleaning[l2]": [*HYPER_CLEANING, "+task.space.iterations.fixed=10", *L2_ONLY_SPACE],  # and the loss weights
}
OPTIONS = {  # the default configuration, evaluated for the whole budget; top_k_early's round inside 5 rungs
    "default": ["method.repeats=5"],
    "top_k_early": ["method.candidates=3", "method.keep=1", "method.min_fidelity=0.5"],
}
HYPERGRADIENT = (
    "drmad",
    "drmad_k10",
    "exact_hypergrad",
    "truncated_hypergrad",
    "online_hypergrad",
    "forward_hypergrad",
)
L2_ONLY = ("implicit_hypergrad",)  # tunes only the L2 penalties (and loss weights)
NO_LOSS_WEIGHTS = ("online_hypergrad",)  # its one-step rules do not tune weights inside the training loss
LOSS_WEIGHTED = ("hyper_cleaning", "hyper_cleaning[fixed]", "hyper_cleaning[l2]")  # settings that tune loss weights
NUMERIC_ONLY = ("turbo",)  # a trust region over numeric hyperparameters: refuses a categorical entry
CATEGORICAL = ("text_linear", "text_rnn")  # the settings whose spaces tune a categorical entry
MULTI_FIDELITY = ("asha", "hyperband", "bohb", "top_k_early")
ONE_LENGTH = (
    "bikeshare[fixed]",
    "bikeshare[l2]",
    "mnist_mlp[fixed]",
    "mnist_mlp[l2]",
    "text_rnn",
    "text_rnn[fixed]",
    "hyper_cleaning[fixed]",
    "hyper_cleaning[l2]",
)
"""The settings of fidelity tasks whose space fixes the training length, as multi-fidelity methods need."""


def accepts(method_name: str, setting: str) -> bool:
    """Whether a method can tune a setting's space (black-box methods tune any)."""
    if method_name in NO_LOSS_WEIGHTS and setting in LOSS_WEIGHTED:
        return False
    if method_name in L2_ONLY:
        return "[l2]" in setting
    if method_name in HYPERGRADIENT:
        return "[fixed]" in setting or "[l2]" in setting
    if method_name in NUMERIC_ONLY:
        return setting not in CATEGORICAL
    if method_name in MULTI_FIDELITY:
        return setting in (*ONE_LENGTH, "learning_curves")
    return True


PRESET_SETTINGS = {  # the folder of a preset's method variants -> a small setting of the task that preset tunes
    "bo_vs_hypergrad": "bikeshare[fixed]",
    "bo_vs_hypergrad_42k": "bikeshare[fixed]",
    "fair_baseline_text": "text_rnn[fixed]",
    "many_hyperparameters": "mnist_mlp[l2]",  # the preset tunes only L2 penalties (grouped: tests/bench/test_groups.py)
    "multi_fidelity": "text_rnn[fixed]",  # learning_rate, momentum, l2 tuned; the length fixed
    "hyper_cleaning": "hyper_cleaning[fixed]",  # learning_rate, momentum, l2 and the loss weights tuned
}


def test_every_task_has_a_small_setting_and_every_variant_folder_its_presets_task():
    assert set(TASKS) <= {name.split("[")[0] for name in SETTINGS}
    assert set(METHODS) >= set(HYPERGRADIENT) | set(L2_ONLY) | set(MULTI_FIDELITY)
    assert {variant.split("/")[0] for variant in VARIANTS} == set(PRESET_SETTINGS)


def overrides(method_name: str, setting: str) -> list[str]:
    """The setting, the method, and a design of 2 points so model-based methods model from trial 3."""
    cfg = bench_config(*SETTINGS[setting], f"method={method_name}")
    design = ["method.n_initial=2"] if "n_initial" in cfg.method else []
    return [*SETTINGS[setting], f"method={method_name}", *OPTIONS.get(method_name, []), *design]


BLACK_BOX_SETTINGS = ("bikeshare", "branin", "mnist_mlp", "text_linear", "text_rnn")
"""A black-box method sees a task only through its space: these five hold every kind of entry (real
on a linear and a log scale, integer, categorical with tuple choices, 1 - log-uniform, a batch
task). The "[fixed]" and "[l2]" settings are the same spaces with entries fixed, there for the
hypergradient methods; hartmann6 is branin's kind with more dimensions."""


def checked(method_name: str, setting: str) -> bool:
    """Whether ``test_method_conforms`` runs a method on a setting."""
    if method_name in (*HYPERGRADIENT, *L2_ONLY, *MULTI_FIDELITY):
        return True  # every setting: the ones they cannot tune must be refused in one line
    return setting in BLACK_BOX_SETTINGS


def trains_grus(method_name: str, setting: str) -> bool:
    """Whether a pair trains several GRUs (seconds each): every method on text_rnn but random search,
    which stays in the default run for the kinds of entry only text_rnn's space has."""
    return setting.startswith("text_rnn") and method_name != "random"


def repeats_a_setting(method_name: str, setting: str) -> bool:
    """Whether a pair checks again what another pair of the default run checks: hyper_cleaning with
    only the L2 penalty and loss weights tuned is there for implicit differentiation, every other
    method runs on its "[fixed]" setting; there, the multi-fidelity methods and DrMAD's K = T/10
    variant do what they do on mnist_mlp[fixed] (the loss weights are the hypergradient family's)."""
    if setting == "hyper_cleaning[l2]":
        return method_name != "implicit_hypergrad"
    return setting == "hyper_cleaning[fixed]" and method_name in (*MULTI_FIDELITY, "drmad_k10")


PAIRS = [
    pytest.param(
        method_name,
        setting,
        marks=[pytest.mark.slow]
        if trains_grus(method_name, setting) or repeats_a_setting(method_name, setting)
        else [],
    )
    for setting in SETTINGS
    for method_name in METHODS
    if checked(method_name, setting)
]
"""Every (method, setting) pair; those that train GRUs run with ``--full``. The default run checks
every method on the bikeshare, mnist_mlp, branin and text_linear settings, and random search on
text_rnn."""


@pytest.mark.parametrize("method_name, setting", PAIRS)
def test_method_conforms(method_name, setting):
    """Every method on every task setting it accepts; only hypergradient methods and turbo refuse some, in one line."""
    try:
        build(bench_config(*overrides(method_name, setting)))
    except BenchError as error:
        assert "\n" not in str(error)
        assert not accepts(method_name, setting), str(error)
        return
    assert accepts(method_name, setting), "a method built on a space it cannot tune"

    def make(seed):
        experiment = build(bench_config(*overrides(method_name, setting), f"seed={seed}"))
        return experiment.task, experiment.method

    check_method(make, Budget(evaluations=5))


VARIANT_EVALUATIONS = {"multi_fidelity/top_k_early": 20}  # a round of 16 candidates, then its best continued


@pytest.mark.parametrize(
    "variant",
    [  # hyper_cleaning's variants differ from the general methods by a setting; one of them in the default run
        pytest.param(v, marks=pytest.mark.slow)
        if v.startswith("hyper_cleaning/") and v != "hyper_cleaning/exact_hypergrad"
        else v
        for v in VARIANTS
    ],
)
def test_every_presets_method_variant_conforms_with_its_own_settings(variant):
    """A variant is checked as the preset runs it: its design size, meta-optimiser and meta step kept."""
    setting = SETTINGS[PRESET_SETTINGS[variant.split("/")[0]]]

    def make(seed):
        experiment = build(bench_config(*setting, f"method={variant}", f"seed={seed}"))
        return experiment.task, experiment.method

    check_method(make, Budget(evaluations=VARIANT_EVALUATIONS.get(variant, 5)))


@pytest.mark.parametrize("task_name", TASKS)
def test_task_conforms(task_name):
    check_task(build(bench_config(*SETTINGS[task_name])).task)


@pytest.mark.parametrize("setting", [*ONE_LENGTH, "learning_curves"])
def test_fidelity_task_conforms_with_its_length_fixed(setting):
    """With one training length, a fidelity task continues a paused training bit for bit."""
    task = build(bench_config(*SETTINGS[setting])).task
    assert task.full_fidelity is not None
    check_task(task)
