"""Registers ``hydra/launcher=bench_slurm``: Hydra's Slurm launcher with the settings of
``SlurmQueueConf``, run by ``bench.slurm.SlurmLauncher`` (Hydra finds launchers only in the
``hydra_plugins`` package; the code lives in ``bench/slurm.py``)."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

from bench.slurm import SlurmLauncher


class BenchSlurmLauncher(SlurmLauncher):
    """``bench.slurm.SlurmLauncher`` under the name Hydra's plugin discovery accepts."""


@dataclass
class BenchSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.bench_launcher.bench_slurm.BenchSlurmLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="bench_slurm", node=BenchSlurmConf, provider="bench")
