"""bench: a fair benchmark of hyperparameter optimisation methods under equal budgets."""

from bench.numerics import pin

pin()  # before any numerical library loads: every entry point imports this package first

__version__ = "0.1.0"
