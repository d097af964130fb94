# Built once: planning a large grid must not rebuild these lists per input.
SUMMARY_CELL_DIRS = cell_dirs()
SUMMARY_ISSUES_DIRS = issues_dirs()
SUMMARY_BENCHMARKS = (
    [
        layout.benchmark_file(layout.results_key(d), job)
        for d in SUMMARY_CELL_DIRS
        for job in ("train", "sheet")
    ]
    + [
        layout.benchmark_file(layout.results_key(d), "label_issues")
        for d in SUMMARY_ISSUES_DIRS
    ]
    + [layout.benchmark_file(DATASET, "ingest")]
    + [
        layout.benchmark_file(DATASET, layout.SPLIT_JOB.format(seed=seed, k=K))
        for seed in SEEDS
    ]
    + ([layout.benchmark_file("", "demo_data")] if IS_DEMO else [])
)
SHEET_LABELS = {
    "model": "{model}",
    "labels": "{labels}",
    "seed": "{seed}",
    "fold": "{fold}",
}


rule sheet:
    input:
        **{
            name: f"{layout.CELL_DIR}/{layout.CELL_FILES[name]}"
            # all of a cell's files, so that a changed model or ONNX file
            # reruns the sheet, which checks them against their checksums
            for name in layout.CELL_FILES
        },
    output:
        png=report(
            f"{layout.CELL_DIR}/{layout.SHEET_FILES['png']}",
            caption="../report/sheet.rst",
            category="{target}",
            subcategory="{channels}",
            labels={**SHEET_LABELS, "format": "PNG"},
        ),
        html=report(
            f"{layout.CELL_DIR}/{layout.SHEET_FILES['html']}",
            caption="../report/sheet.rst",
            category="{target}",
            subcategory="{channels}",
            labels={**SHEET_LABELS, "format": "HTML"},
        ),
    log:
        layout.log_file(layout.CELL_KEY, "sheet"),
    benchmark:
        layout.benchmark_file(layout.CELL_KEY, "sheet")
    group:
        "sheets"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=get_mem_mb(1000),
        runtime=get_runtime(10),
    params:
        cutoff=REPORT["cutoff"],
        costs=REPORT["costs"],
    script:
        "../scripts/sheet.py"


rule summary:
    input:
        metrics=summary_inputs(SUMMARY_CELL_DIRS, "metrics"),
        predictions=summary_inputs(SUMMARY_CELL_DIRS, "predictions"),
        cards=summary_inputs(SUMMARY_CELL_DIRS, "card"),
        sheets=[f"{d}/{layout.SHEET_FILES['png']}" for d in SUMMARY_CELL_DIRS],
        sheets_html=[f"{d}/{layout.SHEET_FILES['html']}" for d in SUMMARY_CELL_DIRS],
        issues=[f"{d}/{layout.ISSUES_FILES['issues']}" for d in SUMMARY_ISSUES_DIRS],
        benchmarks=SUMMARY_BENCHMARKS,
        cleaning_report=layout.cleaning_report(DATASET),
        clean=layout.clean_file(DATASET),
        truth=[TRUTH] if TRUTH else [],
    output:
        html=report(
            layout.SUMMARY_HTML,
            caption="../report/summary.rst",
            category="Summary",
            labels={"file": "summary page"},
        ),
        csv=report(
            layout.SUMMARY_CSV,
            caption="../report/summary_table.rst",
            category="Summary",
            labels={"file": "one row per cell (CSV)"},
        ),
        parquet=layout.SUMMARY_PARQUET,
        files=report(
            directory(layout.SUMMARY_FILES),
            patterns=["{name}.html"],
            caption="../report/review.rst",
            category="Label issues",
            labels={"file": "{name}"},
        ),
    log:
        layout.log_file("", "summary"),
    benchmark:
        layout.benchmark_file("", "summary")
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=get_mem_mb(2000),
        runtime=get_runtime(30),
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
            "cutoff": REPORT["cutoff"],
            "costs": REPORT["costs"],
        },
    script:
        "../scripts/summary.py"
