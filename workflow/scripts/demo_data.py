from pathlib import Path

from spectragrid.core.joblog import job_log
from spectragrid.data.demo import generate_demo

with job_log(snakemake.log[0]) as log:
    written = generate_demo(
        Path(snakemake.params.out_dir),
        n_samples=snakemake.params.n_samples,
        seed=snakemake.params.seed,
        noise_rate=snakemake.params.noise_rate,
    )
    log.info("demo data: %s", written)
