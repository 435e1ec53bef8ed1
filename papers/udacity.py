"""The Udacity bikeshare project's rubric ("Your first neural network"): the defaults handed to
students should fail it, and tuning should pass it (``--paper bikeshare_rubric``,
``suite=bikeshare_rubric``)."""

from __future__ import annotations

import math

import pandas as pd

from bench.errors import BenchError
from bench.report.papers import PaperTable

RUBRIC = {"train": 0.09, "validation": 0.18}
"""Pass when the training loss is below 0.09 and the validation loss below 0.18 (the project's rubric)."""
STUDENTS = "6000 / 0.5 / 20: 0.058 / 0.140; 10000 / 0.5 / 7: 0.062 / 0.158"
SOURCE = "Udacity Deep Learning Nanodegree, project 'Your first neural network': its rubric and students' submissions"


def bikeshare_rubric(runs: pd.DataFrame, trials: pd.DataFrame) -> PaperTable:
    """Rubric pass rates of the default and the tuned bikeshare MLP beside the rubric's thresholds
    and the students' published losses."""
    runs = runs[runs["task"] == "bikeshare"]
    if runs.empty:
        raise BenchError("--paper bikeshare_rubric: no bikeshare runs here (python -m bench suite=bikeshare_rubric)")
    rubric = f"train < {RUBRIC['train']}, validation < {RUBRIC['validation']}"
    detail, claims = [], []
    for label, group in runs.groupby("label", sort=True):
        passed = group["final.rubric"].astype(float) if "final.rubric" in group else pd.Series(dtype=float)
        rate = float(passed.mean()) if passed.notna().any() else math.nan
        untuned = group["method"].iloc[0] == "default"
        detail.append(
            {
                "method": label,
                "runs": len(group),
                "train MSE: median": f"{group['final.train_mse'].median():.3f}" if "final.train_mse" in group else "-",
                "validation MSE: median": f"{group['final_objective'].median():.3f}",
                f"rubric ({rubric}): pass rate": "-" if math.isnan(rate) else f"{rate:.0%}",
            }
        )
        claims.append(
            {
                "claim": f"{label} {'fails' if untuned else 'passes'} the rubric",
                "published": "the handed-out defaults fail" if untuned else f"tuned students pass ({STUDENTS})",
                "ours": "-" if math.isnan(rate) else f"{rate:.0%} of retrainings pass ({len(group)} runs)",
                "holds": None if math.isnan(rate) else bool(rate == 0 if untuned else rate > 0.5),
            }
        )
    note = (
        f"Students' iterations / learning rate / hidden units and train / validation MSE: {STUDENTS}. Ours: the "
        "incumbent retrained with fresh seeds (pass rate over retrainings, averaged over runs); a tuned row holds "
        "when more than half its retrainings pass, the default when none does."
    )
    return PaperTable("Udacity's bikeshare rubric", SOURCE, pd.DataFrame(claims), note, pd.DataFrame(detail))
