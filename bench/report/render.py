"""The one renderer: a table built as a DataFrame becomes Markdown, LaTeX, CSV or HTML here, and
its cells are formatted by the helpers below.

A report table comes in two forms: the raw numbers (for CSV, where a reader wants them whole) and
the shown cells (strings, for reading: Markdown, LaTeX, HTML). ``render`` takes both and picks.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.errors import BenchError

FORMATS = ("markdown", "csv", "latex", "html")


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> None:
    if fmt not in allowed:
        raise BenchError(f"--format {fmt!r}: allowed formats are {', '.join(allowed)}")


def render(shown: pd.DataFrame, fmt: str = "markdown", raw: pd.DataFrame | None = None) -> str:
    """``shown`` (formatted cells) as Markdown, LaTeX or HTML; CSV writes ``raw`` (the numbers)
    when given, else ``shown``."""
    check_format(fmt)
    if fmt == "csv":
        return (shown if raw is None else raw).to_csv(index=False, float_format="%.6g")
    if fmt == "latex":
        return shown.to_latex(index=False, escape=True)
    if fmt == "html":
        return shown.to_html(index=False, border=0, escape=True)
    return shown.to_markdown(index=False, disable_numparse=True)


def number(value: float | None, digits: int = 4) -> str:
    """A table cell: ``digits`` significant digits, ``-`` for a missing or non-finite value."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def with_iqr(median: float, q25: float, q75: float, digits: int = 4) -> str:
    """``median [q25, q75]``; ``-`` when the median is missing."""
    if not math.isfinite(median):
        return "-"
    return f"{number(median, digits)} [{number(q25, digits)}, {number(q75, digits)}]"


def rate(value: float) -> str:
    """A share as a whole percentage; ``-`` when missing."""
    return "-" if not math.isfinite(value) else f"{value:.0%}"


def p_value(p: float, holm: float | None = None) -> str:
    """``0.25 (1)``: a p-value and, in parentheses, its Holm-corrected value; ``-`` when missing."""
    if not math.isfinite(p):
        return "-"
    return f"{p:.2g}" if holm is None else f"{p:.2g} ({holm:.2g})"


def interval(estimate: float, low: float, high: float) -> str:
    """``0.80 [0.40, 1.00]``; ``-`` when missing."""
    return "-" if not math.isfinite(estimate) else f"{estimate:.2f} [{low:.2f}, {high:.2f}]"


def holds(value: bool | None) -> str:
    """A paper claim's outcome: pass, fail, or ``-`` where the paper gives nothing to check."""
    return "-" if value is None or value is pd.NA else ("pass" if value else "fail")


def names(items: list[str]) -> str:
    """``a, b and c``."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"
