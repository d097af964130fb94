# The K folds of one fold group, in the run's warm
# interpreter where it has one (spectragrid.core.job_server).
from spectragrid.core.job_client import run_job

run_job(snakemake, "spectragrid.train.train_job")
