"""Published tables beside ours: how the report finds a paper table and what one returns.

A paper table is a function ``(runs, trials) -> PaperTable`` over ``load_runs``'s frames, one
paper per file in the package ``papers/`` (beside ``methods/`` and ``tasks/``), named in config
as ``conf/paper/<name>.yaml`` (``_target_``), so the report itself names no paper, method or task.
A preset names the table it reproduces (``paper: <name>``); ``python -m bench.report DIR --paper
<name>`` adds it to any report.

A ``PaperTable`` is data: ``claims`` has one row per claim the paper makes (``claim``,
``published``, ``ours``, ``holds``: True, False, or None where the paper gives nothing to check),
``detail`` the numbers side by side where the claims alone do not show them, ``source`` where the
published numbers come from (the paper, its table or its code), ``note`` how ours were computed. The report renders it
like every other table (``bench.report.render``). ``figure``, where the table has one: lines against a
number on a log axis (``FIGURE``: one row per panel, series and x, with the median and its
interquartile range; a row without x is a level drawn across the panel), drawn by
``bench.report.plots.paper_figure``. ``lead``: the table answers the question its preset asks, and the
report shows it first, after the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import OmegaConf

from bench.config import CONFIG_DIR, group_options
from bench.errors import BenchError
from bench.report.render import holds, render

CLAIMS = ("claim", "published", "ours", "holds")
FIGURE = ("panel", "series", "x", "median", "q25", "q75")


@dataclass
class PaperTable:
    """A paper's claims beside ours (see the module docstring)."""

    title: str
    source: str
    claims: pd.DataFrame
    note: str = ""
    detail: pd.DataFrame | None = None
    figure: pd.DataFrame | None = None
    figure_title: str = ""
    figure_x: str = ""  # the x axis's label
    lead: bool = False

    def __post_init__(self) -> None:
        if tuple(self.claims.columns) != CLAIMS:
            raise ValueError(f"a paper table's claims have the columns {CLAIMS}; got {tuple(self.claims.columns)}")
        if self.figure is not None and tuple(self.figure.columns) != FIGURE:
            raise ValueError(f"a paper table's figure has the columns {FIGURE}; got {tuple(self.figure.columns)}")

    def shown_claims(self) -> pd.DataFrame:
        """The claims with ``holds`` as pass, fail or ``-``."""
        return self.claims.assign(holds=self.claims["holds"].map(holds))

    def markdown(self) -> str:
        parts = [render(self.shown_claims())]
        if self.detail is not None:
            parts.append(render(self.detail))
        parts.append(f"Published: {self.source}. {self.note}".strip())
        return "\n\n".join(parts)


def names() -> list[str]:
    """The paper tables there are: ``conf/paper/*.yaml``."""
    return group_options("paper")


def check_name(name: str) -> str:
    if name not in names():
        raise BenchError(f"--paper {name!r}: allowed: {', '.join(names())}")
    return name


def paper_table(name: str, runs: pd.DataFrame, trials: pd.DataFrame) -> PaperTable:
    """The paper table ``name`` over these runs; a one-line error naming the preset to run when
    they hold none of its experiments."""
    config = OmegaConf.load(Path(CONFIG_DIR) / "paper" / f"{check_name(name)}.yaml")
    build: Callable[[pd.DataFrame, pd.DataFrame], PaperTable] = hydra.utils.get_method(config["_target_"])
    return build(runs, trials)
