"""The DrMAD paper's MNIST MLP and its data sources, on real files (digits offline; IDX files
written here in the real format; MNIST's download path against an unreachable address)."""

import gzip
import json
import struct

import numpy as np
import pytest
import torch

from bench.build import build
from bench.errors import BenchError
from bench.runner import trial_seed
from methods.hypergradient import Hyperparameters, exact_hypergradient, train
from methods.random_search import RandomSearch
from tasks import mnist_data
from tasks.mnist_data import FILES, load_images, read_idx
from tests.helpers import bench_config, run_bench
from tests.methods.test_drmad import finite_differences

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")
TINY_MNIST = [
    "task=mnist_mlp",
    "task.dataset=digits",
    "task.layers=[6]",
    "task.space.iterations.low=2",
    "task.space.iterations.default=5",
]


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def test_digits_are_the_offline_source_and_are_split_1000_400_397():
    images = load_images("digits")
    assert [len(s[1]) for s in (images.train, images.validation, images.test)] == [1000, 400, 397]
    assert images.train[0].shape[1] == 64 and images.train[0].min() >= 0 and images.train[0].max() <= 1
    assert set(np.unique(images.train[1])) == set(range(10))
    assert "digits" in images.name


def test_train_images_keeps_the_first_n_training_images_and_refuses_more_than_there_are():
    whole = load_images("digits")
    task = build(bench_config(*TINY_MNIST, "task.train_images=120", "method=random")).task
    assert np.array_equal(task.train[0].numpy(), whole.train[0][:120]) and task.describe()["rows"]["train"] == 120
    assert np.array_equal(task.validation[0].numpy(), whole.validation[0])  # the other splits as they were
    with pytest.raises(BenchError, match=r"^task.train_images=1001: digits has 1000 training images; allowed 1..1000"):
        build(bench_config(*TINY_MNIST, "task.train_images=1001", "method=random"))


def test_idx_files_are_read_with_their_header_and_checked(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (60000, 28, 28)), np.arange(60000) % 10
    write_idx(tmp_path / FILES["train_x"], images)
    write_idx(tmp_path / FILES["train_y"], labels)
    write_idx(tmp_path / FILES["test_x"], images[:10000])
    write_idx(tmp_path / FILES["test_y"], labels[:10000])
    np.testing.assert_array_equal(read_idx(tmp_path / FILES["train_x"]), images)
    loaded = load_images("fashion_mnist", data_dir=str(tmp_path))
    assert [len(s[1]) for s in (loaded.train, loaded.validation, loaded.test)] == [15000, 5000, 5000]
    np.testing.assert_allclose(loaded.validation[0][0], images[15000].reshape(-1) / 255, rtol=1e-6)
    write_idx(tmp_path / FILES["test_x"], images[:9000])  # a truncated test set is refused
    with pytest.raises(BenchError, match="expected 60,000 \\+ 10,000 images"):
        load_images("fashion_mnist", data_dir=str(tmp_path))


def test_missing_sources_are_one_line_errors_and_leave_no_partial_download(tmp_path, monkeypatch):
    with pytest.raises(BenchError, match=f"Fashion-MNIST is missing: {tmp_path} has none of its IDX files") as error:
        load_images("fashion_mnist", data_dir=str(tmp_path))
    assert "scripts/install-data" in str(error.value) and "apt-get install dataset-fashion-mnist" in str(error.value)
    write_idx(tmp_path / FILES["train_y"], np.arange(10))
    with pytest.raises(BenchError, match=f"{tmp_path} lacks train-images-idx3-ubyte.gz, t10k-images"):
        load_images("fashion_mnist", data_dir=str(tmp_path))
    (tmp_path / FILES["train_y"]).unlink()
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    with pytest.raises(BenchError, match="cannot download http://127.0.0.1:9/"):
        load_images("mnist", url="http://127.0.0.1:9/", timeout=2)
    assert list((tmp_path / "mnist").iterdir()) == []
    with pytest.raises(BenchError, match="task.dataset='cifar'"):
        load_images("cifar")


def test_auto_takes_fashion_mnist_when_mnist_cannot_be_had_and_never_falls_back_to_digits(tmp_path, monkeypatch):
    """auto: MNIST (here offline and not cached), else Debian's Fashion-MNIST (here a folder of IDX
    files in its place), else one line naming both datasets and how to get them."""
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    monkeypatch.setattr(mnist_data, "FASHION_DIR", tmp_path / "fashion")
    with pytest.raises(BenchError) as error:
        load_images("auto")
    message = str(error.value)
    assert message.startswith("task.dataset=auto: neither MNIST (BENCH_OFFLINE is set and ") and "\n" not in message
    assert f"nor Fashion-MNIST (no IDX files in {tmp_path / 'fashion'})" in message
    for way in ("scripts/install-data", "apt-get install dataset-fashion-mnist", "as task.data_dir", "dataset=digits"):
        assert way in message
    (tmp_path / "fashion").mkdir()
    images, labels = np.zeros((60000, 28, 28)), np.arange(60000) % 10
    arrays = {"train_x": images, "train_y": labels, "test_x": images[:10000], "test_y": labels[:10000]}
    for key, array in arrays.items():
        write_idx(tmp_path / "fashion" / FILES[key], array)
    loaded = load_images("auto")
    assert loaded.dataset == "fashion_mnist" and loaded.source == f"files in {tmp_path / 'fashion'}"


def test_the_exact_hypergradient_of_the_mnist_mlp_equals_finite_differences():
    task = build(bench_config(*TINY_MNIST, "task.dtype=float64")).task
    config = {**task.space.default, "learning_rate": 0.2, "momentum": 0.8, "l2": 1e-2}
    problem = task.training_problem(config, 0, "per_layer")
    assert len(problem.l2_names) == 2 and int((problem.l2_groups == -1).sum()) == 6 + 10  # biases
    h = Hyperparameters(
        torch.tensor(np.log(0.2)),
        torch.logit(torch.tensor(0.8, dtype=torch.float64)),
        torch.log(torch.tensor([1e-2, 3e-2], dtype=torch.float64)),
    )
    torch.testing.assert_close(
        exact_hypergradient(problem, h).gradient, finite_differences(problem, h), rtol=1e-4, atol=1e-9
    )


def test_a_black_box_evaluation_is_the_training_hypergradient_methods_see():
    task = build(bench_config(*TINY_MNIST, "task.dtype=float64")).task
    config = {**task.space.default, "iterations": 40}
    evaluation = task.evaluate(config, 3)
    problem = task.training_problem(config, 3)
    hyper = Hyperparameters(
        torch.tensor(np.log(config["learning_rate"])),
        torch.logit(torch.tensor(config["momentum"], dtype=torch.float64)),
        torch.log(torch.tensor([config["l2"]], dtype=torch.float64)),
    )
    assert problem.score(train(problem, hyper)[0]).objective == pytest.approx(evaluation.objective, rel=1e-10)
    assert 0 <= evaluation.test["error"] <= 100 and evaluation.metrics["dataset"] == "digits"


def test_the_drmad_mnist_preset_prints_the_paper_table_beside_its_own_trials(tmp_path):
    done = run_bench(
        "suite=drmad_mnist",
        *TINY_MNIST[1:],
        "task.space.iterations.fixed=5",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.launcher.n_jobs=1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    trials = {}
    for path in tmp_path.glob("*/trials.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        trials[rows[0]["method"]] = {row["trial"]: row["test_metric"] for row in rows}
    assert len(trials["drmad"]) == len(trials["exact_hypergrad"]) == 31
    line = next(li for li in done.stdout.splitlines() if li.startswith("| this run (digits"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:] == [
        f"{trials['drmad'][0]:.2f}% (1 run)",
        f"{trials['drmad'][20]:.2f}% (1 run)",
        f"{trials['exact_hypergrad'][30]:.2f}% (1 run)",
    ]
    assert "| published (MNIST)" in done.stdout and "15.10%" in done.stdout
    assert "Published: Fu et al. 2016 (DrMAD, IJCAI)" in done.stdout


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_a_batch_trained_together_equals_each_configuration_trained_alone(device):
    """Seed for seed (float64), with lengths that differ: each network stops at its own."""
    overrides = ["task.dtype=float64", "task.space.iterations.high=40", f"device={device}"]
    task = build(bench_config(*TINY_MNIST, *overrides)).task
    configs = RandomSearch(task.space, 0).ask(5)
    seeds = [trial_seed(2, i) for i in range(5)]
    assert len({c["iterations"] for c in configs}) > 1
    for config, seed, together in zip(configs, seeds, task.evaluate_batch(configs, seeds), strict=True):
        alone = task.evaluate(config, seed)
        assert (together.status, together.cost_steps) == (alone.status, alone.cost_steps)
        assert together.objective == pytest.approx(alone.objective, rel=1e-10)
        assert together.test == pytest.approx(alone.test, rel=1e-10)
