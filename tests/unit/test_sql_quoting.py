"""One quoting for the SQL text every store builds (featurectl.core.sql)."""
from __future__ import annotations

import sqlite3

import duckdb
import pytest

from featurectl.core.sql import ident, literal

NAMES = ["plain", 'with "quotes"', "fc:rides:driver_stats:v1", "x'; DROP TABLE t; --", "ünï code"]


@pytest.mark.parametrize("name", NAMES)
def test_any_name_round_trips_as_one_identifier_and_one_string(name):
    for conn in (sqlite3.connect(":memory:"), duckdb.connect(":memory:")):
        conn.execute(f"CREATE TABLE {ident(name)} ({ident(name)} VARCHAR)")
        conn.execute(f"INSERT INTO {ident(name)} VALUES ({literal(name)})")
        assert conn.execute(f"SELECT {ident(name)} FROM {ident(name)}").fetchall() == [(name,)]
        conn.close()
