from pathlib import Path

from spectragrid.core.joblog import job_log
from spectragrid.data.demo_images import write_demo_images

demo = snakemake.params.demo
with job_log(snakemake.log[0]) as log:
    truth = write_demo_images(
        str(demo["kind"]),
        Path(snakemake.output.images),
        Path(snakemake.output.truth),
        # `in` on Snakemake's output list looks at the paths, not the names
        labels_path=Path(labels) if (labels := getattr(snakemake.output, "labels", None)) else None,
        n_samples=int(demo["n_samples"]),
        seed=int(demo["seed"]),
        noise_rate=float(demo["noise_rate"]),
        size=(int(snakemake.params.size[0]), int(snakemake.params.size[1])),
        id_column=str(snakemake.params.id_column),
        label_column=str(snakemake.params.label_column),
    )
    log.info("demo images: %d written to %s", len(truth), snakemake.output.images)
