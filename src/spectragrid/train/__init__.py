"""One grid cell: models, the training loop, export and records (the train rule)."""
