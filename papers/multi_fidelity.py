"""The multi-fidelity literature's claims against ours (``--paper multi_fidelity``,
``suite=multi_fidelity``): each claims that stopping poor trainings early reaches what full-training
Bayesian optimisation reaches, in a fraction of the training.

Time to target, per task: the target is the median over seeds of the full-training ``gp_ei``
runs' retrained validation objective (what full-training BO ends with); a run reaches it at the
first trial whose best so far (for a multi-fidelity run: the best training at the highest fidelity
reached so far) is at or below it. The steps to target of a method are the median over its seeds
(a seed that never reaches it counts as never: the median is "not reached" when half do not), in
full trainings of the task; the speed-up is gp_ei's steps to the same target over the method's.
Final performance: the retrained validation objective at equal step budgets, paired by seed
(two-sided Wilcoxon signed-rank test).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.protocols import MULTI_FIDELITY_KIND
from bench.report import scores
from bench.report.analysis import first_reach
from bench.report.papers import PaperTable
from bench.report.stats import wilcoxon_p

REFERENCE = "gp_ei"
"""The full-training Bayesian optimisation every claim is measured against."""
CLAIMS = {  # method -> (the claim, what was published, the speed-up over BO that would bear it out)
    "asha": ("ASHA reaches a near state-of-the-art result in under two full trainings", "Li et al. 2020 (MLSys)"),
    "hyperband": ("Hyperband reaches BO's result an order of magnitude faster", "Li et al. 2018 (JMLR)"),
    "bohb": ("BOHB reaches BO's result about 20x faster early in a run", "Falkner et al. 2018 (ICML)"),
}
SOURCE = (
    "Li et al. 2018 (Hyperband, JMLR), Li et al. 2020 (ASHA, MLSys), Falkner et al. 2018 (BOHB, ICML), Egele et al. "
    "2023 (one epoch), as summarised in the suite's reference notes"
)


def multi_fidelity(runs: pd.DataFrame, trials: pd.DataFrame) -> PaperTable:
    """Per task: every method's steps to the full-training gp_ei's result, its speed-up over gp_ei,
    and its retrained validation against gp_ei's; the claims of Hyperband, BOHB, ASHA and Egele
    et al. checked on each task."""
    if runs.empty or not (runs["method_kind"] == MULTI_FIDELITY_KIND).any() or not (runs["method"] == REFERENCE).any():
        raise BenchError(
            f"--paper multi_fidelity: needs multi-fidelity runs and {REFERENCE} runs on the same task "
            "(python -m bench suite=multi_fidelity)"
        )
    detail, claims = [], []
    for task, task_runs in runs.groupby("task", sort=True):
        if not (task_runs["method"] == REFERENCE).any():
            continue
        rows = time_to_target(task_runs, trials[trials["run_id"].isin(task_runs["run_id"])])
        detail += rows.assign(task=task).to_dict("records")
        matrix = scores.worse_than_every_run(scores.score_matrix(task_runs, "final_objective"))
        claims += _claims(task, rows, matrix)
    detail_frame = pd.DataFrame(detail)
    shown = pd.DataFrame(
        {
            "task": detail_frame["task"],
            "method": detail_frame["method"],
            "kind": detail_frame["kind"],
            "retrained validation": detail_frame["final"].map(lambda v: f"{v:.4g}"),
            f"p vs {REFERENCE}": detail_frame["p_reference"].map(lambda p: "-" if p != p else f"{p:.2g}"),
            "reached": [f"{r}/{n}" for r, n in detail_frame[["reached", "seeds"]].to_numpy()],
            "steps to target": detail_frame["steps"].map(_trainings),
            f"speed-up over {REFERENCE}": detail_frame["speed_up"].map(
                lambda v: "-" if v != v else ("never" if v == 0 else f"{v:.2g}x")
            ),
        }
    )
    targets = detail_frame.drop_duplicates("task").set_index("task")["target"]
    note = (
        "Target per task: the median retrained validation objective of the full-training "
        f"{REFERENCE} runs ({', '.join(f'{t} {v:.4g}' for t, v in targets.items())}). Steps to target: median over "
        "seeds of the steps a run took until its best so far reached the target (for a multi-fidelity run, only "
        "trainings at the highest fidelity reached count), in full trainings of the task ('not reached': half the "
        f"seeds or more never got there). Speed-up: {REFERENCE}'s steps to the target over the method's. p: two-sided "
        f"paired Wilcoxon signed-rank test of the retrained validation objective against {REFERENCE}'s at the same "
        "step budget, not adjusted for the rows tested."
    )
    return PaperTable(
        title="Multi-fidelity methods against full-training BO",
        source=SOURCE,
        claims=pd.DataFrame(claims, columns=["claim", "published", "ours", "holds"]),
        note=note,
        detail=shown,
    )


def time_to_target(task_runs: pd.DataFrame, task_trials: pd.DataFrame) -> pd.DataFrame:
    """One task: per method (label), its kind, the target, the median retrained validation, p
    against the reference, seeds reaching the target, the median steps to it in full trainings,
    and the speed-up over the reference's steps (0 when the method never gets there, NaN when the
    reference does not)."""
    matrix = scores.worse_than_every_run(scores.score_matrix(task_runs, "final_objective"))
    names = task_runs.groupby("method")["label"].nunique()
    if (names > 1).any():
        several = ", ".join(sorted(names.index[names > 1]))
        raise BenchError(
            f"--paper multi_fidelity: {several} ran with several settings here; report one setting per method "
            "(one preset's sweep)"
        )
    reference_runs = task_runs[task_runs["method"] == REFERENCE]
    target = float(reference_runs["final_objective"].median())
    if not math.isfinite(target):
        raise BenchError(
            f"--paper multi_fidelity: the {REFERENCE} runs have no retrained validation objective "
            "(incumbent_repeats=0, or every run failed): there is no target to reach"
        )
    reached = first_reach(task_trials, target)["steps"]
    full = _full_training(task_trials)
    reference_label = str(reference_runs["label"].iloc[0])
    reference_steps = float(reached.reindex(reference_runs["run_id"]).fillna(math.inf).median())
    rows = []
    for label, group in task_runs.groupby("label", sort=True):
        steps = reached.reindex(group["run_id"]).fillna(math.inf)
        median = float(steps.median())
        p = math.nan if label == reference_label else _paired_p(matrix, label, reference_label)
        # NaN: the reference itself does not reach the target (undecided); 0: only the method never does
        if not math.isfinite(reference_steps):
            speed_up = math.nan
        elif not math.isfinite(median):
            speed_up = 0.0
        else:
            speed_up = reference_steps / median if median else math.inf
        rows.append(
            {
                "method": label,
                "method_name": str(group["method"].iloc[0]),
                "kind": str(group["method_kind"].iloc[0]),
                "target": target,
                "final": float(group["final_objective"].median()),
                "p_reference": p,
                "seeds": len(group),
                "reached": int(np.isfinite(steps).sum()),
                "steps": median / full,
                "speed_up": speed_up,
            }
        )
    return pd.DataFrame(rows)


def _claims(task: str, rows: pd.DataFrame, matrix: pd.DataFrame) -> list[dict]:
    claims = []
    by_name = rows.set_index("method_name")
    for name, (claim, published) in CLAIMS.items():
        if name not in by_name.index:
            continue
        row = by_name.loc[name]
        seeds = f"{row['reached']}/{row['seeds']} seeds"
        if name == "asha":
            ours = f"{_trainings(row['steps'])} full trainings to {REFERENCE}'s result ({seeds} reach it)"
            if not math.isfinite(row["steps"]):
                ours = f"never reached {REFERENCE}'s result ({seeds} reach it)"
            holds = bool(row["steps"] < 2)
        else:
            speed, own = row["speed_up"], _trainings(by_name.loc[REFERENCE, "steps"])
            shown = "never reached" if speed == 0 else f"{speed:.2g}x"
            ours = f"{shown} ({seeds} reach {REFERENCE}'s result; {REFERENCE} itself at {own} trainings)"
            if speed != speed:
                ours = f"undecided ({seeds} reach it; {REFERENCE} itself does on fewer than half its seeds)"
            holds = None if speed != speed else bool(speed >= 10)
        claims.append({"claim": f"{claim} ({task})", "published": published, "ours": ours, "holds": holds})
    claims += _one_epoch(task, rows, matrix)
    return claims


def _paired_p(matrix: pd.DataFrame, a: str, b: str) -> float:
    pair = matrix[[a, b]].dropna()
    return wilcoxon_p(pair[a].to_numpy(), pair[b].to_numpy())


def _one_epoch(task: str, rows: pd.DataFrame, matrix: pd.DataFrame) -> list[dict]:
    """Egele et al.: the one-epoch top-k baseline matches the multi-fidelity methods: holds when its
    median is no worse than the best multi-fidelity row's, fails when it is worse at p < 0.05, and
    is undecided (not separable with these seeds) otherwise."""
    by_name = rows.set_index("method_name")
    others = rows[(rows["kind"] == MULTI_FIDELITY_KIND) & (rows["method_name"] != "top_k_early")]
    if "top_k_early" not in by_name.index or others.empty:
        return []
    best = others.sort_values("final").iloc[0]
    top_k = by_name.loc["top_k_early"]
    p = _paired_p(matrix, str(top_k["method"]), str(best["method"]))
    ours = (
        f"retrained validation {top_k['final']:.4g} against {best['method']}'s {best['final']:.4g} (the best "
        f"multi-fidelity row; medians over {top_k['seeds']} seeds, p = {p:.2g})"
    )
    holds = True if top_k["final"] <= best["final"] else (False if p < scores.ALPHA else None)
    return [
        {
            "claim": f"Training every configuration one epoch and continuing the top k matches multi-fidelity "
            f"methods ({task})",
            "published": "Egele et al. 2023: on their benchmarks, at about a tenth of the compute",
            "ours": ours,
            "holds": holds,
        }
    ]


def _full_training(task_trials: pd.DataFrame) -> float:
    """Steps of one full training of the task: the median steps of the reference's trials (each a
    full training), else the highest fidelity of the rungs."""
    full = task_trials.loc[(task_trials["method"] == REFERENCE) & (task_trials["status"] == "ok"), "cost_steps"]
    if len(full):
        return float(full.median())
    return float(task_trials["fidelity"].max())


def _trainings(value: float) -> str:
    return "not reached" if not math.isfinite(value) else f"{value:.2g}"
