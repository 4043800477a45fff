"""The one home of the Terraform-style change symbols and their colours."""
from __future__ import annotations

from typing import Any

SYMBOLS = {"add": "+", "update": "~", "remove": "-"}
COLOURS = {"add": "green", "update": "yellow", "remove": "red"}


def item_action(item: dict[str, Any]) -> str:
    """A plan item's action from its old/new values: added, removed, or changed in place."""
    if item["old"] is None and item["new"] is not None:
        return "add"
    if item["new"] is None and item["old"] is not None:
        return "remove"
    return "update"
