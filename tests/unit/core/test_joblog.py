"""A job's log gets the traceback; the terminal gets one line naming what went wrong."""

import logging

import pytest

from spectragrid.core.joblog import job_log


def test_messages_go_to_the_log_file(tmp_path):
    log = tmp_path / "logs" / "job.log"
    with job_log(log) as logger:
        logger.info("kept %d rows", 12)
        logging.getLogger("spectragrid.data.ingest").info("from a module")
    text = log.read_text()
    assert "kept 12 rows" in text and "from a module" in text


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (ValueError("raw/a.pkl: no such file"), "spectragrid: ValueError: raw/a.pkl: no such file"),
        (SystemExit("a tool exited"), "spectragrid: SystemExit: a tool exited"),
    ],
)
def test_an_error_is_one_line_on_stderr_and_a_traceback_in_the_log(tmp_path, capsys, error, line):
    log = tmp_path / "job.log"
    with pytest.raises(type(error)), job_log(log):
        raise error
    assert capsys.readouterr().err.strip() == line
    assert "Traceback (most recent call last)" in log.read_text()
    # the handler is gone: later messages do not reach the closed file
    assert not any(
        getattr(h, "stream", None) and getattr(h.stream, "name", "") == str(log)
        for h in logging.getLogger("spectragrid").handlers
    )
