# Using the trained models (docs/serving.md): the model serving each target, and
# the scores of each batch of new raw files. No rule here is part of `rule all`:
# `snakemake results/predictions/<batch>.parquet` asks for one batch.
from pathlib import Path

from spectragrid.core import layout
from spectragrid.data.fingerprints import content_digests
from spectragrid.serve.choice import (
    PredictConfigError,
    batch_files,
    batch_tracked_files,
    choice_params,
    served_choices,
    served_model_inputs,
)

try:
    SERVED = served_choices(CONFIG)
except PredictConfigError as err:
    raise WorkflowError(str(err)) from None
PREDICT = CONFIG["predict"]
# Batch files are tracked by content like the study's raw files (common.smk); an image
# study's batch folder by the content of every image under it.
BATCH_SHA256 = {
    batch: content_digests(
        batch_tracked_files(CONFIG, batch), Path(layout.RAW_DIGEST_CACHE)
    )
    for batch in PREDICT["batches"]
}


rule serve_model:
    input:
        unpack(lambda wildcards: served_model_inputs(CONFIG, SERVED[wildcards.target])),
    output:
        **{
            name: f"{layout.SERVED_DIR}/{file}"
            for name, file in layout.SERVED_FILES.items()
        },
    log:
        layout.log_file(layout.SERVED_KEY, "serve_model"),
    benchmark:
        layout.benchmark_file(layout.SERVED_KEY, "serve_model")
    wildcard_constraints:
        target="|".join(SERVED) or "$^",
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=get_mem_mb(2000),
        runtime=get_runtime(10),
    params:
        choice=lambda wildcards: choice_params(SERVED[wildcards.target]),
        dataset=DATASET,
        best_metric=REPORT["best_metric"],
        cutoff=REPORT["cutoff"],
    script:
        "../scripts/serve_model.py"


rule predict:
    input:
        raw=lambda wildcards: ancient(batch_files(CONFIG, wildcards.batch)),
        models=[layout.served_file(target, "onnx") for target in SERVED],
    output:
        **layout.PREDICTION_FILES,
    log:
        layout.log_file("predictions", "{batch}"),
    benchmark:
        layout.benchmark_file("predictions", "{batch}")
    wildcard_constraints:
        batch="|".join(PREDICT["batches"]) or "$^",
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=get_mem_mb_by_input(8),
        runtime=get_runtime(30),
    params:
        targets=list(SERVED),
        columns=CONFIG["dataset"]["columns"],
        saturation=CONFIG["cleaning"]["saturation"],
        min_integral=CONFIG["cleaning"]["min_integral"],
        raw_sha256=lambda wildcards: BATCH_SHA256[wildcards.batch],
    script:
        "../scripts/predict.py"
