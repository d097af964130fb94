from pathlib import Path

from spectragrid.core.joblog import job_log
from spectragrid.data.ingest import run_ingest

with job_log(snakemake.log[0]) as log:
    if snakemake.params.get("images"):
        # An image data set (dataset.images): spectragrid.data.image_ingest.
        from spectragrid.data.image_ingest import run_image_ingest

        report = run_image_ingest(
            Path(snakemake.output.parquet),
            Path(snakemake.output.report),
            Path(snakemake.output.dropped),
            dict(snakemake.params.images),
            dict(snakemake.params.columns),
            dict(snakemake.params.label_map),
            k=int(snakemake.params.k),
        )
    else:
        report = run_ingest(
            [Path(p) for p in snakemake.input.raw],
            out_parquet=Path(snakemake.output.parquet),
            out_report=Path(snakemake.output.report),
            out_dropped=Path(snakemake.output.dropped),
            columns=snakemake.params.columns,
            channels=list(snakemake.params.channels),
            label_map=dict(snakemake.params.label_map),
            saturation=dict(snakemake.params.saturation),
            min_integral=dict(snakemake.params.min_integral),
            k=int(snakemake.params.k),
            grouped=bool(snakemake.params.grouped),
        )
    log.info(
        "kept %s of %s rows; dropped %s", report["kept"], report["input_rows"], report["dropped"]
    )
