"""`python -m featurectl` runs the CLI."""
from featurectl.cli.main import main

main()
