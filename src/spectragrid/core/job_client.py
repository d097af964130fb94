"""The job script's side of the warm interpreter (core.job_server).

`run_job(snakemake, module)` is all a workflow script does. Where the run has
a job server for this interpreter, the server forks a child that runs this
same script, and this process waits for it, forwarding signals and exiting
with its status; in that child, and wherever there is no server for this
interpreter (a cluster job, a conda environment, a run without a server, a
server that has ended), the job runs in the process itself, cold.

Snakemake's `benchmark:` measures this process and its children, which a
warm job's child is not. The client therefore writes the child's CPU time and
peak memory beside the benchmark file (`layout.job_usage_file`), where the
run's cost report reads them; a cold job removes that file, so it never
outlives the run that wrote it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from spectragrid.core import job_server, layout

# Set by the server in the child it forks: the job runs here.
in_server_child = False


def _rule(module: str) -> str:
    return next(r for r, m in job_server.JOB_MODULES.items() if m == module)


def _usage_file(snakemake: Any, rule: str) -> Path | None:
    wildcards = dict(getattr(snakemake, "wildcards", {}))
    if not wildcards:
        return layout.job_usage_file("", rule)  # one job of its rule: the summary
    try:
        key = layout.fold_group_key(int(snakemake.params.k)).format(**wildcards)
    except (AttributeError, KeyError, ValueError):
        return None
    return layout.job_usage_file(key, rule)


def _connect(rule: str) -> socket.socket | None:
    folder = os.environ.get(job_server.SOCKET_ENV)
    if not folder or os.environ.get(job_server.PYTHON_ENV) != job_server.interpreter_identity():
        return None
    if not os.path.isfile(sys.argv[0]):
        return None  # nothing the child could run again
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(job_server.socket_path(Path(folder), rule)))
    except OSError:
        sock.close()
        return None
    return sock


def _run_here(snakemake: Any, module: str) -> None:
    importlib.import_module(module).main(snakemake)


def _request() -> bytes:
    umask = os.umask(0)
    os.umask(umask)
    return json.dumps(
        {
            "cwd": os.getcwd(),
            "umask": umask,
            "environ": dict(os.environ),
            "argv": [os.path.abspath(sys.argv[0]), *sys.argv[1:]],
        }
    ).encode()


def _exit_like(status: int) -> None:
    """End this process as the child ended: its exit code, or its signal."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), number)
    raise SystemExit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def run_job(snakemake: Any, module: str) -> None:
    """Run the job whose body is `module`'s `main` (one of job_server.JOB_MODULES), warm
    where the run allows it."""
    if module not in job_server.JOB_MODULES.values():
        raise ValueError(f"{module} is not a job module: {sorted(job_server.JOB_MODULES.values())}")
    if in_server_child:
        _run_here(snakemake, module)
        return
    rule = _rule(module)
    usage_file = _usage_file(snakemake, rule)
    if usage_file is not None:
        usage_file.unlink(missing_ok=True)
    sock = _connect(rule)
    if sock is None:
        _run_here(snakemake, module)
        return
    # From the request on, a signal is the job's: held until the child runs, then passed
    # on; if no child runs, delivered here as it would have been.
    held: list[int] = []
    previous = {
        n: signal.signal(n, lambda number, _: held.append(number)) for n in job_server.JOB_SIGNALS
    }
    with sock:
        try:
            job_server.send(sock, job_server.REQUEST, _request(), fds=(0, 1, 2))
            started = job_server.receive(sock)
        except OSError:
            started = None
        if started is None or started[0] != job_server.STARTED:
            # The server ended before taking the job (its imports failed, or the run it
            # served is over): nothing ran yet.
            for number, handler in previous.items():
                signal.signal(number, handler)
            for number in held:
                signal.raise_signal(number)
            _run_here(snakemake, module)
            return

        def forward(number: int, _frame: Any) -> None:
            with contextlib.suppress(OSError):
                job_server.send(sock, job_server.SIGNAL, struct.pack("!i", number))

        for number in job_server.JOB_SIGNALS:
            signal.signal(number, forward)
        for number in held:
            forward(number, None)
        ended = job_server.receive(sock)
        if ended is None:
            print(
                "spectragrid: the job server ended while it ran this job "
                f"(child {struct.unpack('!i', started[1])[0]})",
                file=sys.stderr,
            )
            raise SystemExit(1)
    report = json.loads(ended[1])
    if usage_file is not None:
        usage = job_server.usage_report(report, resource.getrusage(resource.RUSAGE_SELF))
        with contextlib.suppress(OSError):
            usage_file.parent.mkdir(parents=True, exist_ok=True)
            usage_file.write_text(json.dumps(usage))
    _exit_like(report["status"])
