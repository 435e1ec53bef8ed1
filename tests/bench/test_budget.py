import pytest

from bench.budget import Budget, Spent
from bench.errors import BenchError


def test_first_limit_reached_stops_the_run():
    budget = Budget(evaluations=10, train_steps=1000, seconds=60)
    assert budget.exhausted(Spent(evaluations=9, train_steps=999, seconds=59.9)) is None
    assert "budget.evaluations=10" in budget.exhausted(Spent(evaluations=10))
    assert "budget.train_steps=1000" in budget.exhausted(Spent(evaluations=3, train_steps=1200))
    assert "budget.seconds=60" in budget.exhausted(Spent(seconds=61.0))


def test_evaluations_left():
    assert Budget(evaluations=5).evaluations_left(Spent(evaluations=2)) == 3
    assert Budget(seconds=5).evaluations_left(Spent(evaluations=2)) is None


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({}, "no budget set"),
        ({"evaluations": 0}, "budget.evaluations=0: must be a positive whole number"),
        ({"evaluations": -3}, "budget.evaluations=-3"),
        ({"evaluations": 2.5}, "budget.evaluations=2.5"),
        ({"train_steps": True}, "budget.train_steps=True"),
        ({"seconds": -1.0}, "budget.seconds=-1.0: must be a positive number of seconds"),
        ({"seconds": float("inf")}, "budget.seconds=inf"),
    ],
)
def test_bad_budgets_are_named(limits, message):
    with pytest.raises(BenchError, match=message.replace("(", r"\(")):
        Budget(**limits)


def test_unknown_budget_key():
    with pytest.raises(BenchError, match=r"unknown key\(s\) \['trials'\]"):
        Budget.from_config({"trials": 5})
