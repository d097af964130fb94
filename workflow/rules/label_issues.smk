rule label_issues:
    input:
        predictions=label_issue_inputs,
        clean="results/{dataset}/clean.parquet",
        folds="results/{dataset}/splits/s{seed}_k{k}.parquet",
    output:
        issues=f"{layout.ISSUES_DIR}/issues.csv",
        oof=f"{layout.ISSUES_DIR}/oof.parquet",
    log:
        f"results/logs/{layout.ISSUES_KEY}/label_issues.log",
    benchmark:
        f"results/benchmarks/{layout.ISSUES_KEY}/label_issues.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=lambda wildcards, input, attempt: max(1000, 6 * input.size_mb) * attempt,
        runtime=lambda wildcards, attempt: 15 * attempt,
    params:
        models=CONFIG["label_issues"]["models"],
        target_spec=lambda wildcards: CONFIG["targets"][wildcards.target],
        filter_by=CONFIG["label_issues"]["filter_by"],
        rank_by=CONFIG["label_issues"]["rank_by"],
        min_examples_per_class=CONFIG["label_issues"]["min_examples_per_class"],
        label_patch=label_patch_params,
    script:
        "../scripts/label_issues.py"
