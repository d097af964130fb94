from pathlib import Path

from spectragrid.core import layout
from spectragrid.core.joblog import job_log
from spectragrid.report.sheet import build_sheet

with job_log(snakemake.log[0]):
    for fold in range(snakemake.params.k):
        # the input lists metrics.json alone while no other file changed after it
        folder = Path(snakemake.input[layout.fold_output_name("metrics", fold)]).parent

        def cell_file(name, folder=folder):
            return folder / layout.CELL_FILES[name]

        build_sheet(
            predictions_path=cell_file("predictions"),
            metrics_path=cell_file("metrics"),
            history_path=cell_file("history"),
            card_path=cell_file("card"),
            out_png=Path(snakemake.output[layout.fold_output_name("png", fold)]),
            out_html=Path(snakemake.output[layout.fold_output_name("html", fold)]),
            cutoff=snakemake.params.cutoff,
            costs=snakemake.params.costs,
        )
