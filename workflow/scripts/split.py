from pathlib import Path

from spectragrid.core.joblog import job_log
from spectragrid.data.splits import split_clean_file

with job_log(snakemake.log[0]):
    split_clean_file(
        Path(snakemake.input.clean),
        Path(snakemake.output.folds),
        seed=int(snakemake.wildcards.seed),
        k=int(snakemake.wildcards.k),
        grouped=bool(snakemake.params.grouped),
        given=bool(snakemake.params.given),
    )
