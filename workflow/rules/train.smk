rule train:
    input:
        unpack(get_train_inputs),
    # The K folds of one model x target x channel set x seed in one job: the
    # process start-up and imports are paid once for K cells. Each fold keeps
    # its own folder, outputs and resumable state. Snakemake tracks each fold's
    # metrics.json, which records the checksums of the cell's other files.
    output:
        **fold_group_files(layout.CELL_TRACKED_FILES),
    log:
        layout.log_file(layout.fold_group_key(K), "train"),
    benchmark:
        layout.benchmark_file(layout.fold_group_key(K), "train")
    conda:
        "../envs/train.yaml"
    threads: CONFIG["resources"]["train_threads"]
    resources:
        mem_mb=get_train_mem_mb(
            CONFIG["resources"]["train_mem_mb"],
            CONFIG["resources"]["train_mem_per_data_mb"],
        ),
        runtime=get_runtime(CONFIG["resources"]["train_runtime"]),
        # No GPU request here, so the rule runs on any cluster; the gpu and
        # slurm-gpu profiles set it to 1.
        gpu=0,
        # One of the run's gpu_slots: resources.gpu_slots per visible GPU in a
        # local run, each job on the least occupied card (train/gpu_slots.py).
        gpu_slots=1,
    params:
        cell=get_cell_params,
        label_patch=get_label_patch,
        k=K,
    script:
        "../scripts/train.py"
