"""Compile the C kernels on first use with the machine's C compiler, and load them with ctypes.

A kernel is compiled for the CPU it runs on (`-march=native`), once per source,
compiler and CPU: the library is cached under a name made from all three, so
cluster nodes of different kinds sharing a home directory each build their own.
It is written to a temporary name and renamed into place, so jobs starting
together never load a half-written file. The threads come from torch's OpenMP
runtime (already loaded, so the library binds to it), and follow
`torch.set_num_threads`; a torch built on another OpenMP runtime (Intel's)
leaves the kernels GNU's, whose idle threads may then compete with torch's:
set `SPECTRAGRID_NATIVE=0` there if training gets slower.

Nothing depends on a kernel: where there is no compiler, or the build or the
load fails, `load` warns once and returns None, and callers take the PyTorch
layers, which compute the same numbers. `SPECTRAGRID_NATIVE=0` turns the
kernels off; `SPECTRAGRID_CACHE` moves the cache (default
`$XDG_CACHE_HOME/spectragrid`, or `~/.cache/spectragrid`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

SOURCES = Path(__file__).resolve().parent
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu11")
BUILD_TIMEOUT_S = 120


def enabled() -> bool:
    """False when SPECTRAGRID_NATIVE is 0, off or false (read on every call, so a
    process can compare both paths)."""
    return os.environ.get("SPECTRAGRID_NATIVE", "1").strip().lower() not in {"0", "off", "false"}


def cache_dir() -> Path:
    if "SPECTRAGRID_CACHE" in os.environ:
        return Path(os.environ["SPECTRAGRID_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spectragrid"


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU's model and feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    keys = ("model name", "flags", "Features", "CPU part", "CPU implementer")
    return "\n".join(
        sorted({line for line in text.splitlines() if line.split(":")[0].strip() in keys})
    )


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc"))


@functools.cache
def _toolchain(compiler: str) -> bytes:
    """What a build depends on besides the sources: flags, compiler and CPU (read
    once per process, not once per kernel)."""
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    return "\0".join(
        (" ".join(FLAGS), compiler, version, platform.machine(), _cpu_signature())
    ).encode()


def library_path(name: str, compiler: str) -> Path:
    digest = hashlib.sha256()
    # the kernel and the headers it may include
    for part in (
        (SOURCES / f"{name}.c").read_bytes(),
        *(header.read_bytes() for header in sorted(SOURCES.glob("*.h"))),
        _toolchain(compiler),
    ):
        digest.update(part)
        digest.update(b"\0")
    return cache_dir() / "native" / f"{name}-{digest.hexdigest()[:16]}.so"


def build(name: str, compiler: str, target: Path) -> None:
    """Compile SOURCES/<name>.c into `target`, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{name}-", suffix=".so")
    os.close(fd)
    try:
        result = subprocess.run(
            [compiler, *FLAGS, "-o", partial, str(SOURCES / f"{name}.c")],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed on {name}.c:\n{result.stderr.strip()}")
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


@functools.cache
def load(name: str) -> ctypes.CDLL | None:
    """The compiled kernel library `name` (SOURCES/<name>.c), or None after one
    warning saying why not."""
    import torch  # noqa: F401  (its OpenMP runtime must be loaded first, for the library to bind to)

    compiler = _compiler()
    if compiler is None:
        warnings.warn(
            f"spectragrid: no C compiler ({os.environ.get('CC', 'cc')}) found; "
            f"the {name} kernel is off and PyTorch's operators are used instead",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    try:
        target = library_path(name, compiler)
        if not target.exists():
            build(name, compiler, target)
        return ctypes.CDLL(str(target))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        warnings.warn(
            f"spectragrid: the {name} kernel could not be built or loaded, so PyTorch's "
            f"operators are used instead: {error}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
