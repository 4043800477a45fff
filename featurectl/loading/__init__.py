"""From files on disk to the core model: featurectl.yaml and definition files."""
