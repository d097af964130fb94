from pathlib import Path

from spectragrid.core import layout
from spectragrid.core.joblog import job_log
from spectragrid.train.cell import CellOutputs, CellSpec, run_cell

w = snakemake.wildcards
p = snakemake.params.cell
with job_log(snakemake.log[0]) as log:
    spec = CellSpec(
        dataset=w.dataset,
        labels=w.labels,
        target=w.target,
        target_spec=p["target_spec"],
        channels_name=w.channels,
        channels=list(p["channels"]),
        model=w.model,
        arch=p["arch"],
        model_params=dict(p["model_params"]),
        train=dict(p["train"]),
        tabular=list(p["tabular"]),
        transforms=dict(p["transforms"]),
        preprocessing=list(p["preprocessing"]),
        action=p["action"],
        downweight=p["downweight"],
        label_patch=tuple((str(i), str(v)) for i, v in snakemake.params.label_patch),
        seed=int(w.seed),
        fold=int(w.fold),
        k=int(w.k),
    )
    out = snakemake.output
    metrics = run_cell(
        spec,
        clean_path=Path(snakemake.input.clean),
        folds_path=Path(snakemake.input.folds),
        issues_path=Path(snakemake.input.issues) if w.labels == "clean" else None,
        out=CellOutputs(
            checkpoint=Path(out.checkpoint),
            onnx=Path(out.onnx),
            predictions=Path(out.predictions),
            metrics=Path(out.metrics),
            history=Path(out.history),
            card=Path(out.card),
        ),
        threads=snakemake.threads,
        resume_path=Path(layout.resume_file(dict(w.items()))),
        curves_dir=Path(layout.curves_dir(dict(w.items()))),
        lock_path=Path(layout.lock_file(dict(w.items()))),
    )
    log.info("%s: test %s", metrics["display_name"], metrics["test"])
