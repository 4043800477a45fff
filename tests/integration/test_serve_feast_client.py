"""Feast's own `remote` online store (Feast 0.67 in its own virtual environment, as in bench/)
reads featurectl's served values and writes through /write-to-online-store."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.feature_server import FeatureServer, ServingRepo
from tests.fixtures.servers import server_missing

pytestmark = pytest.mark.xdist_group("serve")

ROOT = Path(__file__).resolve().parents[2]
FEAST_PYTHON = ROOT / "bench" / ".venv-feast" / "bin" / "python"


@pytest.fixture(scope="session")
def feast_python() -> Path:
    """bench/.venv-feast, built once when missing (bench/setup_feast.sh is idempotent)."""
    build = subprocess.run(["bash", str(ROOT / "bench" / "setup_feast.sh")], capture_output=True, text=True,
                           timeout=1800)
    if build.returncode != 0 or not FEAST_PYTHON.exists():
        server_missing(f"Feast 0.67 in bench/.venv-feast (setup_feast.sh: {build.stderr[-500:]})")
    return FEAST_PYTHON


def test_feasts_remote_online_store_reads_and_writes_featurectl(feast_python, tmp_path):
    repo = ServingRepo.served(tmp_path / "repo")
    with FeatureServer(repo.root) as server:
        run = subprocess.run(
            [str(feast_python), str(ROOT / "tests" / "feast" / "remote_client.py"), "--url",
             f"http://127.0.0.1:{server.port}", "--work", str(tmp_path / "feast"),
             "--source", str(repo.root / "data" / "stats.parquet")],
            capture_output=True, text=True, timeout=600, env={**os.environ, "FEAST_USAGE": "False"})
        assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    read = answer["read"]
    assert read["driver_id"] == [1, 2, 3, 5]
    for i, driver in enumerate([1, 2, 3, 5]):
        row = repo.latest("stats", (driver,))
        expected = (None, None, None) if row is None else (row["conv_rate"], row["trips"], row["label"])
        got = (read["conv_rate"][i], read["trips"][i], read["label"][i])
        assert got[1:] == expected[1:], driver
        assert (got[0] is None) == (expected[0] is None) and (got[0] is None or abs(got[0] - expected[0]) < 1e-6)
    assert answer["written"] == {"driver_id": [7], "conv_rate": [0.25], "trips": [77], "label": ["pushed"]}
