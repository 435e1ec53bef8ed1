"""``python -m bench.report DIR``: the comparison table and the full report of every run under DIR.

    python -m bench.report DIR [--format markdown|csv|latex] [--include-incomplete] [--paper NAME]
                               [--importance] [--target Y] [--output FOLDER] [--table-only]

Reads every run under DIR (any depth), prints every section (or, with ``--format csv|latex``, the
comparison table in that format) and writes the full report to ``DIR/report/``
(``bench.report.page``). ``--table-only`` prints the comparison table (and ``--paper``'s table)
and writes nothing. A user error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError
from bench.report import papers
from bench.report.load import load_runs
from bench.report.render import check_format
from bench.report.table import comparison

FORMATS = ("markdown", "csv", "latex")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench.report``."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="a run, sweep or results directory")
    parser.add_argument("--format", default="markdown", help=f"one of {', '.join(FORMATS)} (default markdown)")
    parser.add_argument("--include-incomplete", action="store_true", help="also count runs that did not complete")
    parser.add_argument("--paper", help=f"also print a published table beside ours: {', '.join(papers.names())}")
    parser.add_argument("--importance", action="store_true", help="add fANOVA hyperparameter importance")
    parser.add_argument("--target", type=float, help="validation objective for time-to-target (default: per task)")
    parser.add_argument("--output", type=Path, help="folder of the full report (default DIRECTORY/report)")
    parser.add_argument("--table-only", action="store_true", help="print the comparison table only; write no files")
    return parser


def check(args: argparse.Namespace) -> None:
    """The options' values, checked before any run is read: one-line errors."""
    check_format(args.format, FORMATS)
    if args.paper:
        papers.check_name(args.paper)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        check(args)
        runs, trials = load_runs(args.directory, include_incomplete=args.include_incomplete)
        if runs.empty:
            raise BenchError(f"{args.directory}: no completed runs to report")
        if args.table_only:
            print(comparison(runs, args.directory, args.format))
            if args.paper:
                print("\n" + papers.paper_table(args.paper, runs, trials).markdown())
            return 0
        from bench.report.page import write_report  # plots and statistics: only when asked for

        output = args.output or args.directory / "report"
        built = write_report(
            runs, trials, args.directory, output, importance=args.importance, paper=args.paper, target=args.target
        )
        if args.format == "markdown":
            print("\n\n".join(section.markdown() for section in built))
        else:
            print(comparison(runs, args.directory, args.format))
        print(
            f"full report: {output / 'index.html'} (tables as Markdown, CSV and LaTeX; figures as PNG and SVG)",
            file=sys.stderr,
        )
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
