"""Published tables beside ours: one paper per file, each a function ``(runs, trials) -> PaperTable``
(``bench.report.papers``), named by ``conf/paper/<name>.yaml``. Each module holds its paper's
published numbers with their source (the paper, its table or its authors' code and result files);
where a number is not known, the table says so instead of inventing one."""
