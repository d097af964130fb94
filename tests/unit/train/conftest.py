import pytest
from cell_cases import prepare


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """The small demo dataset, ingested and split (shared by every test that trains a cell)."""
    return prepare(tmp_path_factory.mktemp("cell"))
