from pathlib import Path

from spectragrid.core.joblog import job_log
from spectragrid.report.sheet import build_sheet

with job_log(snakemake.log[0]):
    build_sheet(
        predictions_path=Path(snakemake.input.predictions),
        metrics_path=Path(snakemake.input.metrics),
        history_path=Path(snakemake.input.history),
        card_path=Path(snakemake.input.card),
        out_png=Path(snakemake.output.png),
        out_html=Path(snakemake.output.html),
        cutoff=snakemake.params.cutoff,
        costs=snakemake.params.costs,
    )
