"""Fixtures shared by every test folder."""

import shutil

import pytest
from filelock import FileLock
from tiny_study import Workdir, shared_temp, tiny_config

FINISHED_MARK = "finished"


@pytest.fixture(scope="session")
def finished_tiny_study(tmp_path_factory) -> Workdir:
    """The tiny study run to completion once per test session, shared by the workflow tests.

    Under pytest-xdist every worker is a session of its own; the first to need the
    study builds it in the folder above the workers' temporary folders while the
    others wait on a file lock, so a parallel run builds it once, not once per
    worker. A build that failed half-way is started again from nothing.
    """
    shared = shared_temp(tmp_path_factory)
    path = shared / "finished-tiny-study"
    with FileLock(str(shared / "finished-tiny-study.lock")):
        if (path / FINISHED_MARK).is_file():
            return Workdir.existing(path)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        work = Workdir(path)
        work.write_config(tiny_config())
        work.snakemake()
        (path / FINISHED_MARK).touch()
        return work
