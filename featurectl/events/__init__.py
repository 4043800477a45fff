"""Events featurectl sends to other systems (OpenLineage)."""
