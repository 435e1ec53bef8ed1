"""Greff et al. 2017 ("LSTM: A Search Space Odyssey"): the learning rate is by far the most
important hyperparameter, its main effect more than two thirds of the variance, and momentum
matters little (``--paper lstm_odyssey``, ``suite=lstm_odyssey``)."""

from __future__ import annotations

import math

import pandas as pd

from bench.errors import BenchError
from bench.report.importance import experiment_importance
from bench.report.papers import PaperTable

LEARNING_RATE_SHARE = 2 / 3
SOURCE = (
    "Greff et al. 2017 (LSTM: A Search Space Odyssey), fANOVA over 5,400 random-search runs on TIMIT, IAM Online "
    "and JSB Chorales"
)


def lstm_odyssey(runs: pd.DataFrame, trials: pd.DataFrame) -> PaperTable:
    """fANOVA of the random-search trials on text_rnn beside Greff et al.'s findings."""
    chosen = runs[(runs["task"] == "text_rnn") & (runs["method"] == "random")]
    if chosen.empty:
        raise BenchError(
            "--paper lstm_odyssey: no random-search runs on text_rnn here (python -m bench suite=lstm_odyssey)"
        )
    table = experiment_importance(chosen, trials)
    column = trials["metrics.dataset"] if "metrics.dataset" in trials else pd.Series("?", index=trials.index)
    datasets = ", ".join(sorted(set(column[trials["run_id"].isin(chosen["run_id"])].dropna())))
    rows, data = [], []
    for (_, method), group in table.groupby(["task", "method"], sort=True):
        share = dict(zip(group["hyperparameter"], group["variance_share"], strict=True))
        top = group["hyperparameter"].iloc[0]
        learning_rate = share.get("learning_rate", float("nan"))
        momentum = share.get("momentum", float("nan"))
        prefix = "" if table["method"].nunique() == 1 else f"{method}: "
        rows += [
            {
                "claim": f"{prefix}most important hyperparameter",
                "published": "learning rate",
                "ours": top,
                "holds": top == "learning_rate",
            },
            {
                "claim": f"{prefix}learning rate's share of variance",
                "published": f"> {LEARNING_RATE_SHARE:.2f}",
                "ours": f"{learning_rate:.3f}",
                "holds": None if math.isnan(learning_rate) else bool(learning_rate > LEARNING_RATE_SHARE),
            },
            {
                "claim": f"{prefix}momentum's share (matters little)",
                "published": "below the learning rate's",
                "ours": f"{momentum:.3f}",
                "holds": None if math.isnan(momentum) or math.isnan(learning_rate) else bool(momentum < learning_rate),
            },
        ]
        data.append(f"{method}: {int(group['trials'].iloc[0])} trials on {datasets}")
    shares = ", ".join(f"{h} {v:.3f}" for h, v in zip(table["hyperparameter"], table["variance_share"], strict=True))
    note = (
        f"Ours: fANOVA main-effect shares of the validation error over the pooled random-search trials "
        f"({'; '.join(data)}; bench/report/importance.py): {shares}. Greff et al.'s learning-rate range is for "
        "summed per-sequence losses; ours is for a batch mean (conf/task/text_rnn.yaml)."
    )
    return PaperTable("Hyperparameter importance (Greff et al. 2017)", SOURCE, pd.DataFrame(rows), note)
