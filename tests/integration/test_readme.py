"""The README's quickstart, run as a new user runs it: its commands, read from the README, in
a fresh directory; the output it shows must be the output they get, to the character."""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from tests.fixtures.repos import run_featurectl

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_blocks() -> dict[str, str]:
    """The first bash, json and python blocks of the Quickstart section."""
    section = README.read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, str] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S):
        blocks.setdefault(lang, body)
    assert {"bash", "json", "python"} <= blocks.keys(), "the Quickstart lost one of its blocks"
    return blocks


def run_shell_block(block: str, cwd: Path) -> str:
    """Run each `featurectl ...` and `cd DIR` of the block (set-up steps such as `make install`
    are the test environment's job); return the last command's stdout."""
    last = ""
    for line in block.splitlines():
        for step in line.split("#", 1)[0].split("&&"):
            words = shlex.split(step)
            if words[:1] == ["cd"]:
                cwd = cwd / words[1]
            elif words[:1] == ["featurectl"]:
                result = run_featurectl(*words[1:], cwd=cwd)
                assert result.code == 0, f"README step {step.strip()!r} failed:\n{result.output}"
                last = result.stdout
    return last


@pytest.mark.slow
def test_the_quickstart_shows_what_a_user_gets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = quickstart_blocks()
    assert run_shell_block(blocks["bash"], tmp_path).strip() == blocks["json"].strip()

    monkeypatch.chdir(tmp_path)  # the Python snippet runs beside the new repository
    snippet = blocks["python"]
    lines, namespace, checked = snippet.splitlines(), {}, 0
    for stmt in ast.parse(snippet).body:
        source = ast.get_source_segment(snippet, stmt)
        shown = lines[stmt.end_lineno] if stmt.end_lineno < len(lines) else ""
        if isinstance(stmt, ast.Expr) and shown.startswith("# "):  # the README shows this value
            value = eval(source, namespace)
            assert repr(value) == shown[2:], f"README shows {shown[2:]} for {source}, a user gets {value!r}"
            checked += 1
        else:
            exec(source, namespace)
    namespace["store"].close()
    assert checked >= 2, "the Python snippet shows no values to check"
