"""Tuning tasks, one family per module, each paired with conf/task/<name>.yaml; data loaders sit
beside the tasks that use them (``<task>_data.py``).

Every task follows ``bench.protocols.Task`` and is constructed as ``Task(space, device, **options)``.
"""
