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
    conda:
        "../../envs/train.yaml"
    threads: CONFIG["resources"]["train_threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu_slots=1,
    params:
        cell=cell_params,
        label_patch=label_patch_params,
    script:
        "../scripts/train.py"
