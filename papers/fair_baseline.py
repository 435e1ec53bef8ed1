"""The fair baseline for text classification: each model at its defaults against tuned, on test
accuracy paired by seed (``--paper fair_baseline_text``, ``suite=fair_baseline_text``). The models
are Yogatama et al.'s (2015) logistic regression on n-grams and a Greff et al. (2017) recurrent
network; no published number is known for these corpora and budgets."""

from __future__ import annotations

import math

import pandas as pd

from bench.errors import BenchError
from bench.report import scores
from bench.report.papers import PaperTable
from bench.report.stats import wilcoxon_p

MODELS = {  # task -> the model its rows tune
    "text_linear": "logistic regression on n-grams (Yogatama et al. 2015)",
    "text_rnn": "recurrent network (GRU / LSTM, Greff et al. 2017)",
}
SOURCE = (
    "not known for these corpora and budgets (on Pang and Lee's MR, for orientation only: NBSVM-bigram 79.4, "
    "Wang and Manning 2012; CNN-rand 76.1, Kim 2014)"
)


def fair_baseline_text(runs: pd.DataFrame, trials: pd.DataFrame) -> PaperTable:
    """Default against tuned, per model: test accuracy of the incumbents retrained with fresh seeds
    (median, interquartile range and standard deviation over seeds), and the gap of each tuned row
    to the model's default row, paired by seed (median of the per-seed differences, paired
    Wilcoxon p, and whether the gap exceeds both rows' seed-to-seed standard deviation)."""
    runs = runs[runs["task"].isin(MODELS)]
    if runs.empty:
        raise BenchError(
            "--paper fair_baseline_text: no text_linear or text_rnn runs here "
            "(python -m bench suite=fair_baseline_text)"
        )
    detail, claims = [], []
    for task, group in runs.groupby("task", sort=True):
        accuracy = scores.matrix(group, _accuracy(group))
        default = accuracy.get("default")
        for name in sorted(accuracy.columns, key=lambda n: (n != "default", n)):
            values = accuracy[name].dropna()
            rows_of = group[group["label"] == name]
            failed = int(_accuracy(rows_of).notna().sum() - rows_of["final_test_metric"].notna().sum())
            datasets = trials.loc[trials["run_id"].isin(rows_of["run_id"]), "metrics.dataset"]
            row = {
                "model": MODELS[task],
                "dataset": ", ".join(sorted(set(datasets.dropna()))),
                "tuning": "none (default configuration)" if name == "default" else name,
                "budget": "-" if name == "default" else budget_text(rows_of),
                "seeds": f"{len(values)} ({failed} failed)" if failed else len(values),
                "trials: median": f"{rows_of['n_trials'].median():g}",
                "test accuracy: median [IQR]": f"{values.median():.3f} [{values.quantile(0.25):.3f}, "
                f"{values.quantile(0.75):.3f}]",
                "sd": f"{values.std():.3f}",
                "gap to default: median": "-",
                "p (Wilcoxon)": "-",
                "gap > spread": "-",
            }
            if default is not None and name != "default":
                both = values.index.intersection(default.dropna().index)
                gap = float((values[both] - default[both]).median()) if len(both) else math.nan
                spread = max(values.std(), default.dropna().std())  # NaN with fewer than 2 seeds: no spread
                p = wilcoxon_p(values[both].to_numpy(), default[both].to_numpy())
                judged = len(both) > 0 and not math.isnan(spread)
                row["gap to default: median"] = f"{gap:+.3f}" if len(both) else "-"
                row["p (Wilcoxon)"] = f"{p:.2g}" if len(both) else "-"
                row["gap > spread"] = ("yes" if gap > spread else "no") if judged else "-"
                claims.append(
                    {
                        "claim": f"tuning by {name} beats the {task} default by more than the seed-to-seed spread",
                        "published": "not known",
                        "ours": f"{gap:+.3f} median gap over {len(both)} seeds (spread {spread:.3f}), p = {p:.2g}",
                        "holds": bool(gap > spread) if judged else None,
                    }
                )
            detail.append(row)
    note = (
        "Ours: test accuracy of each run's incumbent (chosen on validation error) retrained with fresh seeds; "
        "spread over seeds as interquartile range and standard deviation (sd). Gap: tuned minus default, paired by "
        "seed (median of the differences); p: two-sided paired Wilcoxon signed-rank test over those seeds (the "
        "smallest possible with n seeds is 2 / 2^n); gap > spread: the median gap exceeds the larger of the two "
        "rows' sd ('-' with fewer than 2 seeds). A retrained run whose retrainings all failed counts as accuracy 0."
    )
    claims_frame = pd.DataFrame(claims, columns=["claim", "published", "ours", "holds"])
    return PaperTable("The fair baseline for text", SOURCE, claims_frame, note, pd.DataFrame(detail))


def _accuracy(runs: pd.DataFrame) -> pd.Series:
    """Each run's test accuracy; 0 for a run that was retrained and produced none (a failure is the
    worst accuracy, not a missing seed); missing for a run that was not retrained."""
    retrained = runs["incumbent_repeats"].fillna(1) > 0 if "incumbent_repeats" in runs else True
    return runs["final_test_metric"].astype(float).where(runs["final_test_metric"].notna() | ~retrained, 0.0)


def budget_text(rows: pd.DataFrame) -> str:
    """A run's budget in its units, thousands separated: ``100 s``, ``19,140 steps``, ``30 trials``."""
    parts = []
    for key, unit in (("budget_seconds", "s"), ("budget_train_steps", "steps"), ("budget_evaluations", "trials")):
        values = rows[key].dropna().unique()
        if len(values):
            value = float(values[0])
            parts.append(f"{int(value):,} {unit}" if value.is_integer() else f"{value:g} {unit}")
    return ", ".join(parts) or "-"
