from spectragrid.core.config import study_hash

# Built once: planning a large grid must not rebuild these lists per input.
SUMMARY_CELL_DIRS = cell_dirs()
SUMMARY_ISSUES_DIRS = issues_dirs()
SUMMARY_GROUP_KEYS = [
    layout.fold_group_key(K).format(
        dataset=DATASET,
        labels=labels,
        target=target,
        channels=channels,
        model=model,
        seed=seed,
    )
    for labels in LABEL_SETS
    for target in GRID["targets"]
    for channels in GRID["channel_sets"]
    for model in GRID["models"]
    for seed in SEEDS
]
SUMMARY_BENCHMARKS = (
    [
        layout.benchmark_file(key, job)
        for key in SUMMARY_GROUP_KEYS
        for job in ("train", "sheet")
    ]
    # the judges' training is part of the study's cost
    + [layout.benchmark_file(key, "train") for key in judge_group_keys()]
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


rule sheet:
    input:
        # one metrics.json of the fold group; a file of any fold changed
        # since its metrics.json reruns the sheet through
        # params.changed_cell_files, and the sheet checks every file against
        # its checksum
        unpack(get_sheet_inputs),
    # The K folds' sheets in one job, like their training: matplotlib is
    # imported once for K sheets.
    output:
        **sheet_outputs(),
    log:
        layout.log_file(layout.fold_group_key(K), "sheet"),
    benchmark:
        layout.benchmark_file(layout.fold_group_key(K), "sheet")
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=get_mem_mb(1000),
        runtime=get_runtime(10),
    params:
        cutoff=REPORT["cutoff"],
        costs=REPORT["costs"],
        k=K,
        changed_cell_files=get_changed_cell_files,
    script:
        "../scripts/sheet.py"


rule summary:
    input:
        # One file per sheet job stands for its K folds: the job writes every
        # fold's sheet and lists every fold's metrics.json, so a changed cell
        # reruns its sheet and the sheet reruns the summary. The metrics and
        # benchmark files the summary reads come through params. Planning time
        # grows with every file listed here (10,000 cells).
        sheets=[f"{d}/{layout.SHEET_FILES['html']}" for d in SUMMARY_CELL_DIRS[::K]],
        issues=[f"{d}/{layout.ISSUES_FILES['issues']}" for d in SUMMARY_ISSUES_DIRS],
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
        metrics=summary_inputs(SUMMARY_CELL_DIRS, "metrics"),
        benchmarks=SUMMARY_BENCHMARKS,
        best_metric=REPORT["best_metric"],
        significance=REPORT["significance"],
        dataset=DATASET,
        columns=CONFIG["dataset"]["columns"],
        label_map=CONFIG["dataset"]["label_map"],
        # the study's hash: the predict section changes nothing the summary shows
        config_hash=study_hash(CONFIG),
        channel_sets={
            name: CONFIG["channel_sets"][name] for name in GRID["channel_sets"]
        },
        report_settings={
            "best_metric": REPORT["best_metric"],
            "cutoff": REPORT["cutoff"],
            "costs": REPORT["costs"],
            "significance": REPORT["significance"],
        },
    script:
        "../scripts/summary.py"
