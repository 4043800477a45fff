"""What `featurectl serve` hands its worker processes in the environment. A module of names
only: server/run.py reads them without importing the app, so the process that serves as the
only worker (one worker) imports prometheus-client after PROMETHEUS_MULTIPROC_DIR is set; the
library picks its value storage (memory or files) at import."""
from __future__ import annotations

REPO_ENV = "FEATURECTL_SERVE_REPO"
LOG_ENV = "FEATURECTL_SERVE_LOG_FEATURES"
# The Unix socket of the server's feature-log writer process (set by `featurectl serve`).
LOG_SOCKET_ENV = "FEATURECTL_SERVE_LOG_SOCKET"
# A worker's feature-log buffer bound in bytes (docs/serving.md); beyond it rows are dropped and counted.
LOG_BUFFER_ENV = "FEATURECTL_SERVE_LOG_BUFFER_BYTES"
# Feature-log rolling (docs/serving.md): a file per view is closed at this many bytes or seconds.
ROLL_BYTES_ENV, ROLL_SECONDS_ENV = "FEATURECTL_SERVE_LOG_ROLL_BYTES", "FEATURECTL_SERVE_LOG_ROLL_SECONDS"
# The CPU time slice a worker asks the kernel for, in microseconds (server/scheduling.py); 0: the kernel's.
SLICE_ENV = "FEATURECTL_SERVE_SLICE_US"
