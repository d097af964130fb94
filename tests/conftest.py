"""Fixtures shared by every test folder."""

import pytest
from tiny_study import Workdir, tiny_config


@pytest.fixture(scope="session")
def finished_tiny_study(tmp_path_factory) -> Workdir:
    """The tiny study run to completion once, shared by the workflow tests."""
    work = Workdir(tmp_path_factory.mktemp("study"))
    work.write_config(tiny_config())
    work.snakemake()
    return work
