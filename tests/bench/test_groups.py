"""Grouped L2 penalties (``task.l2_granularity``): one space entry per group of weights, the same
space for every method; what the groups are (``bench.training.weight_groups``); and the training a
grouped configuration runs, checked against the penalty written out by hand."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.budget import Budget
from bench.build import build
from bench.config import CONFIG_DIR
from bench.errors import BenchError
from bench.protocols import FidelityMethod, Rung
from bench.records import RUN_FILE
from bench.report.load import read_trials
from bench.runner import RunSettings, run
from bench.space import SearchSpace
from bench.training import check_granularity, momentum_sgd, penalty, weight_groups
from methods.hypergradient import HypergradientDescent
from tests.helpers import TINY_FIXED, bench_config, run_bench, run_module

TINY_MNIST = [
    "task=mnist_mlp",
    "task.dataset=digits",
    "task.layers=[6]",
    "task.space.iterations.low=2",
    "+task.space.iterations.fixed=4",
]
FIXED_STEP = ["+task.space.learning_rate.fixed=0.1", "+task.space.momentum.fixed=0.9"]
METHODS = sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml"))  # every registered method


def test_blocks_cut_each_matrix_into_contiguous_blocks_of_nearly_equal_size():
    groups, names = weight_groups("blocks_3", [("a", 7, 2), ("b", 2, 5)])
    rows_a = groups[0].reshape(7, 2)[:, 0].tolist()  # row-major: one group per row (input unit)
    assert rows_a == [0, 0, 0, 1, 1, 2, 2] and (groups[0].reshape(7, 2) == groups[0].reshape(7, 2)[:, :1]).all()
    assert groups[1].reshape(2, 5)[:, 0].tolist() == [3, 4]  # fewer rows than blocks: one block per row
    assert names == ("a_block_0", "a_block_1", "a_block_2", "b_block_0", "b_block_1")
    sizes = np.bincount(groups[0].numpy()) // 2
    assert sizes.max() - sizes.min() <= 1
    for granularity, count in (("universal", 1), ("per_layer", 2), ("blocks_1", 2), ("blocks_100", 9), ("per_unit", 9)):
        groups, names = weight_groups(granularity, [("a", 7, 2), ("b", 2, 5)])
        assert len(names) == count == int(torch.cat(groups).max()) + 1
    with pytest.raises(BenchError, match=r"l2_granularity='blocks_0': allowed: universal, per_layer, blocks_K"):
        check_granularity("blocks_0")


def test_a_grouped_entry_keeps_its_type_bounds_default_and_fixed_value():
    declared = {
        "learning_rate": {"type": "real", "low": 0.01, "high": 1.0, "log": True, "default": 0.1},
        "l2": {"type": "real", "low": 1e-6, "high": 1.0, "log": True, "default": 1e-3},
        "iterations": {"type": "int", "low": 1, "high": 9, "default": 3},
    }
    space = SearchSpace.from_config(declared).grouped("l2", ["x", "y"])
    assert space.names == ["learning_rate", "l2_x", "l2_y", "iterations"]
    assert space.bounds["l2_x"] == space.bounds["l2_y"] == (1e-6, 1.0)
    assert space.default == {"learning_rate": 0.1, "l2_x": 1e-3, "l2_y": 1e-3, "iterations": 3}
    assert space.members("l2") == ("l2_x", "l2_y") and space.declared("l2_y") == "l2"
    assert space.encode([space.default]).shape == (1, 4)  # log scale kept: the same column for both groups
    assert space.encode([space.default])[0, 1] == space.encode([space.default])[0, 2]
    assert "l2_<group> (2 groups: l2_x..l2_y) real [1e-06, 1.0, log]" in repr(space)
    fixed = SearchSpace.from_config({**declared, "l2": {**declared["l2"], "fixed": 1e-4}}).grouped("l2", ["x", "y"])
    assert fixed.fixed == {"l2_x": 1e-4, "l2_y": 1e-4} and fixed.tuned == ["learning_rate", "iterations"]


@pytest.mark.parametrize("granularity", ["per_layer", "blocks_3"])
def test_every_method_gets_the_same_grouped_space_and_proposes_inside_it(granularity):
    """The acceptance test of grouped hyperparameters: at a granularity every method is given the
    space the task declares (same names, bounds, defaults), its proposals lie inside it, and a
    hypergradient method's L2 groups are exactly the space's, in a trial it trains."""
    spaces = []
    for method in METHODS:
        cfg = bench_config(*TINY_MNIST, *FIXED_STEP, f"task.l2_granularity={granularity}", f"method={method}")
        experiment = build(cfg)
        space, task = experiment.method.space, experiment.task
        groups = task.groups()[1]
        assert space is task.space and space.members("l2") == tuple(f"l2_{g}" for g in groups)
        assert len(groups) == {"per_layer": 2, "blocks_3": 3 + 3}[granularity]  # digits: 64-6-10
        spaces.append((space.names, space.bounds, space.default))
        if isinstance(experiment.method, HypergradientDescent):
            assert experiment.method.l2_names == space.members("l2")
            result = run(task, experiment.method, Budget(evaluations=2), 0, RunSettings(incumbent_repeats=0))
            assert [len(t.evaluation.metrics["theta"]) for t in result.trials] == [2 + len(groups)] * 2
            assert all(set(t.config) == set(space.names) for t in result.trials)
        if isinstance(experiment.method, FidelityMethod):  # a multi-fidelity method asks for rungs
            experiment.method.begin(task.full_fidelity)
        asked = experiment.method.ask(1)
        configs = [item.config if isinstance(item, Rung) else item for item in asked]
        assert configs and all(c in space for c in configs), method
    assert all(s == spaces[0] for s in spaces)


def test_a_grouped_configuration_trains_with_each_groups_own_penalty():
    """mnist_mlp at blocks_2: ``evaluate`` equals momentum SGD with the per-weight penalty written out
    by hand from the groups' rows, and differs from the universal penalty at the groups' mean."""
    experiment = build(bench_config(*TINY_MNIST, "task.l2_granularity=blocks_2", "method=random"))
    task, space = experiment.task, experiment.task.space
    config = {**space.default, **{name: 10.0 ** -(k + 1) for k, name in enumerate(space.members("l2"))}}
    problem = task.training_problem(config, 3)
    by_hand = []  # layer 0: 64 inputs in blocks of 32 rows x 6 columns; layer 1: 6 inputs in blocks of 3 rows x 10
    for first, (rows, columns) in ((0, (64, 6)), (2, (6, 10))):
        for block in range(2):
            by_hand.append(torch.full((rows // 2 * columns,), 10.0 ** -(first + block + 1)))
        by_hand.append(torch.zeros(columns))  # the layer's biases
    lam = torch.cat(by_hand)
    l2 = torch.tensor([config[n] for n in space.members("l2")], dtype=problem.w0.dtype)
    torch.testing.assert_close(penalty(problem, l2), lam.to(problem.w0.dtype), rtol=0, atol=0)
    evaluation = task.evaluate(config, 3)
    w_final, _, _ = momentum_sgd(problem, config["learning_rate"], config["momentum"], l2)
    assert evaluation.objective == task.score(w_final).objective
    mean = math.exp(float(np.mean(np.log([config[n] for n in space.members("l2")]))))
    universal = build(bench_config(*TINY_MNIST, "method=random")).task
    other = universal.evaluate({**universal.space.default, "learning_rate": config["learning_rate"], "l2": mean}, 3)
    assert other.objective != evaluation.objective


def test_a_grouping_that_depends_on_a_tuned_architecture_is_refused_in_one_line():
    with pytest.raises(BenchError, match=r"task.l2_granularity=per_unit: the groups depend on the hidden units"):
        build(bench_config("task=bikeshare", "task.l2_granularity=per_unit", "method=random"))
    with pytest.raises(BenchError, match=r"task.l2_granularity='blocks_x': allowed: universal, per_layer, blocks_K"):
        build(bench_config("task=bikeshare", "task.l2_granularity=blocks_x", "method=random"))
    experiment = build(bench_config("task=bikeshare", *TINY_FIXED, "task.l2_granularity=per_unit", "method=random"))
    assert len(experiment.task.space.members("l2")) == 56 + 2


def test_a_grouped_sweep_is_recorded_reported_and_its_importance_summed_per_entry(tmp_path):
    """A real run at blocks_2 (4 L2 groups on digits 64-6-10): run.json names the groups, the trial
    table has one column per group, the report prints no group column, and fANOVA's importance
    reads one row for l2 (the sum of its groups) beside the learning rate."""
    arguments = [*TINY_MNIST, "task.l2_granularity=blocks_2", "method=random", "budget.evaluations=12"]
    done = run_bench(*arguments, "incumbent_repeats=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    members = ["l2_layer_0_block_0", "l2_layer_0_block_1", "l2_layer_1_block_0", "l2_layer_1_block_1"]
    assert meta["space_groups"] == {"l2": members}
    trials = read_trials(tmp_path / "run")
    assert [f"config.{m}" in trials for m in members] == [True] * 4 and "config.l2" not in trials
    report = run_module("bench.report", str(tmp_path / "run"), "--importance", cwd=tmp_path, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "l2_layer_0_block_0" not in report.stdout
    importance = pd.read_csv(tmp_path / "run" / "report" / "importance.csv")
    assert sorted(importance["hyperparameter"]) == ["l2 (4 groups)", "learning_rate", "momentum"]
