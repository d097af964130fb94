rule train:
    input:
        unpack(train_inputs),
    output:
        checkpoint=f"{layout.CELL_DIR}/model.ckpt",
        onnx=f"{layout.CELL_DIR}/model.onnx",
        predictions=f"{layout.CELL_DIR}/predictions.parquet",
        metrics=f"{layout.CELL_DIR}/metrics.json",
        history=f"{layout.CELL_DIR}/history.csv",
        card=f"{layout.CELL_DIR}/card.json",
    log:
        f"results/logs/{layout.CELL_KEY}/train.log",
    benchmark:
        f"results/benchmarks/{layout.CELL_KEY}/train.tsv"
    # One group per label set: clean cells wait for label_issues, which waits
    # for the raw cells, so one group for both would depend on itself.
    group:
        "cells_{labels}"
    conda:
        "../../envs/train.yaml"
    threads: CONFIG["resources"]["train_threads"]
    resources:
        mem_mb=lambda wildcards, attempt: CONFIG["resources"]["train_mem_mb"] * attempt,
        runtime=lambda wildcards, attempt: CONFIG["resources"]["train_runtime"]
        * attempt,
        # No GPU request here, so the rule runs on any cluster; the gpu and
        # slurm-gpu profiles set it to 1.
        gpu=0,
        # The gpu profile's share of one card (4 small cells at a time).
        gpu_slots=1,
    params:
        cell=cell_params,
        label_patch=label_patch_params,
    script:
        "../scripts/train.py"
