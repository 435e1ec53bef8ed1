"""The full report on disk: every section as Markdown, each table as CSV and LaTeX, each figure as
PNG and SVG, and one self-contained HTML page.

    python -m bench.report DIR [--importance] [--paper NAME] [--target Y] [--output FOLDER]

Files go to ``DIR/report/`` (or ``--output``): ``index.html`` (tables and figures inlined: no
network resource, opens from the file system; the verdict and the headline figure first),
``report.md``, one ``<stem>.csv`` and ``<stem>.tex`` per table, ``<stem>.png`` and ``<stem>.svg``
per figure. The folder is built beside its final place and renamed into it, so a reader never sees
half a report and a failed report leaves the previous one in place.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from bench.files import fsync_tree
from bench.report.render import render
from bench.report.sections import Context, Section, build


def write_report(
    runs: pd.DataFrame,
    trials: pd.DataFrame,
    root: Path,
    output: Path,
    importance: bool = False,
    paper: str | None = None,
    target: float | None = None,
) -> list[Section]:
    """Build every section into a fresh folder beside ``output`` and rename it into place."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        built = build(Context(runs, trials, Path(root), staging, importance, paper, target))
        for section in built:
            for table in section.tables:
                raw = table.shown if table.raw is None else table.raw
                (staging / f"{table.stem}.csv").write_text(render(table.shown, "csv", raw), encoding="utf-8")
                (staging / f"{table.stem}.tex").write_text(render(table.shown, "latex"), encoding="utf-8")
        (staging / "report.md").write_text("\n\n".join(s.markdown() for s in built) + "\n", encoding="utf-8")
        (staging / "index.html").write_text(page(built, root), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; a report is for readers
        fsync_tree(staging)  # on disk before it is renamed into place
        old = output.with_name(f".{output.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if output.exists():
            output.rename(old)  # the previous report stays whole until the new one is in place
        staging.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for section in built:
        section.figures = [output / figure.relative_to(staging) for figure in section.figures]
    return built


STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222; line-height: 1.35; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #f0f0f0; }
p.caption { font-size: 0.85em; color: #444; max-width: 1100px; }
p.verdict { font-size: 1.05em; max-width: 1100px; margin: 0.4em 0; }
h4 { margin: 0.8em 0 0.2em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
img.headline { max-height: 55vh; }
nav { font-size: 0.85em; margin-bottom: 0.5em; }
nav a { margin-right: 1em; }
"""


def page(built: list[Section], root: Path) -> str:
    """One self-contained HTML page: paragraphs, tables as HTML, figures inlined as base64 PNG."""
    body = [f"<h1>Benchmark report: {html.escape(str(root))}</h1>"]
    body.append("<nav>" + "".join(f'<a href="#{s.name}">{html.escape(s.title)}</a>' for s in built) + "</nav>")
    for section in built:
        body.append(f'<h2 id="{section.name}">{html.escape(section.title)}</h2>')
        body += [f'<p class="verdict">{_inline(paragraph)}</p>' for paragraph in section.paragraphs]
        if section.name == "verdict":  # the headline figure right under the verdict, before its caption
            body += [_image(figure, "headline") for figure in section.figures]
        for table in section.tables:
            if table.heading:
                body.append(f"<h4>{html.escape(table.heading)}</h4>")
            body.append(render(table.shown, "html"))
        if section.caption:
            body.append(f'<p class="caption">{html.escape(section.caption)}</p>')
        if section.name != "verdict":
            body += [_image(figure) for figure in section.figures]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Benchmark report</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _inline(markdown: str) -> str:
    """A paragraph's Markdown emphasis (``**bold**``) as HTML, the rest escaped."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(markdown))


def _image(figure: Path, css_class: str = "") -> str:
    data = base64.b64encode(figure.read_bytes()).decode("ascii")
    attribute = f' class="{css_class}"' if css_class else ""
    return f'<img{attribute} alt="{html.escape(figure.stem)}" src="data:image/png;base64,{data}">'
