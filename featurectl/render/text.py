"""Render results through jinja2 templates (text with rich markup, markdown)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from rich.markup import escape

from featurectl.core.model import VERSIONED
from featurectl.core.plan import Plan
from featurectl.formats.plan import plan_to_dict
from featurectl.render.symbols import COLOURS, SYMBOLS, item_action

TEMPLATES = Path(__file__).parent / "templates"


def _escape_markup(value: Any) -> str:
    return escape(str(value))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, undefined=StrictUndefined)
    env.filters["esc"] = _escape_markup
    env.globals.update(
        symbols=SYMBOLS, colours=COLOURS, versioned=VERSIONED,
        item_symbol=lambda item: SYMBOLS[item_action(item)], item_colour=lambda item: COLOURS[item_action(item)],
    )
    return env


def _base_label(data: dict[str, Any]) -> str:
    base = data["base"]
    return f"git ref {base['ref']}" if base["kind"] == "git" else f"registry revision {base['revision']}"


def apply_command(plan: Plan) -> str:
    """The command that applies this plan: a removal judged with --allow-removals needs it again."""
    removes = any(c.action == "remove" for c in plan.changes)
    return "featurectl apply --allow-removals" if plan.allow_removals and removes else "featurectl apply"


def render_plan(plan: Plan, fmt: str, mode: str = "plan") -> str:
    """'text' (rich markup) or 'markdown'; mode 'apply' words the verdict for an apply."""
    data = plan_to_dict(plan)
    template = "plan.txt.j2" if fmt == "text" else "plan.md.j2"
    return environment().get_template(template).render(plan=data, s=data["summary"], base_label=_base_label(data),
                                                         mode=mode, apply_command=apply_command(plan))
