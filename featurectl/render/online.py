"""`get-online` output: one JSON object per requested entity, or a table."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurectl.render.values import dumps, encode_columns, rows

if TYPE_CHECKING:
    from featurectl.app.retrieval import OnlineResult
    from featurectl.render.tables import TableView


def online_records(result: "OnlineResult") -> list[dict[str, Any]]:
    """SPEC §5: in request order, each entity's join keys and one key per feature (null where
    there is no value), every value JSON-ready."""
    return rows(encode_columns(result.columns, result.dtypes))


def online_json(result: "OnlineResult") -> str:
    return dumps(online_records(result))


def online_table(result: "OnlineResult") -> TableView:
    from featurectl.render.tables import TableView  # --format table only: JSON output needs none

    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    return TableView(tuple(result.columns),
                     [tuple(cell(v) for v in row) for row in zip(*result.columns.values())], boxed=True)
