"""Hyperparameter optimisation methods, one family per module, each paired with conf/method/<name>.yaml.

Every method follows ``bench.protocols.Method`` and is constructed as ``Method(space, seed, **options)``.
"""
