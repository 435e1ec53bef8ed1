"""Slurm sweeps that wait for every array task, and say which ones failed.

Hydra's submitit launcher submits one Slurm array task per run, then returns the tasks' results in
order: the first task that failed ends the sweep with a traceback while later tasks still run, and
the sweep prints no report. Its state watcher asks ``sacct`` on every poll; on a cluster that keeps
no accounting database that fails, submitit warns each time, and a task cancelled or killed before
it wrote a result stays in state ``UNKNOWN``, so the sweep waits for it forever.

``SlurmLauncher`` (Hydra's ``hydra/launcher=bench_slurm``, which ``conf/launcher/slurm_*.yaml``
select) submits as Hydra's does, waits for every task, logs one line per task that ended without a
result (its state, its overrides, its log file) and hands Hydra a result for each, so the sweep's
report runs; the report then counts the runs that did not complete and the sweep exits with status
2 (``bench.report.callback``). ``JobStates`` reads task states from ``sacct``, or, where the
cluster keeps no accounting (said once), from ``scontrol show job``, which knows every job still
queued, running or ended less than ``MinJobAge`` ago; a job it no longer knows has ended.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as HydraSlurmLauncher
from omegaconf import OmegaConf
from submitit.core.utils import UncompletedJobError
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

from bench.numerics import exports

log = logging.getLogger("bench")

UNFINISHED = {
    "READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED", "CONFIGURING",
    "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD",
}  # fmt: skip
"""Slurm job states of a task that may still run (submitit's list lacks the rarer ones)."""
GONE = "ENDED"
"""The state of a task ``scontrol`` no longer knows: it ended (its result file says how)."""
POLL_SECONDS = 30
"""The longest wait between two state queries; a task that ends without a result is seen this late."""


class JobStates(SlurmInfoWatcher):
    """Task states from ``sacct``, or from ``scontrol`` on a cluster without accounting."""

    def __init__(self, delay_s: int = POLL_SECONDS) -> None:
        super().__init__(delay_s=delay_s)
        self.accounting = True  # until sacct says otherwise

    def update(self) -> None:
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        try:
            info = self._from_sacct(command) if self.accounting else None
            if info is None:
                info = self._from_scontrol({job_id.split("_")[0] for job_id in self._registered - self._finished})
        except (OSError, subprocess.SubprocessError) as error:  # the controller busy or away: ask again later
            log.warning("Slurm task states unavailable (%s); asking again at the next poll", error)
            info = {}
        self._info_dict.update(info)
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def is_done(self, job_id: str, mode: str = "standard") -> bool:
        return self.get_state(job_id, mode=mode).upper().split()[0] not in UNFINISHED

    def _from_sacct(self, command: list[str]) -> dict[str, dict[str, str]] | None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            return self.read_info(done.stdout)
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        log.warning("sacct: %s; task states come from scontrol instead (said once)", reason)
        self.accounting = False
        return None

    def _from_scontrol(self, job_ids: set[str]) -> dict[str, dict[str, str]]:
        info: dict[str, dict[str, str]] = {}
        for job_id in job_ids:
            done = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                if "invalid job id" not in done.stderr.lower():  # the controller did not answer: no news
                    raise subprocess.SubprocessError(done.stderr.strip() or f"scontrol exit status {done.returncode}")
                # purged after MinJobAge: every task of it has ended
                info.update({known: {"State": GONE} for known in self._registered if known.split("_")[0] == job_id})
                continue
            for line in done.stdout.splitlines():
                fields = dict(re.findall(r"(\w+)=(\S*)", line))
                state = {"State": fields.get("JobState", "UNKNOWN"), "NodeList": fields.get("NodeList", "")}
                if "ArrayJobId" not in fields:
                    info[fields.get("JobId", job_id)] = state
                    continue
                for task in array_tasks(fields.get("ArrayTaskId", "")):
                    info[f"{fields['ArrayJobId']}_{task}"] = state
        return info


def array_tasks(spec: str) -> list[str]:
    """``"3"``, ``"4-6"``, ``"4-9%2"``, ``"1,3-4"`` -> the task numbers they name."""
    tasks: list[str] = []
    for part in spec.split("%")[0].split(","):
        if "-" in part:
            first, last = part.split("-")
            tasks.extend(str(task) for task in range(int(first), int(last) + 1))
        elif part:
            tasks.append(part)
    return tasks


class SlurmLauncher(HydraSlurmLauncher):
    """Hydra's Slurm launcher, waiting for every array task (see the module docstring)."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        SlurmJob.watcher = JobStates()
        params = dict(self.params)
        params["setup"] = [*(params.get("setup") or []), *filter(None, [exports()])]  # where sbatch --export=NONE
        executor = submitit.AutoExecutor(
            folder=params.pop("submitit_folder"),
            cluster=self._EXECUTOR,
            slurm_max_num_timeout=params.pop("max_num_timeout"),
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{key if key in shared else f"slurm_{key}": v for key, v in params.items()})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:  # hydra.sweep.mode: the folder's permissions, as Hydra's launcher sets
            sweep_dir.chmod(int(str(self.config.hydra.sweep.mode), 8))
        log.info("Slurm sweep: %d array task(s), output under %s", len(job_overrides), sweep_dir)
        arguments = []
        for number, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", number, " ".join(filter_overrides(overrides)))
            state = Singleton.get_state()
            arguments.append((list(overrides), "hydra.sweep.dir", number, f"job_id_for_{number}", state))
        jobs = executor.map_array(self, *zip(*arguments, strict=True))
        log.info("submitted Slurm job %s; waiting for its tasks", jobs[0].job_id.split("_")[0] if jobs else "-")
        return [wait_for(job, overrides) for job, overrides in zip(jobs, job_overrides, strict=True)]


def wait_for(job: Any, overrides: Sequence[str]) -> JobReturn:
    """The task's own result, or, for a task that raised or ended without a result, a stand-in
    that lets the sweep go on to its report (which counts the run as not completed, and exits 2)
    after one log line."""
    try:
        returned = job.results()[0]
    except UncompletedJobError as error:  # FailedJobError included: the task crashed, or was killed
        cause = last_error_line(str(error))
    else:
        if returned.status != JobStatus.FAILED:
            return returned
        cause = f"{type(returned._return_value).__name__}: {returned._return_value}"
    log.error(
        "Slurm task %s (%s) ended %s without a result: %s; its log: %s",
        job.job_id,
        " ".join(filter_overrides(overrides)),
        job.state,
        " ".join(cause.split())[:300],
        job.paths.stderr,
    )
    return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None)


def last_error_line(message: str) -> str:
    """The exception line of submitit's failure message: the last unindented line before its
    "You can check full logs" footer (or its last line)."""
    lines = [line for line in message.split("You can check full logs")[0].splitlines() if line.strip()]
    return next((line for line in reversed(lines) if not line.startswith((" ", "-"))), lines[-1] if lines else "")
