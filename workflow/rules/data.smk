if IS_DEMO:

    rule demo_data:
        output:
            raw=layout.demo_raw_files(),
            truth=layout.demo_truth_file(),
        log:
            layout.log_file("", "demo_data"),
        benchmark:
            layout.benchmark_file("", "demo_data")
        conda:
            "../envs/data.yaml"
        resources:
            mem_mb=get_mem_mb(1000),
            runtime=get_runtime(10),
        params:
            out_dir=get_demo_dir,
            n_samples=CONFIG["dataset"]["demo"]["n_samples"],
            seed=CONFIG["dataset"]["demo"]["seed"],
            noise_rate=CONFIG["dataset"]["demo"]["noise_rate"],
        script:
            "../scripts/demo_data.py"


# A checkpoint so that a label patch can be matched against the ingested labels
# when the cells' parameters are worked out.
checkpoint ingest:
    input:
        raw=ancient(RAW_FILES),
    output:
        parquet=layout.CLEAN_FILE,
        report=layout.CLEANING_REPORT,
        dropped=layout.DROPPED_FILE,
    log:
        layout.log_file(layout.DATASET_KEY, "ingest"),
    benchmark:
        layout.benchmark_file(layout.DATASET_KEY, "ingest")
    conda:
        "../envs/data.yaml"
    # Unpickled DataFrames and their float32 copy peak at several times the files.
    resources:
        mem_mb=get_mem_mb_by_input(8),
        runtime=get_runtime(30),
    # dataset.images only for an image data set: a spectral ingest keeps its params.
    params:
        **({"images": IMAGES} if IMAGES else {}),
        columns=CONFIG["dataset"]["columns"],
        channels=CONFIG["dataset"]["channels"],
        label_map=CONFIG["dataset"]["label_map"],
        saturation=CONFIG["cleaning"]["saturation"],
        min_integral=CONFIG["cleaning"]["min_integral"],
        raw_sha256=RAW_SHA256,
        # the cleaning report's notices say which labels k folds cannot spread
        k=K,
        grouped=CONFIG["splits"]["grouped"],
    script:
        "../scripts/ingest.py"


rule split:
    input:
        clean=layout.CLEAN_FILE,
    output:
        folds=layout.FOLDS_FILE,
    log:
        layout.log_file(layout.DATASET_KEY, layout.SPLIT_JOB),
    benchmark:
        layout.benchmark_file(layout.DATASET_KEY, layout.SPLIT_JOB)
    conda:
        "../envs/data.yaml"
    resources:
        mem_mb=get_mem_mb_by_input(4),
        runtime=get_runtime(10),
    params:
        grouped=CONFIG["splits"]["grouped"],
        # the data set's own train/val/test folders as the one fold (k = 1)
        given=CONFIG["splits"]["given"],
    script:
        "../scripts/split.py"
