"""Run folders into pandas, and how runs are labelled (bench/report/load.py)."""

from bench.report.load import differences, label
from tests.bench.test_identity import identity


def test_labels_name_what_differs():
    a, b = identity(method__greedy=0), identity(method__greedy=1)
    keys = differences([a, b])
    assert keys == ["method.greedy"]
    assert label("gp_ts", a, keys) == "gp_ts[greedy=0]" and label("gp_ts", b, keys) == "gp_ts[greedy=1]"
    c = identity(budget__evaluations=40)
    assert label("gp_ts", c, differences([a, c])) == "gp_ts[budget.evaluations=40,greedy=0.5]"
