"""The benchmark wing: what the suite itself costs, measured. One module per benchmark, their
shared helpers in ``common``; ``python -m bench.perf BENCHMARK [options]`` runs one and prints a
table (``--json FILE`` also writes the records). Reference results: ``results/reference/perf_*``.

- ``methods``: seconds per ``ask()`` of each method against the number of observations;
- ``hypergrad``: time and peak memory of plain training, DrMAD and exact reverse mode against T;
- ``agreement``: cosine similarity of DrMAD's hypergradient with the exact one;
- ``text``: seconds per text_linear trial (cold, from disk, warm), per text_rnn epoch, and of one
  DrMAD hyper-iteration on text_rnn;
- ``batched``: q bikeshare trials one by one against one vectorised training;
- ``report``: seconds of the full report on 1,000 synthetic runs written through the real store;
- ``importance``: seconds of fANOVA importance against the number of trials.

Speed and memory goals are shown by these commands, never by timed assertions in tests.
"""
