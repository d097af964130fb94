# spectragrid: raw spectra -> clean Parquet -> folds -> trained grid ->
# label issues -> grid on cleaned labels -> result sheets -> summary page.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/label_issues.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/summary.html",
        "results/summary.csv",
