"""Data hyper-cleaning (tasks/hyper_cleaning.py) and the hypergradient family through loss weights:
the corruption as recorded, groupings that nest, and every member's hypergradient of the loss
weights against an independent computation (central finite differences of the trained validation
loss; for implicit differentiation, a solve with the explicit Hessian and finite differences of the
training gradient). On scikit-learn's digits (1,000 training images, 10 sources of 100)."""

import json
import math

import numpy as np
import pytest
import torch

from bench.build import build
from bench.errors import BenchError
from bench.records import RUN_FILE
from bench.report.load import read_trials
from bench.training import loss_gradient, penalty, validation_loss_gradient, with_loss_weights
from methods.drmad import drmad_hypergradient
from methods.forward import forward_hypergradient
from methods.hypergradient import Hyperparameters, exact_hypergradient, train, truncated_hypergradient
from methods.implicit import implicit_hypergradient
from tests.helpers import bench_config, run_bench
from tests.methods.test_drmad import finite_differences

F64 = torch.float64
DIGITS = ["task=hyper_cleaning", "method=random", "task.dataset=digits", "task.train_images=null", "task.batch_size=20"]


def hyper_cleaning(*overrides: str):
    return build(bench_config(*DIGITS, *overrides)).task


@pytest.fixture(scope="module")
def task64():
    return hyper_cleaning("task.dtype=float64")


def hyper(weights: torch.Tensor, learning_rate: float = 0.3, momentum: float = 0.6, l2: float = 1e-2):
    return Hyperparameters(
        torch.tensor(math.log(learning_rate), dtype=F64),
        torch.logit(torch.tensor(momentum, dtype=F64)),
        torch.log(torch.tensor([l2], dtype=F64)),
        weights.to(F64),
    )


def test_the_corruption_is_exact_per_source_seeded_and_recorded():
    task = hyper_cleaning()
    record = task.describe()["corruption"]
    clean, noisy = task.clean_labels.numpy(), task.train[1].numpy()
    assert record["source_sizes"] == [100] * 10
    assert record["corrupted_per_source"] == [round(r * 100) for r in record["rates"]] == list(range(0, 100, 10))
    wrong = noisy != clean
    assert np.array_equal(wrong, task.corrupted.numpy())  # every corrupted label is a wrong one, no other is
    assert [int(wrong[100 * k : 100 * (k + 1)].sum()) for k in range(10)] == record["corrupted_per_source"]
    assert hyper_cleaning().describe()["corruption"]["labels_sha256"] == record["labels_sha256"]
    assert hyper_cleaning("task.corruption_seed=1").describe()["corruption"]["labels_sha256"] != record["labels_sha256"]
    assert np.array_equal(clean, build(bench_config("task=mnist_mlp", *DIGITS[1:])).task.train[1].numpy())


@pytest.mark.parametrize(
    "granularity, d", [("universal", 1), ("per_source", 10), ("blocks_50", 50), ("per_example", 1000)]
)
def test_a_granularity_sets_d_and_each_coarser_configuration_trains_identically_at_every_finer_one(granularity, d):
    """Per-source weights written at a finer granularity (each group the weight of its source) give
    the same training, bit for bit: the groupings nest."""
    coarse = hyper_cleaning("task.loss_granularity=per_source")
    weights = torch.linspace(0.05, 1.0, 10, dtype=torch.float64)
    if granularity == "universal":
        weights = torch.full((10,), 0.7, dtype=torch.float64)
    config = {**coarse.space.default, "iterations": 40} | dict(
        zip(coarse.space.members("loss_weight"), weights.tolist(), strict=True)
    )
    reference = coarse.evaluate(config, seed=3)
    fine = hyper_cleaning(f"task.loss_granularity={granularity}")
    names = fine.space.members("loss_weight")
    assert len(names) == d == len(fine.space) - 4
    source = torch.arange(1000) // 100
    group_source = torch.zeros(d, dtype=torch.long).scatter_(0, fine.example_group, source)  # one of each
    assert d == 1 or torch.equal(group_source[fine.example_group], source)  # every group lies in one source
    written = dict(zip(names, weights[group_source].tolist(), strict=True)) if d > 1 else {"loss_weight": 0.7}
    again = fine.evaluate({**fine.space.default, "iterations": 40, **written}, seed=3)
    assert again.objective == reference.objective and again.test == reference.test


def test_a_weight_of_zero_removes_an_examples_loss_and_the_oracle_weighs_clean_examples_one():
    task = hyper_cleaning("task.loss_granularity=per_example")
    oracle = task.oracle_config()
    weights = np.array([oracle[name] for name in task.space.members("loss_weight")])
    assert np.array_equal(weights, (~task.corrupted.numpy()).astype(float))
    per_source = hyper_cleaning().oracle_config()
    assert [per_source[f"loss_weight_source_{k}"] for k in range(10)] == pytest.approx([1 - k / 10 for k in range(10)])
    problem = task.training_problem(oracle, seed=0)
    x, y, rows = problem.batch(0)
    by_hand = torch.nn.functional.cross_entropy(task.logits(problem.w0, x), y, reduction="none")
    by_hand = (by_hand * torch.tensor(weights, dtype=by_hand.dtype)[rows]).mean()
    assert torch.equal(problem.train_loss(problem.w0, (x, y, rows)), by_hand)


@pytest.mark.parametrize("hvp", ["autograd", "func", "finite_difference"])
def test_the_exact_hypergradient_of_the_loss_weights_equals_central_finite_differences(task64, hvp):
    """Log learning rate, logit momentum, log L2 and the ten per-source weights (relative error < 1e-4)."""
    problem = task64.training_problem({**task64.space.default, "iterations": 6}, seed=0)
    h = hyper(torch.linspace(0.3, 1.0, 10))
    exact = exact_hypergradient(problem, h, hvp).gradient
    reference = finite_differences(problem, h)
    assert len(exact) == 13 and reference[3:].abs().min() > 1e-5  # every weight moves the loss: the check has teeth
    torch.testing.assert_close(exact, reference, rtol=1e-4, atol=1e-9)


def test_per_example_weights_too():
    """d = n: one weight per training example; those of the examples no batch drew get 0."""
    task = hyper_cleaning("task.dtype=float64", "task.train_images=200", "task.loss_granularity=per_example")
    problem = task.training_problem({**task.space.default, "iterations": 4}, seed=0)
    h = hyper(torch.linspace(0.2, 1.0, 200))
    exact = exact_hypergradient(problem, h).gradient
    reference = finite_differences(problem, h)
    drawn = torch.zeros(200, dtype=torch.bool)
    for t in range(4):
        drawn[problem.batch(t)[2]] = True
    assert torch.equal(exact[3:] != 0, drawn) and 0 < int(drawn.sum()) < 200
    torch.testing.assert_close(exact, reference, rtol=1e-4, atol=1e-9)


def test_every_member_differentiates_through_the_loss_weights(task64):
    """Forward mode equals the exact reverse pass; truncated reverse mode with K = T equals it bit for
    bit; DrMAD equals it where the trajectory is a line (T = 1); implicit differentiation's entries
    equal -(d2 L_train / dw dweight) . H^-1 grad L_val with H explicit and the mixed derivative by
    finite differences of the training gradient in the weight."""
    problem = task64.training_problem({**task64.space.default, "iterations": 6}, seed=0)
    h = hyper(torch.linspace(0.3, 1.0, 10))
    exact = exact_hypergradient(problem, h)
    torch.testing.assert_close(forward_hypergradient(problem, h).gradient, exact.gradient, rtol=1e-9, atol=1e-12)
    assert torch.equal(truncated_hypergradient(problem, h).gradient, exact.gradient)
    assert exact.loss_products == 6 and exact.cost_steps == 6 + 2 * 6 + 6
    line = task64.training_problem({**task64.space.default, "iterations": 1}, seed=0)
    torch.testing.assert_close(drmad_hypergradient(line, h).gradient, exact_hypergradient(line, h).gradient)

    longer = task64.training_problem({**task64.space.default, "iterations": 30}, seed=0)
    implicit = implicit_hypergradient(longer, h, terms=650, inverse="cg").gradient[3:]  # CG: exact after P products
    weighted = with_loss_weights(longer, h.loss_weights)
    w, _, _ = train(longer, h)
    batch = weighted.batch(longer.steps - 1)
    lam = penalty(weighted, h.values()[2])
    hessian = torch.autograd.functional.hessian(lambda x: weighted.train_loss(x, batch) + 0.5 * (lam * x * x).sum(), w)
    x = torch.linalg.lstsq(hessian, validation_loss_gradient(weighted, w)[1][:, None]).solution[:, 0]
    reference = []
    for k in range(10):
        step = torch.zeros(10, dtype=F64)
        step[k] = 1e-4
        mixed = [loss_gradient(with_loss_weights(longer, h.loss_weights + s * step), w, batch) for s in (1, -1)]
        reference.append(-float((mixed[0] - mixed[1]) / 2e-4 @ x))
    assert sum(r != 0 for r in reference) >= 5  # the groups in the last batch
    torch.testing.assert_close(implicit, torch.tensor(reference, dtype=F64), rtol=1e-6, atol=1e-10)


def test_a_black_box_evaluation_trains_what_a_hypergradient_method_differentiates(task64):
    """evaluate and the family's forward pass: the same weights, batches and loss weights, so the
    same score; a batch of configurations trained together equals them up to float rounding."""
    names = task64.space.members("loss_weight")
    configs = [
        {**task64.space.default, "iterations": 20} | dict(zip(names, np.linspace(a, 1, 10).tolist(), strict=True))
        for a in (0.0, 0.5)
    ]
    for config in configs:
        h = hyper(torch.tensor([config[n] for n in names]), config["learning_rate"], config["momentum"], config["l2"])
        problem = task64.training_problem(config, seed=2)
        # the same training; theta's exp(log(learning rate)) may differ from it in the last bit
        assert task64.evaluate(config, seed=2).objective == pytest.approx(
            problem.score(train(problem, h)[0]).objective, rel=1e-8
        )
    together = task64.evaluate_batch(configs, [2, 2])
    assert [e.objective for e in together] == pytest.approx(
        [task64.evaluate(c, 2).objective for c in configs], rel=1e-9
    )


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "task.loss_granularity=blocks_15",
            "task.loss_granularity='blocks_15': allowed: universal, per_source, blocks_D",
        ),
        ("task.loss_granularity=blocks_2000", "task.loss_granularity=blocks_2000: 200 blocks per source"),
        ("task.corruption=[0.5,1.5]", "task.corruption=[0.5, 1.5]: give one rate in [0, 1] per source"),
    ],
)
def test_a_bad_grouping_or_rate_is_one_line(override, message):
    with pytest.raises(BenchError, match=None) as error:
        hyper_cleaning(override)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_hypergradient_run_tunes_every_loss_weight_and_its_record_names_the_corruption(tmp_path):
    done = run_bench(
        *DIGITS[:-1],
        "method=exact_hypergrad",
        "task.batch_size=20",
        "+task.space.iterations.fixed=30",
        "budget.evaluations=3",
        "incumbent_repeats=1",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    trials = read_trials(tmp_path / "run")
    weights = trials[[f"config.loss_weight_source_{k}" for k in range(10)]]
    assert (weights.iloc[0] == 1.0).all()  # the default: every example counts 1, at the weights' upper bound
    assert weights.iloc[1]["config.loss_weight_source_9"] < 1  # the noisiest source's weight stepped down
    record = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert record["task_info"]["corruption"]["corrupted"] == 450


def test_the_control_and_the_oracle_fix_the_weights_for_every_method_and_the_default_row_trains_them():
    """``ones`` fixes every weight at 1, as ``+task.space.loss_weight.fixed=1.0`` does; ``oracle`` at
    the corruption record's values; either leaves the classic hyperparameters to tune."""
    ones = hyper_cleaning("task.loss_weights=ones")
    by_space = hyper_cleaning("+task.space.loss_weight.fixed=1.0")
    assert ones.space.tuned == by_space.space.tuned == ["iterations", "learning_rate", "momentum", "l2"]
    assert ones.space.default == by_space.space.default
    oracle = hyper_cleaning("task.loss_granularity=per_example", "task.loss_weights=oracle")
    weights = [oracle.space.default[name] for name in oracle.space.members("loss_weight")]
    assert weights == (~oracle.corrupted).double().tolist() and len(oracle.space) == 4
    tuned = hyper_cleaning("task.loss_granularity=per_example")
    config = {**tuned.oracle_config(), "iterations": 30}
    assert (
        oracle.evaluate({**oracle.space.default, "iterations": 30}, 1).objective == tuned.evaluate(config, 1).objective
    )
    with pytest.raises(BenchError, match=r"^task.loss_weights='some': allowed: tuned, ones, oracle$"):
        hyper_cleaning("task.loss_weights=some")


def test_forward_mode_refuses_more_tangents_than_its_limit_before_the_run_in_one_line():
    overrides = [*DIGITS[:1], *DIGITS[2:], "+task.space.iterations.fixed=10", "method=forward_hypergrad"]
    assert len(build(bench_config(*overrides)).method.space.tuned) == 13  # lr, momentum, l2 and 10 sources
    with pytest.raises(BenchError) as error:
        build(bench_config(*overrides, "task.loss_granularity=per_example"))
    assert str(error.value).startswith("method.max_tangents=64: forward mode carries a tangent per tuned")
    assert "this space tunes 1003;" in str(error.value) and "\n" not in str(error.value)


def test_online_runs_with_the_weights_fixed_and_reports_its_own_l2_alone():
    """With task.loss_weights=ones the space fixes the weights, so online may run: theta carries them
    unchanged at its end, and final_l2 is the L2 penalty's alone."""
    overrides = [*DIGITS[:1], *DIGITS[2:], "+task.space.iterations.fixed=10", "task.loss_weights=ones"]
    experiment = build(bench_config(*overrides, "method=online_hypergrad", "method.validation_every=2"))
    method, task = experiment.method, experiment.task
    (config,) = method.ask(1)
    evaluation = method.evaluate(task, config, seed=0)
    theta_next = evaluation.metrics["theta_next"]
    assert len(theta_next) == 3 + 10 and theta_next[3:] == [1.0] * 10  # the fixed weights stay where they are
    assert theta_next[2] != math.log(config["l2"])  # the L2 penalty moved
    assert evaluation.metrics["final_l2"] == pytest.approx(math.exp(theta_next[2]))
