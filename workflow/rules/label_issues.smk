rule label_issues:
    input:
        metrics=get_label_issue_inputs,
        clean=layout.CLEAN_FILE,
        folds=layout.FOLDS_FILE,
    output:
        **{
            name: f"{layout.ISSUES_DIR}/{file}"
            for name, file in layout.ISSUES_FILES.items()
        },
    log:
        layout.log_file(layout.ISSUES_KEY, "label_issues"),
    benchmark:
        layout.benchmark_file(layout.ISSUES_KEY, "label_issues")
    conda:
        "../envs/train.yaml"
    resources:
        mem_mb=get_mem_mb_by_input(6),
        runtime=get_runtime(15),
    params:
        evidence=get_evidence,
        combine=CONFIG["label_issues"]["combine"],
        target_spec=get_target_spec,
        filter_by=CONFIG["label_issues"]["filter_by"],
        rank_by=CONFIG["label_issues"]["rank_by"],
        min_examples_per_class=CONFIG["label_issues"]["min_examples_per_class"],
        label_patch=get_label_patch,
    script:
        "../scripts/label_issues.py"
