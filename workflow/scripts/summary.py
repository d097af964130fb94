# The summary page and tables, in the run's warm
# interpreter where it has one (spectragrid.core.job_server).
from spectragrid.core.job_client import run_job

run_job(snakemake, "spectragrid.report.summary_job")
