"""Dataset statistics for monitoring: inputs as DuckDB relations, the scans, p-values, profiles."""
