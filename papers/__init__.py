"""Published tables beside ours: one paper per file, each a function ``(runs, trials) -> PaperTable``
(``bench.report.papers``), named by ``conf/paper/<name>.yaml``. Published numbers and their sources
come from ``papers.md`` (the project's reference notes); where it says a number is not known, the
table says so."""
