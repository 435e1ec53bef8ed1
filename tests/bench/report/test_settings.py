"""A run's setting (``bench.report.load.settings``): the methods are compared within a setting,
so runs of one task that tuned different spaces must never share one."""

import pandas as pd

from bench.report.load import setting_order, settings


def frame(*runs: tuple[str, int, dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"task_name": task, "dimensions": d, "identity": {"task": options}} for task, d, options in runs]
    )


def test_settings_tell_apart_each_d_and_the_task_options_that_differ_at_one_d():
    runs = frame(
        ("hyper_cleaning", 3, {"loss_weights": "ones", "loss_granularity": "per_source"}),
        ("hyper_cleaning", 3, {"loss_weights": "oracle", "loss_granularity": "per_example"}),
        ("hyper_cleaning", 3, {"loss_weights": "ones", "loss_granularity": "per_source"}),
        ("hyper_cleaning", 4, {"loss_weights": "tuned", "loss_granularity": "universal"}),
        ("branin", 2, {"noise": 0}),
    )
    assert settings(runs).tolist() == [
        "hyper_cleaning[d=3, loss_granularity=per_source, loss_weights=ones]",
        "hyper_cleaning[d=3, loss_granularity=per_example, loss_weights=oracle]",
        "hyper_cleaning[d=3, loss_granularity=per_source, loss_weights=ones]",
        "hyper_cleaning[d=4]",
        "branin",
    ]
    assert sorted(settings(runs).unique(), key=setting_order) == [
        "branin",
        "hyper_cleaning[d=3, loss_granularity=per_example, loss_weights=oracle]",
        "hyper_cleaning[d=3, loss_granularity=per_source, loss_weights=ones]",
        "hyper_cleaning[d=4]",
    ]


def test_one_space_per_task_keeps_the_task_s_name_and_d_alone_when_only_d_differs():
    runs = frame(("mnist_mlp", 934, {"l2_granularity": "per_unit"}), ("mnist_mlp", 1, {"l2_granularity": "universal"}))
    assert settings(runs).tolist() == ["mnist_mlp[d=934]", "mnist_mlp[d=1]"]
    assert settings(frame(("branin", 2, {}), ("branin", 2, {}))).tolist() == ["branin", "branin"]
