"""Send a job's output to its Snakemake log file while keeping errors visible."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType


@contextlib.contextmanager
def job_log(path: str | Path | None) -> Iterator[logging.Logger]:
    """Log to `path`; on failure write the traceback there and the message to stderr."""
    logger = logging.getLogger("spectragrid")
    logger.setLevel(logging.INFO)
    if path is None:
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        try:
            with contextlib.redirect_stdout(stream):
                yield logger
        # SystemExit too: a library that exits (a command-line tool run by mistake)
        # must not end the job without a word of why.
        except (Exception, SystemExit) as err:
            traceback.print_exc(file=stream)
            print(f"spectragrid: {type(err).__name__}: {err}", file=sys.stderr)
            _no_second_traceback(err)
            raise
        finally:
            logger.removeHandler(handler)


def _no_second_traceback(err: BaseException) -> None:
    """Should `err` end the process, Python prints no traceback of it on the terminal.

    The log has the traceback and stderr the one line; a job script that
    dies of the error still exits with status 1, so Snakemake sees it fail.
    Any other uncaught error keeps Python's usual report.
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if value is not err:
            previous(kind, value, tb)

    sys.excepthook = hook
