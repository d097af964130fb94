# The generated demo images (dataset.images.demo): the image folder, its label
# file (label_file layout) and the truth file, where the config says they are.
if IMAGES and IMAGES.get("demo"):

    rule demo_images:
        output:
            **({"labels": IMAGES["labels"]} if IMAGES.get("labels") else {}),
            images=directory(IMAGES["folder"]),
            truth=TRUTH,
        log:
            layout.log_file("", "demo_images"),
        benchmark:
            layout.benchmark_file("", "demo_images")
        conda:
            "../envs/data.yaml"
        resources:
            mem_mb=get_mem_mb(1000),
            runtime=get_runtime(10),
        params:
            demo=IMAGES["demo"],
            size=IMAGES["size"],
            id_column=CONFIG["dataset"]["columns"]["id"],
            label_column=CONFIG["dataset"]["columns"]["label"],
        script:
            "../scripts/demo_images.py"
