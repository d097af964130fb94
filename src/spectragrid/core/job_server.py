"""A warm interpreter for a local run's many small jobs.

Snakemake starts a fresh Python for every `script:` job, and a training job
spends about 3 s importing torch and Lightning Fabric before its first cell,
ten times what a one-epoch cell of the demo takes to train. For a local run
the Snakefile therefore starts servers once (`start_for_run`, from its
`onstart:` handler), one per group of rules (SERVER_GROUPS): each imports
the modules of its rules' jobs the run will execute, then forks one child
per job. The job script Snakemake started (the
client, `job_client.run_job`) hands over its script's path and arguments,
working folder, environment and standard streams; the child runs that same
script (Snakemake's preamble unpickles the `snakemake` object, as in a cold
job), and the client waits and exits with the child's status, so Snakemake
sees the job as it would a cold one.

What keeps a job killable as Snakemake expects:
- the client forwards SIGTERM, SIGINT and SIGHUP to its child;
- when the client dies (SIGKILL from Snakemake or a user), its end of the
  connection closes and the server kills the child at once;
- the server never runs a job itself and starts no Python thread, so every
  fork is of a process that has not initialised torch's thread pool or CUDA.

The server lives as long as the Snakemake process that started it: when that
process ends it stops taking jobs, lets those still running finish (as cold
jobs would), and exits. A cluster run starts no server; neither does a run
that would not gain from one.

Imported by the Snakefile: only the standard library at module level.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import functools
import gc
import importlib
import json
import os
import random
import resource
import runpy
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The rules whose jobs a server runs warm, and the module of each job's body
# (`main(snakemake)`), which the server imports.
JOB_MODULES: dict[str, str] = {
    "train": "spectragrid.train.train_job",
    "sheet": "spectragrid.report.sheet_job",
    "summary": "spectragrid.report.summary_job",
}
# One server per group, each importing only its rules' modules: started together, they
# import on separate cores, and the first training job waits for torch and Fabric
# only, not for matplotlib too.
SERVER_GROUPS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "report": ("sheet", "summary"),
}
# Below this many jobs of a group, importing its modules in a server costs about
# what it saves.
MIN_JOBS = 2

# The folder of the run's servers' sockets (socket_path).
SOCKET_ENV = "SPECTRAGRID_JOB_SERVER"
# The interpreter the server runs: a job run by another one (a conda or container
# environment) runs cold.
PYTHON_ENV = "SPECTRAGRID_JOB_SERVER_PYTHON"

# Messages: one kind byte, then a length-prefixed JSON body (`send` / `receive`).
REQUEST = b"R"
STARTED = b"P"  # body: the child's pid
ENDED = b"E"  # body: wait status and the child's resource usage
SIGNAL = b"K"  # body: a signal number to forward
_HEADER = struct.Struct("!cI")
_STREAMS = (0, 1, 2)
# How often the server checks that the Snakemake process that started it still runs.
_PARENT_CHECK_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# What a client forwards to its job.
JOB_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
_PREAMBLE_MODULES = ("snakemake.script", "snakemake.logging", "snakemake.iocontainers")


def server_group(rule: str) -> str:
    """The server group whose server runs `rule`'s jobs."""
    return next(group for group, rules in SERVER_GROUPS.items() if rule in rules)


def socket_path(folder: Path, rule: str) -> Path:
    """Where the server of `rule`'s jobs listens, in the run's socket folder."""
    return _group_socket(Path(folder), server_group(rule))


def _group_socket(folder: Path, group: str) -> Path:
    return folder / f"{group}.socket"


def interpreter_identity() -> str:
    """The interpreter and environment a job must share with the server to use it."""
    return f"{os.path.realpath(sys.executable)}:{os.path.realpath(sys.prefix)}"


def send(sock: socket.socket, kind: bytes, body: bytes = b"", fds: Iterable[int] = ()) -> None:
    """One message; `fds` travel with its header (SCM_RIGHTS)."""
    header = _HEADER.pack(kind, len(body))
    fds = list(fds)
    if fds:
        sent = socket.send_fds(sock, [header], fds)
        if sent != len(header):
            sock.sendall(header[sent:])
    else:
        sock.sendall(header)
    sock.sendall(body)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[bytes, bytes, list[int]] | None:
    """(kind, body, fds) of the next message; None when the other end has closed."""
    if max_fds:
        data, fds, _, _ = socket.recv_fds(sock, _HEADER.size, max_fds)
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        rest = _read_exactly(sock, _HEADER.size - len(data)) if len(data) < _HEADER.size else b""
        if rest is None:
            return None
        data += rest
    else:
        fds = []
        data = _read_exactly(sock, _HEADER.size)
        if data is None:
            return None
    kind, size = _HEADER.unpack(data)
    body = _read_exactly(sock, size) if size else b""
    if body is None:
        return None
    return kind, body, fds


@dataclass
class _Job:
    pid: int
    conn: socket.socket
    # killed once its client is gone; reaped, it is forgotten
    killed: bool = False


class JobServer:
    """Accepts jobs on a Unix socket and runs each in a forked child."""

    def __init__(self, socket_path: Path, parent_pid: int, rules: Iterable[str]) -> None:
        self.socket_path = Path(socket_path)
        self.parent_pid = parent_pid
        self.modules = {rule: JOB_MODULES[rule] for rule in rules}
        self.jobs: dict[int, _Job] = {}
        self.closing = False
        self.stop_requested = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.socket_path))
        # Jobs that arrive while the modules load wait in the backlog.
        self.listener.listen(128)
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)

    def preload(self) -> None:
        # the module whose flag tells a job script it runs in a forked child, and what
        # Snakemake's preamble of every job script imports to unpickle `snakemake`
        for module in ("spectragrid.core.job_client", *_PREAMBLE_MODULES):
            importlib.import_module(module)
        for module in self.modules.values():
            warm_up = getattr(importlib.import_module(module), "warm_up", None)
            # what a job's first use would otherwise fill in every child
            if warm_up is not None:
                warm_up()
        # A fork copies the calling thread only. Native threads the libraries start at
        # import (torch's, pyarrow's jemalloc) are theirs to make fork-safe, as they
        # are for DataLoader workers and multiprocessing; a Python thread is not.
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            # CUDA cannot be used again in a forked child once its parent has set it up
            raise RuntimeError("the preloaded modules initialised CUDA")
        if threading.active_count() != 1:
            raise RuntimeError(
                f"the preloaded modules started {threading.active_count() - 1} thread(s)"
            )
        # The preloaded objects live as long as the server: out of the collector's
        # reach, a job's collections no longer walk them (about 400,000, a fifth of a
        # second each time) nor write to their pages, which the job shares with the
        # server until one of them writes there.
        gc.freeze()

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_write)
        # Ctrl-C reaches the whole process group: Snakemake and the clients act on it,
        # and the server ends with them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop_requested", True))
        while not (self.closing and not self.jobs):
            readable = [
                self.wake_read,
                *(job.conn for job in self.jobs.values() if not job.killed),
            ]
            if not self.closing:
                readable.append(self.listener)
            ready, _, _ = select.select(readable, [], [], _PARENT_CHECK_SECONDS)
            if self.wake_read in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_read, 512)
            self._reap()
            for job in list(self.jobs.values()):
                if job.conn in ready and not job.killed:
                    self._from_client(job)
            if self.listener in ready and not self.closing:
                self._accept()
            if self.stop_requested or os.getppid() != self.parent_pid:
                self._close()
        self._close()

    def _close(self) -> None:
        if not self.closing:
            self.closing = True
            self.listener.close()
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        # Only the user who started the run may hand it jobs.
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            conn.close()
            return
        message = receive(conn, max_fds=len(_STREAMS))
        if message is None or message[0] != REQUEST or len(message[2]) != len(_STREAMS):
            for fd in message[2] if message else ():
                os.close(fd)
            conn.close()
            return
        _, body, fds = message
        server = os.getpid()
        # Held until the child has its own handlers: a SIGTERM forwarded at once must not
        # reach the server's handler in the child.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, JOB_SIGNALS)
        _libc()  # loaded here, not in the child (_die_with_parent)
        pid = os.fork()
        if pid == 0:
            self._child(conn, body, fds, server, mask)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fd in fds:
            os.close(fd)
        self.jobs[pid] = _Job(pid, conn)
        send(conn, STARTED, struct.pack("!i", pid))

    def _from_client(self, job: _Job) -> None:
        try:
            message = receive(job.conn)
        except OSError:
            message = None
        if message is None:
            # The client is gone (killed): so is its job.
            job.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGKILL)
            return
        kind, body, _ = message
        if kind == SIGNAL:
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, struct.unpack("!i", body)[0])

    def _reap(self) -> None:
        while self.jobs:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            job = self.jobs.pop(pid, None)
            if job is None:
                continue
            report = json.dumps(
                {
                    "status": status,
                    "cpu_seconds": usage.ru_utime + usage.ru_stime,
                    "max_rss_mb": usage.ru_maxrss / 1024,
                }
            ).encode()
            with contextlib.suppress(OSError):
                send(job.conn, ENDED, report)
            job.conn.close()

    def _child(
        self, conn: socket.socket, body: bytes, fds: list[int], server: int, mask: set
    ) -> None:
        code = 1
        try:
            # Should the server die, its jobs die with it: their clients then fail the jobs,
            # and no orphan goes on writing outputs Snakemake is removing.
            _die_with_parent(server)
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for job in self.jobs.values():
                job.conn.close()
            self.listener.close()
            conn.close()
            os.close(self.wake_read)
            os.close(self.wake_write)
            for fd, stream in zip(fds, _STREAMS, strict=True):
                os.dup2(fd, stream)
                os.close(fd)
            request = json.loads(body)
            os.chdir(request["cwd"])
            os.umask(request["umask"])
            os.environ.clear()
            os.environ.update(request["environ"])
            sys.argv = list(request["argv"])
            _as_started_fresh(os.environ)
            # Fresh seeds, as a new process would have; the jobs seed what they compute.
            random.seed()
            # The script Snakemake started, preamble and all, as Python would run it: its
            # run_job then runs the job here (job_client.in_server_child).
            sys.modules["spectragrid.core.job_client"].in_server_child = True
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if not isinstance(stop.code, int | None):
                print(stop.code, file=sys.stderr)
        except BaseException:
            # The job's own hook (core.joblog) decides what the terminal sees.
            sys.excepthook(*sys.exc_info())
            code = 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def _as_started_fresh(environ: Mapping[str, str]) -> None:
    """What a fresh process reads from its environment once, at start-up, and the server
    read from its own: the temporary folder, and the thread counts Snakemake gives each
    job (OMP_NUM_THREADS and the BLAS ones, the rule's `threads`), which OpenMP and
    OpenBLAS took when the server imported them. A job must compute with the threads a
    cold one would: BLAS reductions split over more threads add in another order."""
    tempfile.tempdir = None
    threads = environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(threads))
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(int(threads))


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent: int) -> None:
    # _libc() was loaded before the fork: a dlopen in a child forked from a process with
    # threads can wait forever on a loader lock one of them held, and a child stuck before
    # this call would outlive its server and keep its client waiting.
    if _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # the server died before the call
        os._exit(1)


def rules_to_preload(needrun_rules: Iterable[str]) -> dict[str, list[str]]:
    """Per server group worth a warm interpreter (MIN_JOBS jobs or more of its rules
    among those to run), the rules among them that have jobs to run."""
    counts: dict[str, int] = {}
    for rule in needrun_rules:
        counts[rule] = counts.get(rule, 0) + 1
    servers = {}
    for group, rules in SERVER_GROUPS.items():
        if sum(counts.get(rule, 0) for rule in rules) >= MIN_JOBS:
            servers[group] = [rule for rule in rules if counts.get(rule, 0)]
    return servers


def start_for_run(workflow: Any, enabled: bool, log_path: Path) -> Path | None:
    """From the Snakefile's `onstart:`: start the servers of a local run's jobs (one per
    server group worth one) and tell the jobs where they listen (their environment):
    the folder of their sockets. None when the run gains nothing from a server:
    disabled, a cluster run, or too few jobs of any group."""
    if not enabled or not workflow.local_exec or workflow.touch:
        return None
    groups = rules_to_preload(job.rule.name for job in workflow.dag.needrun_jobs())
    if not groups:
        return None
    folder = Path(tempfile.mkdtemp(prefix="spectragrid-jobs-"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    servers = []
    with open(log_path, "w") as log:
        for group, rules in groups.items():
            path = _group_socket(folder, group)
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    __name__,
                    "--socket",
                    str(path),
                    "--parent",
                    str(os.getpid()),
                    *(f"--rule={rule}" for rule in rules),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            servers.append((path, process))
    # A job may start before its server has bound its socket: wait for them (a fraction
    # of a second; the imports come after). A server that did not bind leaves its jobs
    # cold.
    deadline = time.monotonic() + 10
    for path, process in servers:
        while not path.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if not path.exists():
            process.kill()

    def stop() -> None:
        for name in (SOCKET_ENV, PYTHON_ENV):
            os.environ.pop(name, None)
        for _, process in servers:
            if process.poll() is None:
                process.terminate()
        for _, process in servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    os.environ[SOCKET_ENV] = str(folder)
    os.environ[PYTHON_ENV] = interpreter_identity()
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--rule", action="append", choices=sorted(JOB_MODULES), default=[])
    args = parser.parse_args(argv)
    server = JobServer(args.socket, args.parent, args.rule)
    try:
        started = time.perf_counter()
        server.preload()
        print(
            f"job server: {', '.join(args.rule)} modules loaded in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
    except BaseException:
        # The jobs waiting in the backlog see the connection close and run cold.
        traceback.print_exc()
        server._close()
        raise SystemExit(1) from None
    server.serve()


def usage_report(report: Mapping[str, float], own: resource.struct_rusage) -> dict[str, float]:
    """The job's CPU seconds and peak memory: its child's and the client's own."""
    return {
        "cpu_seconds": report["cpu_seconds"] + own.ru_utime + own.ru_stime,
        "max_rss_mb": max(report["max_rss_mb"], own.ru_maxrss / 1024),
    }


if __name__ == "__main__":
    main()
