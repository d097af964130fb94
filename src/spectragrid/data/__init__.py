"""Raw files to clean Parquet, folds, targets and label patches (the data rules)."""
