from pathlib import Path

from spectragrid.demo import generate_demo
from spectragrid.joblog import job_log

with job_log(snakemake.log[0]) as log:
    written = generate_demo(
        Path(snakemake.params.out_dir),
        n_samples=snakemake.params.n_samples,
        seed=snakemake.params.seed,
        noise_rate=snakemake.params.noise_rate,
    )
    log.info("demo data: %s", written)
