"""The workflow submitted to a real SLURM controller through the executor plugin.

scripts/slurm_local.sh starts a single-node cluster on this machine (munge,
slurmctld, slurmd, two fake GPUs); every job below goes through sbatch, and
the tests read SLURM's own records of them (`scontrol show job`).

Set SPECTRAGRID_SKIP_SLURM=1 to skip these tests on a machine where no SLURM
can be started (not root, no Debian packages); without it, a controller that
does not come up fails them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock
from tiny_study import ROOT, Workdir, shared_temp, tiny_config

from spectragrid.core import layout

# One controller for these tests: in a parallel run they stay on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
# What the test cluster needs beyond the profiles as users have them: it has
# no accounting database for sacct, so job states come from squeue (its
# MinJobAge keeps finished jobs there); and its jobs start at once, so the
# first status check need not wait the plugin's default 40 s.
TEST_CLUSTER_ARGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
)
# The plugin waits 10 s longer after every status check that finds no job
# finished (up to 180 s), which suits a cluster of hour-long jobs and makes a
# test of second-long jobs spend most of its time asleep. The tests run the
# real snakemake and plugin with that wait capped; submission, the job
# records and the status queries are untouched.
POLL_CAP_SECONDS = 3
SNAKEMAKE = [
    sys.executable,
    "-c",
    "import sys\n"
    "import snakemake_executor_plugin_slurm as slurm\n"
    "from snakemake.cli import main\n"
    "wait = slurm.Executor.next_seconds_between_status_checks\n"
    "slurm.Executor.next_seconds_between_status_checks = property(\n"
    f"    wait.fget, lambda self, s: wait.fset(self, min(s, {POLL_CAP_SECONDS}))\n"
    ")\n"
    "sys.argv[0] = 'snakemake'\n"
    "main()\n",
]
# A small grid's whole run; a job SLURM never starts must fail the test, not stall CI.
SMALL_RUN_TIMEOUT = 420
# The tiny study through sbatch: about 150 s on 2 cores.
STUDY_RUN_TIMEOUT = 480
# Measured per run, not results: they differ between any two runs.
RUN_COST_COLUMNS = re.compile(r"seconds|per_second|rss")


@pytest.fixture(scope="module")
def slurm_cluster(request, tmp_path_factory) -> Iterator[None]:
    """The local controller, started once for these tests and stopped after if we started it.

    In a parallel run these tests must share one worker (their xdist group): two
    workers would each start, and one then stop, the one controller under the
    other's jobs. The file lock keeps them apart even if the grouping fails.
    """
    if os.environ.get("SPECTRAGRID_SKIP_SLURM") == "1":
        pytest.skip("SPECTRAGRID_SKIP_SLURM=1: the SLURM tests were opted out")
    if os.environ.get("PYTEST_XDIST_WORKER") and request.config.getvalue("dist") == "loadgroup":
        ours = [item.nodeid for item in request.session.items if item.path == request.path]
        assert all(nodeid.endswith("@slurm") for nodeid in ours), (
            "pytest-xdist did not group the SLURM tests on one worker (see pyproject.toml)"
        )
    with FileLock(str(shared_temp(tmp_path_factory) / "slurm-cluster.lock")):
        yield from _cluster()


def _cluster() -> Iterator[None]:
    was_running = (
        subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
    )
    start = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600
    )
    if start.returncode != 0:
        pytest.fail(
            "could not start the local SLURM (set SPECTRAGRID_SKIP_SLURM=1 to opt out):\n"
            + start.stdout
            + start.stderr
        )
    yield
    if not was_running:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)


def cluster_workdir(path: Path, config: dict) -> Workdir:
    work = Workdir(path)
    work.write_config(config)
    # What lets `snakemake --profile NAME` find a profile from the repository root.
    for name in ("slurm", "slurm-gpu"):
        (work.path / name).symlink_to(Path("profiles") / name)
    return work


def snakemake(
    work: Workdir, *args: str, timeout: int = SMALL_RUN_TIMEOUT
) -> subprocess.CompletedProcess:
    """The real snakemake with only the given options: the profile's own cores and retries hold."""
    try:
        return subprocess.run(
            [*SNAKEMAKE, *args, *TEST_CLUSTER_ARGS],
            cwd=work.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, PYTHONHASHSEED="0"),
        )
    except subprocess.TimeoutExpired as err:
        queue = cancel_jobs_of(work.path)
        output = err.stdout.decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        raise AssertionError(
            f"snakemake {' '.join(args)} ran past {timeout} s; its jobs in the queue:\n"
            f"{queue}\n{output[-4000:]}\n{cluster_logs()}"
        ) from None


def cancel_jobs_of(workdir: Path) -> str:
    """Cancel the queued and running jobs started from workdir; return what the queue showed."""
    queue = subprocess.run(
        ["squeue", "-h", "-t", "pending,running", "-o", "%i %T %r %Z"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    ours = [line.split()[0] for line in queue.splitlines() if line.endswith(f" {workdir}")]
    if ours:
        subprocess.run(["scancel", *ours], timeout=30)
    return queue


def submitted(proc: subprocess.CompletedProcess) -> list[tuple[int, str]]:
    """(SLURM job id, rule or group name) of every sbatch snakemake made."""
    found = re.findall(
        r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/([^/\s]+)/",
        proc.stdout + proc.stderr,
    )
    return [(int(job_id), name) for job_id, name in found]


def slurm_record(job_id: int) -> dict[str, str]:
    """SLURM's record of one job, as the controller keeps it (MinJobAge)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", str(job_id)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", out))


def failure_text(proc: subprocess.CompletedProcess) -> str:
    return f"rc={proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}\n{cluster_logs()}"


def cluster_logs(lines: int = 30) -> str:
    """The last lines of the controller's and the node's logs: why SLURM failed a job."""
    folder = Path(
        os.environ.get("SPECTRAGRID_SLURM_DIR", Path(tempfile.gettempdir()) / "spectragrid-slurm")
    )
    parts = []
    for name in ("slurmctld.log", "slurmd.log", "jobcomp.log"):
        path = folder / name
        text = (
            path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() else ["(none)"]
        )
        parts.append(f"--- {path}\n" + "\n".join(text))
    return "\n".join(parts)


def small_config(**resources: int) -> dict:
    """One model, three folds, one epoch, no label cleaning: the fewest cells a grid has."""
    config = tiny_config()
    config["models"] = {"cnn": config["models"]["cnn"]}
    config["models"]["cnn"]["train"].update(epochs=1, patience=1)
    config["grid"]["models"] = ["cnn"]
    config["label_issues"] = {"enabled": False, "models": ["cnn"]}
    config["resources"].update(resources)
    return config


def cell_dir(work: Workdir, fold: int, labels: str = "raw", model: str = "cnn") -> Path:
    return work.cell(model, fold, labels)


def test_training_under_slurm_gpu_asks_for_a_gpu_and_records_the_fallback(slurm_cluster, tmp_path):
    work = cluster_workdir(tmp_path, small_config())
    proc = snakemake(work, "--profile", "slurm-gpu")
    assert proc.returncode == 0, failure_text(proc)

    jobs = submitted(proc)
    train_jobs = [i for i, name in jobs if "train" in name]
    # the three cells share one GPU job (group cells_raw)
    assert len(train_jobs) == 1, jobs
    record = slurm_record(train_jobs[0])
    assert record["JobState"] == "COMPLETED"
    assert record["Partition"] == "gpu"
    assert record["TresPerJob"] == "gres:gpu:1"
    for job_id, name in jobs:
        if job_id not in train_jobs:
            other = slurm_record(job_id)
            assert other["Partition"] == "main", name
            assert "gpu" not in other.get("TresPerJob", ""), name

    for fold in range(3):
        card = json.loads((cell_dir(work, fold) / "card.json").read_text())
        # SLURM handed the job a device; torch found no CUDA there and trained on the CPU
        assert card["cuda_visible_devices"] == "0"
        assert card["device"] == "cpu"
        assert card["gpu_fallback"] is True
    summary = pd.read_csv(work.path / layout.SUMMARY_CSV)
    assert len(summary) == 3
    assert (summary["device"] == "cpu").all()


def test_a_job_killed_for_memory_is_retried_with_more_and_a_permanent_failure_is_clear(
    slurm_cluster, tmp_path
):
    # 400 MB cannot hold a training job (torch alone is more): SLURM kills it.
    work = cluster_workdir(tmp_path, small_config(train_mem_mb=400, train_mem_per_data_mb=0))
    target = str((cell_dir(work, 0) / "metrics.json").relative_to(work.path))
    proc = snakemake(work, "--profile", "slurm", "--retries", "2", target)
    assert proc.returncode == 0, failure_text(proc)

    attempts = [slurm_record(i) for i, name in submitted(proc) if "train" in name]
    assert len(attempts) >= 2, attempts
    first, last = attempts[0], attempts[-1]
    assert first["JobState"] in {"OUT_OF_MEMORY", "FAILED"}, first
    assert first["MinMemoryNode"] == "400M"
    assert first["TimeLimit"] == "00:30:00"
    # each retry asks for attempt x the config's memory and runtime
    assert attempts[1]["MinMemoryNode"] == "800M"
    assert attempts[1]["TimeLimit"] == "01:00:00"
    assert last["JobState"] == "COMPLETED"
    assert all((cell_dir(work, 0) / name).is_file() for name in layout.CELL_FILES.values())

    # 30 MB fails every attempt: snakemake stops with the reason and leaves no
    # output of that job's cells behind (a second model, whose three folds are
    # one job).
    config = small_config(train_mem_mb=30, train_mem_per_data_mb=0)
    config["models"]["cnn_b"] = config["models"]["cnn"]
    config["grid"]["models"] = ["cnn", "cnn_b"]
    work.write_config(config)
    target = str((cell_dir(work, 0, model="cnn_b") / "metrics.json").relative_to(work.path))
    proc = snakemake(work, "--profile", "slurm", target)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "Error in rule train" in text, failure_text(proc)
    assert "Exiting because a job execution failed" in text, failure_text(proc)
    failed = [(i, slurm_record(i)) for i, name in submitted(proc) if "train" in name]
    assert len(failed) == 2  # the profile's one retry
    assert [r["MinMemoryNode"] for _, r in failed] == ["30M", "60M"]
    assert all(r["JobState"] in {"OUT_OF_MEMORY", "FAILED"} for _, r in failed)
    # the error names the SLURM log of the last attempt, which says why
    last_log = re.search(rf"log: (\S*/{failed[-1][0]}\.log)", text)
    assert last_log, failure_text(proc)
    assert "Exceeded job memory limit" in Path(last_log.group(1)).read_text()
    for fold in range(3):
        folder = cell_dir(work, fold, model="cnn_b")
        assert not (list(folder.glob("*")) if folder.exists() else [])
    # the first model's cells are untouched
    for fold in range(3):
        assert all((cell_dir(work, fold) / name).is_file() for name in layout.CELL_FILES.values())


# Last of these tests: the shared tiny study it compares with is built meanwhile by
# another worker, while the tests above keep this one busy.
def test_the_tiny_study_through_sbatch_equals_the_local_run(
    slurm_cluster, finished_tiny_study, tmp_path
):
    work = cluster_workdir(tmp_path, tiny_config())
    proc = snakemake(work, "--profile", "slurm", timeout=STUDY_RUN_TIMEOUT)
    assert proc.returncode == 0, failure_text(proc)

    jobs = submitted(proc)
    records = {job_id: slurm_record(job_id) for job_id, _ in jobs}
    for job_id, record in records.items():
        assert record["JobState"] == "COMPLETED", (job_id, record)
        assert record["ExitCode"] == "0:0", (job_id, record)
        assert record["WorkDir"] == str(work.path)
        assert record["Partition"] == "main"
    names = [name for _, name in jobs]
    # 12 training cells (4 jobs of 3 folds), their sheets and 5 other jobs went
    # through a handful of sbatch calls: one group per label set, sheets and
    # data in groups too.
    assert names.count("group_cells_raw_train") == 1, names
    assert names.count("group_cells_clean_train") == 1, names
    assert len(jobs) <= 8, names
    # The plugin runs a group's jobs one after another: each group asks for
    # one CPU and the runtime of its jobs added up (two jobs of 30 minutes,
    # each training the three folds of one model).
    cells_raw = next(i for i, name in jobs if name == "group_cells_raw_train")
    assert records[cells_raw]["NumCPUs"] == "1"
    assert records[cells_raw]["TimeLimit"] == "01:00:00"

    local = pd.read_csv(finished_tiny_study.path / layout.SUMMARY_CSV)
    cluster = pd.read_csv(work.path / layout.SUMMARY_CSV)
    results = [c for c in local.columns if not RUN_COST_COLUMNS.search(c)]
    assert "test_macro_f1" in results and "truth_accuracy" in results
    keys = ["labels", "model", "fold"]
    pd.testing.assert_frame_equal(
        local[results].sort_values(keys).reset_index(drop=True),
        cluster[results].sort_values(keys).reset_index(drop=True),
        check_exact=True,
    )
