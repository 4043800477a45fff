"""Problems found in user input, each naming where it is and how to fix it."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    kind: str | None = None
    name: str | None = None
    field: str | None = None
    hint: str | None = None
    line: int | None = None
    rule: str | None = None  # the policy outcome id, when one names this problem (DANGLING_REFERENCE)

    def text(self) -> str:
        """The message as shown to people: prefixed by its rule id, if any."""
        return f"{self.rule}: {self.message}" if self.rule else self.message

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.kind and self.name:
            parts.append(f"{self.kind} '{self.name}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)


class DefinitionError(Exception):
    """Invalid definitions or configuration (exit code 2). Carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.text() for p in problems))


class UsageError(Exception):
    """A bad argument: unknown name, malformed reference or timestamp (exit code 2).

    `code` says which kind of mistake it is, one of SPEC §8's error codes (the HTTP server
    answers it; the CLI shows the message)."""

    def __init__(self, message: str, hint: str | None = None, code: str = "BAD_REQUEST"):
        self.hint = hint
        self.code = code
        super().__init__(message)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the nearest known spelling of a mistyped name, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class DefinitionWarning(UserWarning):
    """Definitions that load but are probably not what the user meant (a pattern matching nothing)."""


class Interrupted(KeyboardInterrupt):
    """The user stopped the process (Ctrl-C, SIGTERM): raised by the CLI's signal handler, so
    that code running a user's file can tell it from a KeyboardInterrupt the file raised."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signum)
