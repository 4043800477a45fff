"""The `featurectl` command: typer app, exit-code mapping, and the entry point."""
from __future__ import annotations

import functools
import inspect

import typer

from featurectl.cli.output import Output

app = typer.Typer(
    name="featurectl",
    help="Feature definitions as code: plan, version-check, apply, materialize and serve ML features.\n\n"
         "Exit codes: 0 success; 1 refused by the rules (violations, stale plan, invalid data); "
         "2 bad input (definitions, config, names, usage); 3 a store failed; "
         "plan --detailed-exitcode adds 4 (patch/minor changes) and 5 (includes a major change).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_REFUSED, EXIT_INPUT, EXIT_STORE = 1, 2, 3


def _register_commands() -> None:
    # Import order is help order: the workflow first (init, validate, plan, apply), then data, then reads.
    from featurectl.cli import definitions, planning, data, registry, monitoring  # noqa: F401,I001  (commands attach to app)


def exit_code_for(exc: BaseException, ui: Output) -> int:
    """Report an exception to the user and choose the exit code of SPEC §4."""
    from featurectl.app.errors import MaterializationFailed, PlanRefused
    from featurectl.core.errors import DefinitionError, UsageError
    from featurectl.offline.base import InvalidSourceData, OfflineStoreError, SourceDataError
    from featurectl.online.base import OnlineStoreError
    from featurectl.registry.base import RegistryError, StaleRevision

    if isinstance(exc, DefinitionError):
        ui.problems(exc.problems)
        return EXIT_INPUT
    if isinstance(exc, UsageError):
        ui.error(str(exc), exc.hint)
        return EXIT_INPUT
    if isinstance(exc, PlanRefused):
        ui.error(str(exc))
        return EXIT_REFUSED
    if isinstance(exc, StaleRevision):
        ui.error(f"STALE_PLAN: {exc}", "make the plan again")
        return EXIT_REFUSED
    if isinstance(exc, MaterializationFailed):
        ui.error(str(exc))
        return EXIT_STORE if exc.store_failure else EXIT_INPUT if exc.bad_input else EXIT_REFUSED
    if isinstance(exc, SourceDataError):
        ui.error(f"{exc} Nothing was written.")
        return EXIT_INPUT
    if isinstance(exc, InvalidSourceData):
        ui.error(str(exc))
        return EXIT_REFUSED
    if isinstance(exc, (RegistryError, OnlineStoreError, OfflineStoreError)):
        ui.error(str(exc))
        return EXIT_STORE
    if isinstance(exc, KeyboardInterrupt):
        ui.error("interrupted")
        return 130
    ui.error(f"unexpected {type(exc).__name__}: {exc}",
                        "rerun with --debug for the traceback, and report it if it persists")
    return EXIT_STORE


def command(*args, **kwargs):
    """app.command, with the command's failures reported and mapped to exit codes.
    A command returns its exit code; --debug lets the traceback through. A command that
    takes a `ui` parameter gets the Output made for this invocation (typer never sees it)."""
    def decorate(fn):
        signature = inspect.signature(fn, eval_str=True)  # typer reads the Annotated options
        wants_ui = "ui" in signature.parameters

        @functools.wraps(fn)
        def run(*a, **kw):
            ui = Output()
            try:
                code = fn(*a, ui=ui, **kw) if wants_ui else fn(*a, **kw)
            except (typer.Exit, typer.Abort):
                raise
            except Exception as exc:
                if kw.get("debug"):
                    raise
                code = exit_code_for(exc, ui)
            except KeyboardInterrupt as exc:
                code = exit_code_for(exc, ui)
            if code:
                raise typer.Exit(code)
        if wants_ui:
            run.__signature__ = signature.replace(
                parameters=[p for p in signature.parameters.values() if p.name != "ui"])
        return app.command(*args, **kwargs)(run)
    return decorate


def main() -> None:
    _register_commands()
    app(prog_name="featurectl")
