"""Snakemake's `spectragrid` logger: the rich logger plugin's live progress, with counts and
the time left.

`snakemake --logger spectragrid` (the `cpu` and `gpu` profiles set it) shows
one progress bar for the whole run and one per rule, each with the jobs done
and to do, the time spent and an estimate of the time left, instead of a
block of text per job. The estimate is the pace of the jobs finished in the
last half hour, so it steadies once a few training cells have finished.
Everything else (job errors, the log paths, the job summary) is the rich
plugin's (snakemake-logger-plugin-rich).

Snakemake finds logger plugins by their top-level module name
(`snakemake_logger_plugin_<name>`), hence this small package beside
`spectragrid`.
"""

from __future__ import annotations

from rich.progress import MofNCompleteColumn, TextColumn, TimeRemainingColumn
from snakemake_logger_plugin_rich import LogHandler as RichLogHandler

__all__ = ["LogHandler"]

# Seconds of finished jobs the time-left estimate averages over: training cells take
# minutes, so a short window would swing with every cell.
PACE_WINDOW_S = 1800.0


class LogHandler(RichLogHandler):
    def __post_init__(self) -> None:
        super().__post_init__()
        columns = list(self.progress.columns)
        # after the bar and its percentage: "12/40", then "elapsed", then "left"
        at = next(
            (
                i + 1
                for i, c in enumerate(columns)
                if "percentage" in str(getattr(c, "text_format", ""))
            ),
            len(columns),
        )
        columns[at:at] = [MofNCompleteColumn()]
        columns += [TextColumn("left"), TimeRemainingColumn()]
        self.progress.columns = tuple(columns)
        self.progress.speed_estimate_period = PACE_WINDOW_S
