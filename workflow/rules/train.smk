def train_inputs(wildcards):
    inputs = {
        "clean": f"results/{wildcards.dataset}/clean.parquet",
        "folds": f"results/{wildcards.dataset}/splits/s{wildcards.seed}_k{wildcards.k}.parquet",
    }
    if wildcards.labels == "clean":
        issues_dir = layout.ISSUES_DIR.format(**wildcards)
        inputs["issues"] = f"{issues_dir}/issues.csv"
    return inputs


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
    params:
        cell=cell_params,
    threads: CONFIG["resources"]["train_threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu_slots=1,
    log:
        f"results/logs/{layout.CELL_KEY}/train.log",
    benchmark:
        f"results/benchmarks/{layout.CELL_KEY}/train.tsv"
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train.py"
