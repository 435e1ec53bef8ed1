"""Run identity: what defines an experiment (bench/identity.py)."""

from bench.identity import digest, experiment_identity

PACKAGES = {"torch": "2.13.0", "botorch": "0.18.1", "bench": "0.1.0"}


def identity(**changes):
    config = {
        "task": {"name": "branin", "space": {"x1": {"type": "real", "low": -5, "high": 10}}},
        "method": {"name": "gp_ts", "greedy": 0.5},
        "budget": {"evaluations": 20, "train_steps": None, "seconds": None},
        "batch_size": 1,
        "incumbent_repeats": 3,
        "seed": 0,
        "device": "cpu",
        "torch_threads": 1,
    }
    for key, value in changes.items():
        node = config
        *path, last = key.split("__")
        for part in path:
            node = node[part]
        node[last] = value
    return experiment_identity(config, PACKAGES, None)


def test_seed_device_and_threads_do_not_change_the_identity_but_options_and_budgets_do():
    assert digest(identity()) == digest(identity(seed=7, device="cuda", torch_threads=2))
    assert digest(identity()) != digest(identity(method__greedy=0.0))
    assert digest(identity()) != digest(identity(budget__evaluations=21))
    assert digest(identity()) != digest(identity(task__space__x1__high=11))
    assert digest(identity(method__greedy=0)) == digest(identity(method__greedy=0.0))  # numbers as numbers
    assert digest(identity()) != digest(experiment_identity(identity(), {**PACKAGES, "torch": "2.14.1"}))
