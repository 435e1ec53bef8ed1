"""bench: a fair benchmark of hyperparameter optimisation methods under equal budgets."""

__version__ = "0.1.0"
