"""The report wing: run folders read into pandas, and turned into the verdict, tables, figures,
paper tables and one HTML page. It reads what the run core (``bench``) writes and nothing in the
run core imports it.

    python -m bench.report DIR [--format markdown|csv|latex] [--table-only] [--importance] [--paper NAME]

``load`` (run folders into pandas, labels) -> ``scores`` (who wins: score matrix, best row, wins,
tests) -> ``table`` (the comparison table), ``verdict`` (the verdict in words), ``analysis``
(anytime, ranks, P(A > B), time to target, Friedman, expected best; statistics in ``stats``),
``importance`` (fANOVA), ``papers`` (published tables, from ``papers/``) -> ``sections`` (the full
report, in reading order) -> ``page`` (files and the HTML page), all rendered by ``render``;
figures by ``plots``. ``callback`` prints the verdict and table when a sweep ends.
"""
