REPORT = CONFIG["report"]
REPORT_CUTOFF = {
    "rule": "youden_product",
    "recall": 0.95,
    "precision": 0.95,
    **REPORT.get("cutoff", {}),
}
# None: the default cost table of domain.md §5, kept in spectragrid.report.business_cost.
REPORT_COSTS = REPORT.get("costs")
# Built once: planning a large grid must not rebuild these lists per input.
SUMMARY_CELL_DIRS = cell_dirs()
SUMMARY_ISSUES_DIRS = issues_dirs()
SUMMARY_BENCHMARKS = (
    [
        f"results/benchmarks/{d[len('results/'):]}/{job}.tsv"
        for d in SUMMARY_CELL_DIRS
        for job in ("train", "sheet")
    ]
    + [
        f"results/benchmarks/{d[len('results/'):]}/label_issues.tsv"
        for d in SUMMARY_ISSUES_DIRS
    ]
    + [f"results/benchmarks/{DATASET}/ingest.tsv"]
    + [f"results/benchmarks/{DATASET}/split_s{seed}_k{K}.tsv" for seed in SEEDS]
    + (["results/benchmarks/demo_data.tsv"] if IS_DEMO else [])
)
SHEET_LABELS = {
    "model": "{model}",
    "labels": "{labels}",
    "seed": "{seed}",
    "fold": "{fold}",
}


rule sheet:
    input:
        predictions=f"{layout.CELL_DIR}/predictions.parquet",
        metrics=f"{layout.CELL_DIR}/metrics.json",
        history=f"{layout.CELL_DIR}/history.csv",
        card=f"{layout.CELL_DIR}/card.json",
    output:
        png=report(
            f"{layout.CELL_DIR}/sheet.png",
            caption="../report/sheet.rst",
            category="{target}",
            subcategory="{channels}",
            labels={**SHEET_LABELS, "format": "PNG"},
        ),
        html=report(
            f"{layout.CELL_DIR}/sheet.html",
            caption="../report/sheet.rst",
            category="{target}",
            subcategory="{channels}",
            labels={**SHEET_LABELS, "format": "HTML"},
        ),
    log:
        f"results/logs/{layout.CELL_KEY}/sheet.log",
    benchmark:
        f"results/benchmarks/{layout.CELL_KEY}/sheet.tsv"
    group:
        "sheets"
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 1000 * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    params:
        cutoff=REPORT_CUTOFF,
        costs=REPORT_COSTS,
    script:
        "../scripts/sheet.py"


rule summary:
    input:
        metrics=[f"{d}/metrics.json" for d in SUMMARY_CELL_DIRS],
        predictions=[f"{d}/predictions.parquet" for d in SUMMARY_CELL_DIRS],
        cards=[f"{d}/card.json" for d in SUMMARY_CELL_DIRS],
        sheets=[f"{d}/sheet.png" for d in SUMMARY_CELL_DIRS],
        sheets_html=[f"{d}/sheet.html" for d in SUMMARY_CELL_DIRS],
        issues=[f"{d}/issues.csv" for d in SUMMARY_ISSUES_DIRS],
        benchmarks=SUMMARY_BENCHMARKS,
        cleaning_report=f"results/{DATASET}/cleaning_report.json",
        clean=f"results/{DATASET}/clean.parquet",
        truth=[TRUTH] if TRUTH else [],
    output:
        html=report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"file": "summary page"},
        ),
        csv=report(
            "results/summary.csv",
            caption="../report/summary_table.rst",
            category="Summary",
            labels={"file": "one row per cell (CSV)"},
        ),
        parquet="results/summary.parquet",
        files=report(
            directory("results/summary_files"),
            patterns=["{name}.html"],
            caption="../report/review.rst",
            category="Label issues",
            labels={"file": "{name}"},
        ),
    log:
        "results/logs/summary.log",
    benchmark:
        "results/benchmarks/summary.tsv"
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        best_metric=REPORT["best_metric"],
        dataset=DATASET,
        columns=CONFIG["dataset"]["columns"],
        label_map=CONFIG["dataset"]["label_map"],
        config_hash=config_hash(CONFIG),
        channel_sets={
            name: CONFIG["channel_sets"][name] for name in GRID["channel_sets"]
        },
        report_settings={
            "best_metric": REPORT["best_metric"],
            "cutoff": REPORT_CUTOFF,
            "costs": REPORT_COSTS,
        },
    script:
        "../scripts/summary.py"
