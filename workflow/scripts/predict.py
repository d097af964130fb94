from pathlib import Path

from spectragrid.core.joblog import job_log
from spectragrid.serve.scoring import predict_batch

with job_log(snakemake.log[0]):
    predict_batch(
        raw_files=[Path(p) for p in snakemake.input.raw],
        model_paths=dict(zip(snakemake.params.targets, snakemake.input.models, strict=True)),
        columns=snakemake.params.columns,
        saturation=snakemake.params.saturation,
        min_integral=snakemake.params.min_integral,
        out_parquet=Path(snakemake.output.parquet),
        out_csv=Path(snakemake.output.csv),
        threads=snakemake.threads,
    )
