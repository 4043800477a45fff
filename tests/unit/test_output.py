"""The CLI's Output is made per invocation and can be handed other consoles (an embedding
such as a server redirects it); tables keep their whole columns whole; one output-name rule."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from featurectl.cli.main import exit_code_for
from featurectl.cli.output import Output, escape
from featurectl.core.errors import UsageError
from featurectl.core.naming import check_output_names, output_name
from featurectl.render.tables import TableView


def captured(width: int = 80) -> tuple[Output, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Output(Console(file=out, width=width), Console(file=err, width=width)), out, err


def test_an_injected_output_receives_text_raw_tables_and_errors():
    ui, out, err = captured()
    ui.print("[bold]hello[/bold] " + escape("[x]"))
    ui.text("[red]kept as text[/red] :smile:")
    ui.raw('{"a": 1}')
    ui.table(TableView(("id", "purpose"), [("SOME_VERY_LONG_RULE_IDENTIFIER", "x " * 60)], wrap=frozenset({"purpose"})))
    assert exit_code_for(UsageError("bad flag", hint="use --good"), ui) == 2
    text = out.getvalue()
    assert "hello [x]" in text and "[red]kept as text[/red] :smile:" in text and '{"a": 1}\n' in text
    assert "SOME_VERY_LONG_RULE_IDENTIFIER" in text and all(len(line) <= 80 for line in text.splitlines())
    assert "error: bad flag" in err.getvalue() and "hint: use --good" in err.getvalue()


def test_two_outputs_are_independent():
    (a, a_out, _), (_, b_out, _) = captured(), captured()
    a.text("only a")
    assert "only a" in a_out.getvalue() and b_out.getvalue() == ""


def test_a_table_wider_than_the_terminal_runs_past_it_rather_than_cut_a_whole_column():
    ui, out, _ = captured(width=30)
    ui.table(TableView(("rule id", "purpose"), [("FEATURE_CONSTRAINT_TIGHTENED_TOO", "wraps here")],
                       wrap=frozenset({"purpose"})))
    assert "FEATURE_CONSTRAINT_TIGHTENED_TOO" in out.getvalue() and "…" not in out.getvalue()


def test_output_names_and_their_one_collision_check():
    assert output_name("v", "f", False) == "f" and output_name("v", "f", True) == "v__f"
    check_output_names([("a", "x", "x"), ("b", "y", "y")], reserved=["id"])
    with pytest.raises(UsageError, match="output column 'x' of b:x collides with a:x") as err:
        check_output_names([("a", "x", "x"), ("b", "x", "x")])
    assert "--full-feature-names" in (err.value.hint or "")
    with pytest.raises(UsageError, match="collides with an entity-row column") as err:
        check_output_names([("a", "x", "a__x")], reserved=["a__x"], full_feature_names=True)
    assert "rename the entity-row column 'a__x'" in (err.value.hint or "")


def test_the_transitional_module_helpers_keep_no_console_between_calls():
    from featurectl.cli import output

    assert output.out() is not output.out() and output.err() is not output.err()


def test_a_stale_revision_reaching_the_cli_is_worded_by_the_stale_plan_outcome():
    from featurectl.core.outcomes import STALE_PLAN
    from featurectl.registry.base import StaleRevision

    ui, _, err = captured(width=200)
    assert exit_code_for(StaleRevision(3, 5), ui) == 1
    expected = STALE_PLAN.message(plan="the plan", made=3, now=5, fix="make the plan again")
    assert f"error: STALE_PLAN: {expected}" in err.getvalue() and "hint: make the plan again" in err.getvalue()
