import json
from pathlib import Path

import pandas as pd

from spectragrid.joblog import job_log
from spectragrid.sheet import render_sheet

with job_log(snakemake.log[0]):
    metrics = json.loads(Path(snakemake.input.metrics).read_text())
    render_sheet(
        pd.read_parquet(snakemake.input.predictions),
        metrics["target"]["classes"],
        metrics["display_name"],
        Path(snakemake.output.sheet),
        history=pd.read_csv(snakemake.input.history),
    )
