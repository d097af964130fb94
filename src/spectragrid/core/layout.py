"""Where every output lives. Imported by the Snakefile, so it stays import-light."""

from __future__ import annotations

DEMO_DIR = "resources/demo"
DEMO_CAMPAIGNS = ("campaign_2023_SA3-01", "campaign_2024_SA3-02")

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*"

# Keys are relative to results/, results/logs/ and results/benchmarks/ alike.
CELL_KEY = "{dataset}/cells/{labels}/{target}/{channels}/{model}/s{seed}/f{fold}of{k}"
CELL_DIR = f"results/{CELL_KEY}"
# In the order of spectragrid.train.cell.CellOutputs.
CELL_FILES = (
    "model.ckpt",
    "model.onnx",
    "predictions.parquet",
    "metrics.json",
    "history.csv",
    "card.json",
)
ISSUES_KEY = "{dataset}/label_issues/{target}/{channels}/s{seed}/k{k}"
ISSUES_DIR = f"results/{ISSUES_KEY}"
# A training cell's resumable state: no declared output, since Snakemake deletes
# the outputs of a failed job, and removed by the cell once it completes.
RESUME_FILE = f"results/.resume/{CELL_KEY}/last.ckpt"


def demo_raw_files(demo_dir: str = DEMO_DIR) -> list[str]:
    return [f"{demo_dir}/raw/{name}.pkl" for name in DEMO_CAMPAIGNS]
