"""Output of the commands over definitions: `validate` counts, `export` YAML, `rules` table."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from featurectl.core.model import KINDS, PLURAL
from featurectl.render.tables import TableView

if TYPE_CHECKING:
    from featurectl.core.definitions import Definitions


def _count(n: int, kind: str) -> str:
    noun = (kind if n == 1 else PLURAL[kind]).replace("_", " ")
    return f"{n} {noun}"


def validate_summary(defs: "Definitions") -> str:
    """Markup: `Valid: 1 entity, 2 sources, 3 feature views, 0 feature services.`"""
    counts = ", ".join(_count(len(defs.of_kind(k)), k) for k in KINDS)
    return f"[green]Valid:[/green] {counts}."


def canonical_yaml(data: Any) -> str:
    """YAML as `export` and `show` print it: keys in canonical order, text as it is."""
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def rules_table(rows: Sequence[dict[str, str]]) -> TableView:
    """Rule ids are never cut: on a narrow terminal the purpose wraps instead."""
    return TableView(("rule id", "bump", "applies to", "purpose"),
                     [(r["id"], r["bump"], r["applies_to"], r["purpose"]) for r in rows],
                     wrap=frozenset({"applies to", "purpose"}))
