if IS_DEMO:

    rule demo_data:
        output:
            raw=layout.demo_raw_files(),
            truth=f"{layout.DEMO_DIR}/truth.csv",
        log:
            "results/logs/demo_data.log",
        benchmark:
            "results/benchmarks/demo_data.tsv"
        group:
            "data"
        conda:
            "../../envs/data.yaml"
        resources:
            mem_mb=lambda wildcards, attempt: 1000 * attempt,
            runtime=lambda wildcards, attempt: 10 * attempt,
        params:
            out_dir=lambda wildcards, output: str(Path(output.truth).parent),
            n_samples=CONFIG["dataset"]["demo"]["n_samples"],
            seed=CONFIG["dataset"]["demo"]["seed"],
            noise_rate=CONFIG["dataset"]["demo"]["noise_rate"],
        script:
            "../scripts/demo_data.py"


# A checkpoint so that a label patch can be matched against the ingested labels
# when the cells' parameters are worked out.
checkpoint ingest:
    input:
        raw=RAW_FILES,
    output:
        parquet="results/{dataset}/clean.parquet",
        report="results/{dataset}/cleaning_report.json",
        dropped="results/{dataset}/dropped.csv",
    log:
        "results/logs/{dataset}/ingest.log",
    benchmark:
        "results/benchmarks/{dataset}/ingest.tsv"
    group:
        "data"
    conda:
        "../../envs/data.yaml"
    # Unpickled DataFrames and their float32 copy peak at several times the files.
    resources:
        mem_mb=lambda wildcards, input, attempt: max(1000, 8 * input.size_mb) * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        columns=CONFIG["dataset"]["columns"],
        channels=CONFIG["dataset"]["channels"],
        label_map=CONFIG["dataset"]["label_map"],
        saturation=CONFIG["cleaning"]["saturation"],
        min_integral=CONFIG["cleaning"]["min_integral"],
    script:
        "../scripts/ingest.py"


rule split:
    input:
        clean="results/{dataset}/clean.parquet",
    output:
        folds="results/{dataset}/splits/s{seed}_k{k}.parquet",
    log:
        "results/logs/{dataset}/split_s{seed}_k{k}.log",
    benchmark:
        "results/benchmarks/{dataset}/split_s{seed}_k{k}.tsv"
    group:
        "data"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=lambda wildcards, input, attempt: max(1000, 4 * input.size_mb) * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    params:
        grouped=CONFIG["splits"]["grouped"],
    script:
        "../scripts/split.py"
