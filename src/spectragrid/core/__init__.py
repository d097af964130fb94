"""What every stage shares: config, results layout, metrics, atomic writes, job log."""
