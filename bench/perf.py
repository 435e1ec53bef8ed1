"""The suite's own overhead, measured.

    python -m bench.perf methods [--json FILE] [--sizes 10,50,100,200] [--repeats 5]
                                 [--methods random,gp_ei,gp_ts,skopt_gp] [--task hartmann6]
    python -m bench.perf hypergrad [--json FILE] [--steps 100,1000,10000] [--hidden 32]
                                   [--repeats 3] [--device cpu|cuda]
    python -m bench.perf agreement [--json FILE] [--tasks bikeshare,mnist_mlp] [--steps 100,1000]
                                   [--overrides '+task.space.hidden_nodes.fixed=16 ...']
    python -m bench.perf text [--json FILE] [--dataset rotten_tomatoes] [--linear-trials 8]
                              [--epochs 1] [--overrides '...'] [--skip linear|rnn]
    python -m bench.perf report [--json FILE] [--runs 1000] [--tasks 4] [--methods 5] [--trials 50]
    python -m bench.perf batched [--json FILE] [--q 8,32,128] [--iterations 500] [--devices cpu,cuda]

``methods``: the suggestion overhead of each method. Each method runs through the real runner on
the task (hartmann6 by default, a cheap function, so the time is the method's) until it holds
``max(sizes) + repeats`` observations; the runner records every ``ask()``'s seconds, and the
table gives the median over the ``repeats`` asks made with n, n+1, ... observations for each n.
Model-based methods use ``n_initial = min(sizes)``, so every timed ask is a model suggestion (fit
included), not a point of the initial design. Prints a Markdown table; ``--json`` writes one record
per (method, n) with ``method``, ``n_observations``, ``ask_seconds_median`` and the raw seconds.
Timings are wall-clock on this machine with ``torch_threads`` threads (default 1).

``hypergrad``: the cost of a hypergradient on the bikeshare MLP (56-``hidden``-1, per-layer L2,
momentum 0.9) for T training steps: plain training (the forward pass alone), DrMAD with K = T
and K = T/10 points, and exact reverse mode (every w_t stored). Each (method, T) runs in a fresh
process, so one measurement's memory cannot leak into the next; seconds are the median of
``repeats`` runs. Peak memory (``peak_bytes``): on a GPU, ``torch.cuda.max_memory_allocated``
during the runs (bytes held by tensors, the data on the device included); on a CPU, the
process's resident-set high-water mark during the runs (Linux ``VmHWM``, reset through
``/proc/self/clear_refs`` just before them), so interpreter, libraries and data are included.
``peak_above_start_bytes`` subtracts what was held just before the runs: the memory the
computation itself added (on a CPU it moves in pages and allocator arenas, so values below about
1 MB are noise). The reverse-step column checks the unit of the step budget: the seconds a
hypergradient adds to plain training per reverse step (a gradient and a Hessian-vector product,
K of them) over the seconds of one training step. The budget counts a reverse step as
``HVP_STEPS`` = 2 training steps (methods/drmad.py). The JSON holds one record per (method, T) with ``method``,
``T``, ``K``, ``seconds``, ``peak_bytes``, ``peak_above_start_bytes``, ``seconds_over_training``
and ``reverse_step_over_training_step``.

``agreement``: how close DrMAD's hypergradient is to the exact one, per task and T, from the
task's default configuration (T training steps, per-layer L2, seed 0, float64): the cosine
similarity and the norm ratio for K = T and K = T/10 points. ``--overrides`` changes the task
first (Hydra overrides: another fixed architecture, another default configuration). T sets the
number of training steps whatever the task counts them in (bikeshare's ``iterations``; text_rnn's
epochs times batches).

``text``: seconds per text_linear trial cold and warm, per text_rnn epoch, and of one DrMAD
hyper-iteration on text_rnn against the training run (``bench.perf_text``).

``batched``: q bikeshare configurations trained one after another against together in one
vectorised training (``bench.perf_batched``).

``report``: seconds of ``python -m bench.report``'s full report (every table and figure and the
HTML page) on a folder of 1,000 synthetic runs written through the real store
(``bench.perf_report``).
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
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from bench.app import CONFIG_DIR, Experiment, build
from bench.budget import Budget
from bench.errors import USER_ERRORS, describe
from bench.files import write_text
from bench.protocols import HYPERGRADIENT_HYPERPARAMETERS
from bench.provenance import provenance
from bench.runner import run

METHODS = ("random", "gp_ei", "gp_ts", "skopt_gp")


def compose_config(overrides: list[str]) -> DictConfig:
    """The configuration ``python -m bench OVERRIDES`` composes (no run, no files)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=overrides)


def method_overhead(method: str, task: str, sizes: list[int], repeats: int, seed: int = 0) -> list[dict]:
    """One record per n in ``sizes``: the median seconds of ``repeats`` asks made with n.. observations."""
    cfg = compose_config([f"task={task}", f"method={method}", f"seed={seed}"])
    if "n_initial" in cfg.method:
        cfg.method.n_initial = min(sizes)
    experiment = build(cfg)
    result = run(
        experiment.task,
        experiment.method,
        Budget(evaluations=max(sizes) + repeats),
        seed,
        incumbent_repeats=0,
        progress=True,
        label=method,
    )
    records = []
    for n in sizes:
        seconds = [trial.ask_seconds for trial in result.trials[n : n + repeats]]
        records.append(
            {
                "method": method,
                "n_observations": n,
                "ask_seconds_median": statistics.median(seconds),
                "ask_seconds": seconds,
                "task": task,
                "torch_threads": torch.get_num_threads(),
            }
        )
    return records


HYPERGRADIENTS = {  # label -> method config and overrides
    "training": ("drmad", []),
    "drmad K=T": ("drmad", []),
    "drmad K=T/10": ("drmad", ["method.reverse_fraction=0.1"]),
    "exact": ("exact_hypergrad", []),
}


def hypergradient_experiment(overrides: list[str]) -> Experiment:
    """A hypergradient method's experiment, the task's other hyperparameters fixed at their defaults
    (the space a hypergradient method accepts)."""
    cfg = compose_config(overrides)
    with open_dict(cfg):
        for name, entry in cfg.task.space.items():
            if name not in HYPERGRADIENT_HYPERPARAMETERS and entry.get("fixed") is None:
                entry.fixed = entry.default
    return build(cfg)


def hypergradient_cost(label: str, steps: int, hidden: int, repeats: int, device: str, seed: int = 0) -> dict:
    """Seconds (median of ``repeats``) and peak memory of one hypergradient (or plain training)."""
    method_name, overrides = HYPERGRADIENTS[label]
    experiment = hypergradient_experiment(["task=bikeshare", f"method={method_name}", f"device={device}", *overrides])
    task, method = experiment.task, experiment.method
    config = {**task.space.default, "iterations": steps, "hidden_nodes": hidden, "momentum": 0.9, "l2": 1e-4}
    problem = task.training_problem(config, seed, "per_layer")
    hyper = method.initial(config, problem)

    def once() -> None:
        if label == "training":
            method.train_only(problem, hyper)
        else:
            method.hypergradient(problem, hyper)

    on_gpu = problem.w0.is_cuda
    method.hypergradient(task.training_problem({**config, "iterations": 2}, seed, "per_layer"), hyper)  # warm-up
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start_bytes = torch.cuda.memory_allocated()
    else:
        start_bytes = _reset_peak_rss()
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        once()
        if on_gpu:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - tic)
    peak = torch.cuda.max_memory_allocated() if on_gpu else _peak_rss()
    return {
        "method": label,
        "T": steps,
        "K": {"training": 0, "drmad K=T/10": max(1, round(0.1 * steps))}.get(label, steps),
        "seconds": statistics.median(seconds),
        "peak_bytes": int(peak),
        "peak_above_start_bytes": int(peak - start_bytes),
        "memory_measure": "cuda max_memory_allocated" if on_gpu else "VmHWM (resident-set high-water mark)",
        "hidden_nodes": hidden,
        "parameters": int(problem.w0.numel()),
        "device": str(problem.w0.device),
        "seconds_all": seconds,
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


def hypergradient_costs(steps: list[int], hidden: int, repeats: int, device: str) -> list[dict]:
    """Every (method, T), each in a fresh process; adds ``seconds_over_training``."""
    records = []
    for t in steps:
        for label in HYPERGRADIENTS:
            progress(f"  {label}, T={t} ...")
            argv = ["hypergrad-one", label, str(t), str(hidden), str(repeats), device]
            done = subprocess.run(
                [sys.executable, "-m", "bench.perf", *argv], capture_output=True, text=True, env=os.environ.copy()
            )
            if done.returncode != 0:
                raise RuntimeError(f"{label} at T={t} failed:\n{done.stderr[-2000:]}")
            records.append(json.loads(done.stdout.strip().splitlines()[-1]))
        training = next(r["seconds"] for r in records if r["T"] == t and r["method"] == "training")
        for r in records:
            if r["T"] == t:
                r["seconds_over_training"] = r["seconds"] / training
                # one reverse step (gradient + Hessian-vector product) against one training step
                r["reverse_step_over_training_step"] = (
                    (r["seconds"] - training) / r["K"] / (training / t) if r["K"] else math.nan
                )
    return records


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


def agreement(task_name: str, steps: int, seed: int = 0, overrides: tuple[str, ...] = ()) -> list[dict]:
    """DrMAD (K = T, T/10) against exact reverse mode on one task at T = ``steps``, from the
    task's default configuration (after ``overrides``, Hydra overrides of the task)."""
    records = []
    exact = None
    extra = list(overrides)
    for label, method_name, overrides in (  # noqa: B020 - the method's own overrides
        ("exact", "exact_hypergrad", []),
        ("drmad K=T", "drmad", []),
        ("drmad K=T/10", "drmad", ["method.reverse_fraction=0.1"]),
    ):
        experiment = hypergradient_experiment(
            [f"task={task_name}", f"method={method_name}", "task.dtype=float64", *overrides, *extra]
        )
        config = dict(experiment.task.space.default)
        if "iterations" in config:  # a task that counts its training in steps (bikeshare, mnist_mlp)
            config["iterations"] = steps
        problem = replace(experiment.task.training_problem(config, seed, "per_layer"), steps=steps)
        gradient = experiment.method.hypergradient(problem, experiment.method.initial(config, problem)).gradient
        if exact is None:
            exact = gradient
            continue
        records.append(
            {
                "task": task_name,
                "dataset": experiment.task.describe().get("dataset"),
                "T": steps,
                "method": label,
                "config": config,
                "cosine": float(gradient @ exact / (gradient.norm() * exact.norm())),
                "norm_ratio": float(gradient.norm() / exact.norm()),
                "hyperparameters": ["log_learning_rate", "logit_momentum", *(f"log_l2.{n}" for n in problem.l2_names)],
                "exact": exact.tolist(),
                "drmad": gradient.tolist(),
            }
        )
    return records


def table(records: list[dict]) -> str:
    frame = pd.DataFrame(records).pivot(index="method", columns="n_observations", values="ask_seconds_median")
    frame.columns = [f"n={n}" for n in frame.columns]
    return frame.map(lambda s: f"{s:.3f}").to_markdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="benchmark", required=True)
    methods = sub.add_parser("methods", help="median seconds per ask() against the number of observations")
    methods.add_argument("--json", type=Path, help="also write the records to this file")
    methods.add_argument("--sizes", default="10,50,100,200", help="observation counts (default 10,50,100,200)")
    methods.add_argument("--repeats", type=int, default=5, help="asks timed per size (default 5)")
    methods.add_argument("--methods", default=",".join(METHODS), help=f"default {','.join(METHODS)}")
    methods.add_argument("--task", default="hartmann6", help="task to run on (default hartmann6)")
    methods.add_argument("--torch-threads", type=int, default=1, help="torch threads (default 1)")
    hyper = sub.add_parser("hypergrad", help="time and peak memory of DrMAD and exact hypergradients against T")
    hyper.add_argument("--json", type=Path, help="also write the records to this file")
    hyper.add_argument("--steps", default="100,1000,10000", help="training lengths T (default 100,1000,10000)")
    hyper.add_argument("--hidden", type=int, default=32, help="hidden units of the bikeshare MLP (default 32)")
    hyper.add_argument("--repeats", type=int, default=3, help="timed runs per (method, T) (default 3)")
    hyper.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    agree = sub.add_parser("agreement", help="cosine similarity of DrMAD and exact hypergradients")
    agree.add_argument("--json", type=Path, help="also write the records to this file")
    agree.add_argument("--tasks", default="bikeshare,mnist_mlp", help="default bikeshare,mnist_mlp")
    agree.add_argument("--steps", default="100,1000", help="training lengths T (default 100,1000)")
    agree.add_argument(
        "--overrides",
        default="",
        help="Hydra overrides of the task, space-separated (e.g. '+task.space.hidden_nodes.fixed=16')",
    )
    text = sub.add_parser("text", help="seconds per text_linear trial (cold, warm) and text_rnn epoch and DrMAD")
    text.add_argument("--json", type=Path, help="also write the records to this file")
    text.add_argument("--dataset", default="rotten_tomatoes", help="corpus (default rotten_tomatoes)")
    text.add_argument("--linear-trials", type=int, default=8, help="text_linear configurations timed (default 8)")
    text.add_argument("--epochs", type=int, default=1, help="text_rnn epochs timed (default 1)")
    text.add_argument(
        "--overrides", default="", help="Hydra overrides of text_rnn, space-separated (e.g. another default)"
    )
    text.add_argument("--skip", default="", help="linear or rnn: leave that part out")
    batched = sub.add_parser("batched", help="bikeshare trials one by one against one vectorised training")
    from bench.perf_batched import add_arguments as batched_arguments

    batched_arguments(batched)
    report = sub.add_parser("report", help="seconds of the full report on 1,000 synthetic runs")
    from bench.perf_report import add_arguments as report_arguments

    report_arguments(report)
    one = sub.add_parser("hypergrad-one")  # one measurement in this process (used by hypergrad)
    for name in ("label", "steps", "hidden", "repeats", "device"):
        one.add_argument(name)
    args = parser.parse_args(argv)
    torch.set_num_threads(getattr(args, "torch_threads", 1))
    if args.benchmark == "hypergrad-one":
        record = hypergradient_cost(args.label, int(args.steps), int(args.hidden), int(args.repeats), args.device)
        print(json.dumps(record))
        return 0
    if args.benchmark == "hypergrad":
        return hypergrad_main(args)
    if args.benchmark == "agreement":
        return agreement_main(args)
    if args.benchmark == "report":
        from bench.perf_report import main as report_main

        return report_main(args)
    if args.benchmark == "batched":
        from bench.perf_batched import main as batched_main

        return batched_main(args)
    if args.benchmark == "text":
        from bench.perf_text import main as text_main

        return text_main(args)
    try:
        sizes = _counts(args.sizes)
        if sizes[0] < 1 or args.repeats < 1:
            raise ValueError
    except ValueError:
        print(f"error: --sizes {args.sizes!r} --repeats {args.repeats}: give positive whole numbers", file=sys.stderr)
        return 2
    torch.set_num_threads(args.torch_threads)
    records = []
    try:
        for method in args.methods.split(","):
            records.extend(method_overhead(method, args.task, sizes, args.repeats))
    except USER_ERRORS as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 2
    machine = provenance()
    print(
        f"\nMedian seconds per ask() on {args.task}, {args.repeats} asks per size, "
        f"{args.torch_threads} torch thread(s), {machine['platform']}:\n"
    )
    print(table(records))
    return write_records(records, args.json)


def _counts(text: str) -> list[int]:
    """``"100,10,100"`` -> ``[10, 100]``; ValueError unless each is a whole number."""
    return sorted({int(s) for s in text.split(",")})


def progress(line: str) -> None:
    """Where a measurement is, on a terminal only (errors stay the one line on stderr)."""
    if sys.stderr.isatty():
        print(line, file=sys.stderr, flush=True)


def write_records(records: list[dict], path: Path | None) -> int:
    if path:
        write_text(path, json.dumps(records, indent=2) + "\n")
        print(f"\nrecords: {path}")
    return 0


def agreement_main(args: argparse.Namespace) -> int:
    try:
        steps = _counts(args.steps)
        if steps[0] < 1:
            raise ValueError
    except ValueError:
        print(f"error: --steps {args.steps!r}: give positive whole numbers", file=sys.stderr)
        return 2
    records = []
    known = sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml"))
    unknown = [name for name in args.tasks.split(",") if name not in known]
    if unknown:
        print(f"error: --tasks {','.join(unknown)}: allowed: {', '.join(known)}", file=sys.stderr)
        return 2
    try:
        for task_name in args.tasks.split(","):
            for t in steps:
                progress(f"  {task_name}, T={t} ...")
                records.extend(agreement(task_name, t, overrides=tuple(args.overrides.split())))
    except USER_ERRORS as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 2
    frame = pd.DataFrame(records)[["task", "dataset", "T", "method", "cosine", "norm_ratio"]]
    print("\nDrMAD against exact reverse mode, from each task's default configuration (per-layer L2, float64):\n")
    print(frame.to_markdown(index=False, floatfmt=".4g"))
    return write_records(records, args.json)


def hypergrad_main(args: argparse.Namespace) -> int:
    try:
        steps = _counts(args.steps)
        if steps[0] < 1 or args.repeats < 1 or args.hidden < 1:
            raise ValueError
    except ValueError:
        print(
            f"error: --steps {args.steps!r} --hidden {args.hidden} --repeats {args.repeats}: "
            "give positive whole numbers",
            file=sys.stderr,
        )
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device is visible; allowed here: cpu", file=sys.stderr)
        return 2
    records = hypergradient_costs(steps, args.hidden, args.repeats, args.device)
    machine = provenance()
    print(
        f"\nOne hypergradient on the bikeshare MLP (56-{args.hidden}-1, {records[0]['parameters']} weights), "
        f"median of {args.repeats} runs, 1 torch thread, {records[0]['device']}, {machine['platform']}; "
        f"seconds (ratio to plain training) and peak memory ({records[0]['memory_measure']}; in brackets, "
        "what the run added to the memory held before it):\n"
    )
    print(hypergradient_table(records))
    return write_records(records, args.json)


if __name__ == "__main__":
    sys.exit(main())
