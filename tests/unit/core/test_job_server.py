"""The warm interpreter (core.job_server): a job forked from it fails, is signalled and
dies with the process Snakemake started, as a cold job would; without a server for this
interpreter the job runs cold."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from spectragrid.core import job_server, layout

WILDCARDS = {
    "dataset": "demo",
    "labels": "raw",
    "target": "OVA_OK",
    "channels": "all",
    "model": "cnn",
    "seed": "0",
}
CUTOFF = {"rule": "youden_product", "recall": 0.95, "precision": 0.95}
# The job script Snakemake would run: a `snakemake` object, then run_job.
CLIENT = """
import json, sys
from types import SimpleNamespace
from spectragrid.core.job_client import run_job
spec = json.loads(sys.argv[1])
snakemake = SimpleNamespace(
    input=spec["input"], output=spec["output"], log=[spec["log"]], wildcards=spec["wildcards"],
    params=SimpleNamespace(k=1, cutoff=spec["cutoff"], costs={}),
)
run_job(snakemake, "spectragrid.report.sheet_job")
"""


@pytest.fixture
def server():
    # a short folder: a Unix socket's path has at most 107 characters
    folder = Path(tempfile.mkdtemp(prefix="sg-"))
    path = job_server.socket_path(folder, "sheet")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spectragrid.core.job_server",
            f"--socket={path}",
            f"--parent={os.getpid()}",
            "--rule=sheet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert "modules loaded" in process.stdout.readline()
    yield path, process
    if process.poll() is None:
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert not path.exists()
    shutil.rmtree(folder)


def _client(work: Path, socket_path: Path | None, metrics: Path, identity: str | None = None):
    spec = {
        "input": {"metrics": str(metrics)},
        # a sheet lies in its cell's folder and reads the cell's files from there
        "output": {
            layout.fold_output_name("png", 0): str(metrics.parent / "sheet.png"),
            layout.fold_output_name("html", 0): str(metrics.parent / "sheet.html"),
        },
        "log": str(work / "sheet.log"),
        "wildcards": WILDCARDS,
        "cutoff": CUTOFF,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAGRID_JOB_SERVER")}
    if socket_path is not None:
        # the folder of the run's sockets: the client finds its rule's server there
        env[job_server.SOCKET_ENV] = str(socket_path.parent)
        env[job_server.PYTHON_ENV] = identity or job_server.interpreter_identity()
    # a file, as Snakemake's job scripts are: the server's child runs it again
    script = work / "job_script.py"
    script.write_text(CLIENT)
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(spec)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _usage_file(work: Path) -> Path:
    return work / layout.job_usage_file(layout.fold_group_key(1).format(**WILDCARDS), "sheet")


def _job_child(process: subprocess.Popen) -> psutil.Process:
    deadline = time.monotonic() + 30
    while not (children := psutil.Process(process.pid).children()):
        assert time.monotonic() < deadline, "the server forked no job"
        time.sleep(0.01)
    (child,) = children
    return child


def test_a_failing_job_fails_in_the_server_child_with_its_message_and_log(server, tmp_path):
    path, process = server
    client = _client(tmp_path, path, tmp_path / "absent" / "metrics.json")
    _, err = client.communicate(timeout=120)
    assert client.returncode == 1
    assert "spectragrid: CorruptOutputError" in err
    assert "Traceback" in (tmp_path / "sheet.log").read_text()
    # the child's CPU time and memory, measured by the server, for the cost report
    usage = json.loads(_usage_file(tmp_path).read_text())
    assert usage["cpu_seconds"] > 0 and usage["max_rss_mb"] > 50
    assert process.poll() is None


def test_a_killed_job_script_takes_its_child_with_it(server, tmp_path):
    path, process = server
    fifo = tmp_path / "metrics.json"
    os.mkfifo(fifo)  # the job blocks reading it
    client = _client(tmp_path, path, fifo)
    child = _job_child(process)
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    child.wait(timeout=10)
    assert not child.is_running()
    assert process.poll() is None  # and the server takes the next job
    again = _client(tmp_path, path, tmp_path / "absent" / "metrics.json")
    again.communicate(timeout=120)
    assert again.returncode == 1


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_job_script_reaches_its_child(server, tmp_path, number):
    path, process = server
    fifo = tmp_path / "metrics.json"
    os.mkfifo(fifo)
    client = _client(tmp_path, path, fifo)
    child = _job_child(process)
    client.send_signal(number)
    client.communicate(timeout=30)
    child.wait(timeout=10)
    if number == signal.SIGTERM:
        # the child died of it; the script ends the same way
        assert client.returncode == -signal.SIGTERM
    else:
        # Python turns SIGINT into KeyboardInterrupt: the job fails with status 1
        assert client.returncode == 1


@pytest.mark.parametrize("how", ["no server", "other interpreter", "server gone"])
def test_without_a_server_for_this_interpreter_the_job_runs_cold(tmp_path, how):
    socket_path = {
        "no server": None,
        "other interpreter": job_server.socket_path(tmp_path, "sheet"),
        "server gone": job_server.socket_path(tmp_path, "sheet"),
    }[how]
    identity = (
        "/opt/conda/envs/x/bin/python:/opt/conda/envs/x" if how == "other interpreter" else None
    )
    client = _client(tmp_path, socket_path, tmp_path / "absent" / "metrics.json", identity)
    _, err = client.communicate(timeout=120)
    assert client.returncode == 1
    assert "spectragrid: CorruptOutputError" in err
    assert not _usage_file(tmp_path).exists()


def test_a_stale_usage_file_goes_when_the_job_runs_cold(tmp_path):
    stale = _usage_file(tmp_path)
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"cpu_seconds": 9.0, "max_rss_mb": 9.0}))
    client = _client(tmp_path, None, tmp_path / "absent" / "metrics.json")
    client.communicate(timeout=120)
    assert not stale.exists()


def test_worth_a_server_only_for_groups_of_rules_with_two_jobs_or_more():
    assert job_server.rules_to_preload(["train", "train", "sheet", "ingest"]) == {
        "train": ["train"]
    }
    assert job_server.rules_to_preload(["train", "sheet", "ingest"]) == {}
    # the summary runs warm beside the sheets
    assert job_server.rules_to_preload(["sheet", "summary", "train"]) == {
        "report": ["sheet", "summary"]
    }
    assert job_server.rules_to_preload(["sheet"] * 3 + ["train"] * 2) == {
        "train": ["train"],
        "report": ["sheet"],
    }


def test_each_rule_has_a_server_group_and_a_socket_of_its_own_group(tmp_path):
    groups = [job_server.server_group(rule) for rule in job_server.JOB_MODULES]
    assert groups == ["train", "report", "report"]
    assert job_server.socket_path(tmp_path, "summary") == job_server.socket_path(tmp_path, "sheet")
    assert job_server.socket_path(tmp_path, "train") != job_server.socket_path(tmp_path, "sheet")


def test_a_job_script_names_a_job_module(tmp_path):
    from spectragrid.core.job_client import run_job

    with pytest.raises(ValueError, match="not a job module"):
        run_job(object(), "os")


def test_a_job_dies_with_its_server_and_its_script_says_so(server, tmp_path):
    path, process = server
    fifo = tmp_path / "metrics.json"
    os.mkfifo(fifo)
    client = _client(tmp_path, path, fifo)
    child = _job_child(process)
    process.kill()
    _, err = client.communicate(timeout=30)
    child.wait(timeout=10)
    assert client.returncode == 1
    assert "the job server ended while it ran this job" in err


def test_a_server_whose_snakemake_is_killed_takes_no_job_but_finishes_its_own(tmp_path):
    """As a cold job outlives a SIGKILLed snakemake, so does a warm one: its server stops
    listening and exits once the job has ended, which its client then reports."""
    folder = Path(tempfile.mkdtemp(prefix="sg-"))
    path = job_server.socket_path(folder, "sheet")
    server_command = [
        sys.executable,
        "-m",
        "spectragrid.core.job_server",
        f"--socket={path}",
        "--parent={parent}",
        "--rule=sheet",
    ]
    # the stand-in for snakemake: the server's parent, which then dies
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "cmd = [a.replace('{parent}', str(os.getpid())) for a in sys.argv[1:]]\n"
            "server = subprocess.Popen(cmd)\n"
            "print(server.pid, flush=True)\n"
            "time.sleep(600)\n",
            *server_command,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    server = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fifo = tmp_path / "metrics.json"
    os.mkfifo(fifo)
    client = _client(tmp_path, path, fifo)
    deadline = time.monotonic() + 60
    while not server.children():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while path.exists():  # no new job
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.poll() is None and server.is_running()  # the job goes on
    with open(fifo, "w") as release:  # the job reads it and fails on its content
        release.write("{}")
    _, err = client.communicate(timeout=60)
    assert client.returncode == 1 and "spectragrid:" in err
    server.wait(timeout=10)
    shutil.rmtree(folder)


def test_a_forked_job_takes_the_threads_and_temporary_folder_of_its_own_environment(tmp_path):
    """The server's OpenBLAS and OpenMP started with the machine's cores; a job Snakemake
    starts cold reads its rule's `threads` from OMP_NUM_THREADS and the BLAS variables."""
    check = """
import os, sys, tempfile, threadpoolctl, numpy, torch
from spectragrid.core.job_server import _as_started_fresh
tempfile.gettempdir()
env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=sys.argv[1])
os.environ.update(env)
_as_started_fresh(env)
print(sorted({i["num_threads"] for i in threadpoolctl.threadpool_info()}), torch.get_num_threads())
print(tempfile.gettempdir())
"""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OMP_NUM_THREADS"] = "2"  # as the server could have started, whatever the cores
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == ["[1] 1", str(tmp_path)]
