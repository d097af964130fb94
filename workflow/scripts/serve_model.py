from pathlib import Path

from spectragrid.core.joblog import job_log
from spectragrid.serve.served import build_served_model

with job_log(snakemake.log[0]):
    build_served_model(
        target=snakemake.wildcards.target,
        choice=snakemake.params.choice,
        cell_dirs=[str(Path(p).parent) for p in snakemake.input.metrics],
        clean_path=Path(snakemake.input.clean[0]),
        # only `best` reads the summary table
        summary_path=next((Path(p) for p in snakemake.input.summary), None),
        dataset=snakemake.params.dataset,
        best_metric=snakemake.params.best_metric,
        cutoff=snakemake.params.cutoff,
        out_onnx=Path(snakemake.output.onnx),
        out_card=Path(snakemake.output.card),
    )
