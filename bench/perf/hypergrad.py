"""``python -m bench.perf hypergrad``: the time and peak memory of a hypergradient against T.

    python -m bench.perf hypergrad [--json FILE] [--steps 100,1000,10000] [--hidden 32]
                                   [--repeats 3] [--device cpu|cuda] [--min-seconds 0.5]
                                   [--dims 1,10,100,1000,5000 [--dataset fashion_mnist|digits]]

The cost of a hypergradient on the bikeshare MLP (56-``hidden``-1, per-layer L2, momentum 0.9) for T
training steps, one per member of the family: plain training (the forward pass alone), DrMAD with K
= T and K = T/10 points (K = T also with ``torch.func``'s forward-over-reverse Hessian-vector
product instead of double backward), truncated reverse mode over the last K = T/10 and K = 100
steps, implicit differentiation with i = 20 Neumann terms, one online-adapted training run (a
validation gradient every 10 steps), forward mode (four tangents) and exact reverse mode (every w_t
stored). Each (method, T) runs in a fresh process (``python -m bench.perf hypergrad-one``), so one
measurement's memory cannot leak into the next. Seconds are the median of ``repeats`` runs, a run
shorter than ``--min-seconds`` (default 0.5 s) timed as the mean of enough back-to-back calls to last
that long (at T = 100 a call takes about 50 ms). Each run is timed beside a plain-training run of
the same T in the same process, and the ratio to training (``seconds_over_training``) is the median
of those pairs' ratios: on a shared machine the speed drifts by 10-20% between processes, which a
ratio of separate processes would carry. Peak memory (``peak_bytes``): on a GPU,
``torch.cuda.max_memory_allocated`` during the runs (bytes held by tensors, the data on the device
included); on a CPU, the process's resident-set high-water mark during the runs (Linux ``VmHWM``,
reset through ``/proc/self/clear_refs`` just before them), so interpreter, libraries and data are
included. ``peak_above_start_bytes`` subtracts what was held just before the runs: the memory the
computation itself added (on a CPU it moves in pages and allocator arenas, so values below about 1
MB are noise). The reverse-step column checks the unit of
the step budget: the seconds a hypergradient adds to plain training per reverse step (a gradient and
a Hessian-vector product, K of them) over the seconds of one training step. The budget counts a
reverse step as ``HVP_STEPS`` = 2 training steps (methods/hypergradient.py). The JSON holds one record per
(method, T) with ``method``, ``T``, ``K``, ``seconds``, ``peak_bytes``, ``peak_above_start_bytes``,
``training_seconds`` (its paired training runs), ``seconds_over_training`` and
``reverse_step_over_training_step``.

``--dims``: the same against d, the number of hyperparameters, at each T of ``--steps``: on
``task=hyper_cleaning`` (softmax regression on 5,000 Fashion-MNIST images, or ``--dataset digits``:
1,000), whose loss weights are d = 1 (``universal``), 10 (``per_source``), a multiple of 10
(``blocks_d``) or n (``per_example``), tuned with the learning rate, momentum and L2 penalty
(implicit differentiation: with the L2 penalty only). A member that refuses a d (forward mode
above ``max_tangents``; online, which does not tune loss weights) is recorded as refused, with its
one line. Records carry ``d`` (the loss weights) and ``tuned`` (every tuned hyperparameter).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from bench.errors import BenchError, Unsupported
from bench.perf.common import at_least, fail, hypergradient_experiment, progress, whole_numbers, write_records
from bench.provenance import provenance

TRAIN_IMAGES = {"fashion_mnist": 5000, "digits": 1000}
"""``--dims``: hyper_cleaning's training examples per ``--dataset`` (digits: all it has), the largest d."""
MIN_REPEAT_SECONDS = 0.5
"""A repeat of a shorter call times ``ceil(min_seconds / first call)`` calls and reports their mean."""

HELP = "time and peak memory of every hypergradient method against T"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the records to this file")
    parser.add_argument(
        "--dims", help="loss weights d on task=hyper_cleaning instead of the bikeshare MLP, e.g. 1,10,5000"
    )
    parser.add_argument(
        "--dataset",
        default="fashion_mnist",
        choices=("fashion_mnist", "digits"),
        help="with --dims (default fashion_mnist)",
    )
    parser.add_argument("--steps", default="100,1000,10000", help="training lengths T (default 100,1000,10000)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units of the bikeshare MLP (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per (method, T) (default 3)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=MIN_REPEAT_SECONDS,
        help=f"a shorter run is timed as the mean of back-to-back calls this long (default {MIN_REPEAT_SECONDS})",
    )


def add_one_arguments(parser: argparse.ArgumentParser) -> None:
    """``hypergrad-one``: one measurement in this process (what ``hypergrad`` starts per (method, T))."""
    for name in ("label", "steps", "hidden", "repeats", "device", "min_seconds", "dims", "dataset"):
        parser.add_argument(name)


def one_main(args: argparse.Namespace) -> int:
    dims = None if args.dims == "-" else int(args.dims)
    record = hypergradient_cost(
        args.label,
        int(args.steps),
        int(args.hidden),
        int(args.repeats),
        args.device,
        float(args.min_seconds),
        dims=dims,
        dataset=args.dataset,
    )
    print(json.dumps(record))
    return 0


def loss_granularity(d: int, n: int) -> str:
    """The ``task.loss_granularity`` of hyper_cleaning that gives d loss weights for n examples in 10 sources."""
    if d == 1:
        return "universal"
    if d == 10:
        return "per_source"
    if d == n:
        return "per_example"
    if d % 10 == 0 and d < n:
        return f"blocks_{d}"
    raise BenchError(f"--dims {d}: allowed 1, 10, a multiple of 10 below n, or n = {n} (the training examples)")


def hyper_cleaning_overrides(d: int, dataset: str) -> list[str]:
    """The overrides of ``task=hyper_cleaning`` on ``dataset`` with d loss weights."""
    overrides = [f"task.dataset={dataset}", f"task.loss_granularity={loss_granularity(d, TRAIN_IMAGES[dataset])}"]
    return overrides + (["task.train_images=null"] if dataset == "digits" else [])


HYPERGRADIENTS = {  # label -> method config and overrides
    "training": ("drmad", []),
    "drmad K=T": ("drmad", []),
    "drmad K=T (func)": ("drmad", ["method.hvp=func"]),  # torch.func's forward-over-reverse HVP, not double backward
    "drmad K=T/10": ("drmad", ["method.reverse_fraction=0.1"]),
    "truncated K=T/10": ("truncated_hypergrad", ["method.reverse_fraction=0.1"]),
    "truncated K=100": ("truncated_hypergrad", ["method.reverse_fraction=null", "method.reverse_points=100"]),
    "implicit i=20": ("implicit_hypergrad", ["method.terms=20"]),
    "online": ("online_hypergrad", []),
    "forward": ("forward_hypergrad", []),
    "exact": ("exact_hypergrad", []),
}


def hypergradient_cost(
    label: str,
    steps: int,
    hidden: int,
    repeats: int,
    device: str,
    min_seconds: float = MIN_REPEAT_SECONDS,
    seed: int = 0,
    dims: int | None = None,
    dataset: str = "fashion_mnist",
) -> dict:
    """Seconds (median of ``repeats``) and peak memory of one hypergradient (or plain training); with
    ``dims``, on hyper_cleaning with that many loss weights (a refusal: a record with ``refused``)."""
    method_name, overrides = HYPERGRADIENTS[label]
    if dims is None:
        task_overrides = ["task=bikeshare", "task.l2_granularity=per_layer"]
    else:
        task_overrides = ["task=hyper_cleaning", *hyper_cleaning_overrides(dims, dataset)]
    try:
        experiment = hypergradient_experiment(
            [*task_overrides, f"method={method_name}", f"device={device}", *overrides]
        )
    except Unsupported as error:
        if dims is None:
            raise
        return {"method": label, "T": steps, "d": dims, "refused": str(error)}
    task, method = experiment.task, experiment.method
    if dims is not None and not any(name.startswith("loss_weight") for name in task.space.tuned):
        tunes = ", ".join(type(method).TUNES)
        return {"method": label, "T": steps, "d": dims, "refused": f"tunes only {tunes}: no loss weights"}
    if dims is None:
        config = {**task.space.default, "iterations": steps, "hidden_nodes": hidden, "momentum": 0.9}
        config |= dict.fromkeys(task.space.members("l2"), 1e-4)
    else:
        config = {**task.space.default, "iterations": steps}
    problem = task.training_problem(config, seed)
    hyper = method.initial(config, problem)
    method.start_meta_loop(hyper.as_tensor())  # what the tuned hyperparameters are (online adapts them)

    products = [0]  # K: the Hessian-vector products the last hypergradient took, as it counts them

    def hypergradient() -> None:
        products[0] = method.hypergradient(problem, hyper).reverse_hvps

    def training() -> None:
        method.train_only(problem, hyper)

    on_gpu = problem.w0.is_cuda
    method.hypergradient(task.training_problem({**config, "iterations": 2}, seed), hyper)  # warm-up
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start_bytes = torch.cuda.memory_allocated()
    else:
        start_bytes = _reset_peak_rss()

    def timed(call: Callable[[], None], calls: int) -> float:
        tic = time.perf_counter()
        for _ in range(calls):
            call()
        if on_gpu:
            torch.cuda.synchronize()
        return (time.perf_counter() - tic) / calls

    def batch_size(call: Callable[[], None]) -> int:
        first = timed(call, 1)  # also the first, untimed-for-the-record call at full size
        return max(1, math.ceil(min_seconds / first)) if first > 0 else 1

    measured = training if label == "training" else hypergradient
    calls = batch_size(measured)
    training_calls = calls if label == "training" else batch_size(training)
    seconds, training_seconds = [], []
    for _ in range(repeats):  # each repeat beside a training repeat: the ratio cancels the machine's drift
        seconds.append(timed(measured, calls))
        training_seconds.append(seconds[-1] if label == "training" else timed(training, training_calls))
    peak = torch.cuda.max_memory_allocated() if on_gpu else _peak_rss()
    return {
        "method": label,
        "T": steps,
        "K": products[0],
        "seconds": statistics.median(seconds),
        "training_seconds": statistics.median(training_seconds),
        "seconds_over_training": statistics.median(a / b for a, b in zip(seconds, training_seconds, strict=True)),
        "peak_bytes": int(peak),
        "peak_above_start_bytes": int(peak - start_bytes),
        "memory_measure": "cuda max_memory_allocated" if on_gpu else "VmHWM (resident-set high-water mark)",
        "hidden_nodes": hidden if dims is None else None,
        "d": dims,
        "tuned": len(task.space.tuned),
        "parameters": int(problem.w0.numel()),
        "device": str(problem.w0.device),
        "seconds_all": seconds,
        "training_seconds_all": training_seconds,
        "calls_per_repeat": calls,
    }


def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> int:
    """Reset the resident-set high-water mark; returns the resident set now (bytes)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
        return _status_bytes("VmRSS")
    except OSError:  # not Linux: the lifetime peak, which bounds the run's from above
        return 0


def _peak_rss() -> int:
    try:
        return _status_bytes("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def hypergradient_costs(
    steps: list[int],
    hidden: int,
    repeats: int,
    device: str,
    min_seconds: float = MIN_REPEAT_SECONDS,
    dims: list[int] | None = None,
    dataset: str = "fashion_mnist",
) -> list[dict]:
    """Every (method, T) (and d, with ``dims``), each in a fresh process; adds ``reverse_step_over_training_step``."""
    records = []
    for t in steps:
        for d in dims or [None]:
            for label in HYPERGRADIENTS:
                where = f"T={t}" + ("" if d is None else f", d={d}")
                progress(f"  {label}, {where} ...")
                argv = ["hypergrad-one", label, str(t), str(hidden), str(repeats), device, str(min_seconds)]
                argv += ["-" if d is None else str(d), dataset]
                done = subprocess.run(
                    [sys.executable, "-m", "bench.perf", *argv], capture_output=True, text=True, env=os.environ.copy()
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{label} at {where} failed:\n{done.stderr[-2000:]}")
                records.append(json.loads(done.stdout.strip().splitlines()[-1]))
        for r in records:
            if r["T"] == t and "refused" not in r:  # one reverse step (gradient + HVP) against one training step
                extra = r["seconds_over_training"] - 1  # in training runs of T steps
                r["reverse_step_over_training_step"] = extra * t / r["K"] if r["K"] else math.nan
    return records


def dims_table(records: list[dict]) -> str:
    """Seconds (ratio to training) and peak memory per member against d, one column per (T, d)."""
    rows = []
    for label in HYPERGRADIENTS:
        row = {"method": label}
        for r in (r for r in records if r["method"] == label):
            key = f"T={r['T']}, d={r['d']:,}"
            if "refused" in r:
                row[key] = "refused: " + r["refused"].split(":")[0]
                continue
            row[key] = (
                f"{r['seconds']:.3g} s ({r['seconds_over_training']:.2f}x), "
                f"{r['peak_bytes'] / 2**20:.0f} MB (+{r['peak_above_start_bytes'] / 2**20:.0f})"
            )
        rows.append(row)
    return pd.DataFrame(rows).fillna("-").to_markdown(index=False)


def hypergradient_table(records: list[dict]) -> str:
    frame = pd.DataFrame(records)
    rows = []
    for label in HYPERGRADIENTS:
        row = {"method": label}
        for r in frame[frame["method"] == label].itertuples():
            row[f"T={r.T}: seconds"] = f"{r.seconds:.3g} ({r.seconds_over_training:.2f}x)"
            ratio = r.reverse_step_over_training_step
            row[f"T={r.T}: reverse step / training step"] = "-" if math.isnan(ratio) else f"{ratio:.2f}"
            row[f"T={r.T}: peak MB (added)"] = f"{r.peak_bytes / 2**20:.1f} ({r.peak_above_start_bytes / 2**20:.1f})"
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False)


def main(args: argparse.Namespace) -> int:
    steps = whole_numbers(args.steps, "--steps")
    at_least(hidden=args.hidden, repeats=args.repeats)
    if args.device == "cuda" and not torch.cuda.is_available():
        return fail("--device cuda: no CUDA device is visible; allowed here: cpu")
    if not args.min_seconds >= 0:
        return fail(f"--min-seconds {args.min_seconds}: give zero or more seconds")
    dims = None if args.dims is None else whole_numbers(args.dims, "--dims")
    for d in dims or []:  # each d a granularity of the task's examples, checked before any process starts
        loss_granularity(d, TRAIN_IMAGES[args.dataset])
    records = hypergradient_costs(steps, args.hidden, args.repeats, args.device, args.min_seconds, dims, args.dataset)
    machine = provenance()
    if dims is not None:
        measured = next(r for r in records if "refused" not in r)
        print(
            f"\nOne hypergradient on hyper_cleaning ({args.dataset}, softmax regression, {measured['parameters']} "
            f"weights) against d loss weights (tuned with the learning rate, momentum and L2), median of "
            f"{args.repeats} runs, 1 torch thread, {measured['device']}, {machine['platform']}; seconds (ratio to "
            f"plain training) and peak memory ({measured['memory_measure']}; +: what the run added):\n"
        )
        print(dims_table(records))
        return write_records(records, args.json)
    print(
        f"\nOne hypergradient on the bikeshare MLP (56-{args.hidden}-1, {records[0]['parameters']} weights), "
        f"median of {args.repeats} runs, 1 torch thread, {records[0]['device']}, {machine['platform']}; "
        f"seconds (ratio to plain training) and peak memory ({records[0]['memory_measure']}; in brackets, "
        "what the run added to the memory held before it):\n"
    )
    print(hypergradient_table(records))
    return write_records(records, args.json)
