rule train:
    input:
        unpack(get_train_inputs),
    output:
        **cell_outputs(layout.CELL_DIR),
    log:
        layout.log_file(layout.CELL_KEY, "train"),
    benchmark:
        layout.benchmark_file(layout.CELL_KEY, "train")
    # One group per label set: clean cells wait for label_issues, which waits
    # for the raw cells, so one group for both would depend on itself.
    group:
        "cells_{labels}"
    conda:
        "../envs/train.yaml"
    threads: CONFIG["resources"]["train_threads"]
    resources:
        mem_mb=get_mem_mb(CONFIG["resources"]["train_mem_mb"]),
        runtime=get_runtime(CONFIG["resources"]["train_runtime"]),
        # No GPU request here, so the rule runs on any cluster; the gpu and
        # slurm-gpu profiles set it to 1.
        gpu=0,
        # The gpu profile's share of one card (4 small cells at a time).
        gpu_slots=1,
    params:
        cell=get_cell_params,
        label_patch=get_label_patch,
    script:
        "../scripts/train.py"
