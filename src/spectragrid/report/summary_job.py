"""The summary job (workflow rule `summary`): summary.html, the per-cell tables and the
review pages, from Snakemake's `snakemake` object.

Run by workflow/scripts/summary.py, cold or in the warm interpreter
(core.job_server), which imports this module, and with it pandas, scipy's
statistics and the page templates, while the cells train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spectragrid.core.joblog import job_log
from spectragrid.report.summary import build_report


def main(snakemake: Any) -> None:
    with job_log(snakemake.log[0]):
        build_report(
            metrics_paths=[Path(p) for p in snakemake.params.metrics],
            issues_paths=[Path(p) for p in snakemake.input.issues],
            cleaning_report_path=Path(snakemake.input.cleaning_report),
            truth_path=Path(snakemake.input.truth[0]) if snakemake.input.truth else None,
            columns=snakemake.params.columns,
            label_map=snakemake.params.label_map,
            config_hash=snakemake.params.config_hash,
            best_metric=snakemake.params.best_metric,
            significance=snakemake.params.significance,
            out_html=Path(snakemake.output.html),
            out_csv=Path(snakemake.output.csv),
            out_parquet=Path(snakemake.output.parquet),
            benchmark_paths=[Path(p) for p in snakemake.params.benchmarks],
            benchmarks_root=Path(snakemake.output.html).parent / "benchmarks",
            review_dir=Path(snakemake.output.files),
            clean_path=Path(snakemake.input.clean),
            channel_sets=snakemake.params.channel_sets,
            report_settings=snakemake.params.report_settings,
        )
