from pathlib import Path

from spectragrid.core import layout
from spectragrid.core.joblog import job_log
from spectragrid.issues.find import run_label_issues

w = snakemake.wildcards
# A source on the job's own channel set is named by its model alone.
sources = [m if c == w.channels else f"{m}/{c}" for m, c in snakemake.params.evidence]
with job_log(snakemake.log[0]) as log:
    issues = run_label_issues(
        # each raw cell's predictions, beside the metrics.json Snakemake tracks
        prediction_files=[
            Path(p).with_name(layout.CELL_FILES["predictions"]) for p in snakemake.input.metrics
        ],
        models=sources,
        k=int(w.k),
        target_spec=snakemake.params.target_spec,
        clean_path=Path(snakemake.input.clean),
        folds_path=Path(snakemake.input.folds),
        out_issues=Path(snakemake.output.issues),
        out_oof=Path(snakemake.output.oof),
        out_evidence=Path(snakemake.output.evidence),
        combine=snakemake.params.combine,
        filter_by=snakemake.params.filter_by,
        rank_by=snakemake.params.rank_by,
        min_examples_per_class=int(snakemake.params.min_examples_per_class),
        n_jobs=snakemake.threads,
        label_patch=[(str(i), str(v)) for i, v in snakemake.params.label_patch],
    )
    log.info(
        "%d label issues; evidence %s", len(issues), Path(snakemake.output.evidence).read_text()
    )
