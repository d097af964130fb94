rule sheet:
    input:
        predictions=f"{layout.CELL_DIR}/predictions.parquet",
        metrics=f"{layout.CELL_DIR}/metrics.json",
        history=f"{layout.CELL_DIR}/history.csv",
    output:
        sheet=f"{layout.CELL_DIR}/sheet.png",
    log:
        f"results/logs/{layout.CELL_KEY}/sheet.log",
    benchmark:
        f"results/benchmarks/{layout.CELL_KEY}/sheet.tsv"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/sheet.py"


rule summary:
    input:
        metrics=[f"{d}/metrics.json" for d in cell_dirs()],
        predictions=[f"{d}/predictions.parquet" for d in cell_dirs()],
        cards=[f"{d}/card.json" for d in cell_dirs()],
        sheets=[f"{d}/sheet.png" for d in cell_dirs()],
        issues=[f"{d}/issues.csv" for d in issues_dirs()],
        cleaning_report=f"results/{DATASET}/cleaning_report.json",
        truth=[TRUTH] if TRUTH else [],
    output:
        html="results/summary.html",
        csv="results/summary.csv",
        parquet="results/summary.parquet",
    log:
        "results/logs/summary.log",
    benchmark:
        "results/benchmarks/summary.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        best_metric=CONFIG["report"]["best_metric"],
        dataset=DATASET,
        columns=CONFIG["dataset"]["columns"],
        label_map=CONFIG["dataset"]["label_map"],
        config_hash=config_hash(CONFIG),
    script:
        "../scripts/summary.py"
