"""The `featurectl` command: typer app, exit-code mapping, and the entry point."""
from __future__ import annotations

import functools
import gc
import inspect
import os
import sys
import traceback
import warnings
from typing import Annotated

import typer

from featurectl.cli import output, signals
from featurectl.cli.options import DebugOpt, RepoOpt
from featurectl.cli.output import Output, route_warnings
from featurectl.core.errors import DefinitionWarning

app = typer.Typer(
    name="featurectl",
    help="Feature definitions as code: plan, version-check, apply, materialize and serve ML features.\n\n"
         "Exit codes: 0 success; 1 refused by the rules (violations, stale plan, invalid data); "
         "2 bad input (definitions, config, names, usage); 3 a store failed; "
         "plan --detailed-exitcode adds 4 (patch/minor changes) and 5 (includes a major change).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich markup would eat help text such as "[a-z][a-z0-9_]*" and show a
    # "<bool>" value column beside every flag.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)

EXIT_REFUSED, EXIT_INPUT, EXIT_STORE = 1, 2, 3
# --repo/--debug given before the command, set by the app callback that runs before every command.
_before_command: dict[str, object] = {}


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version
        output.print_raw(f"featurectl {version('featurectl')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    repo: RepoOpt = None,
    debug: DebugOpt = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """--repo and --debug may come before the command too: `featurectl --repo X list`."""
    _before_command.clear()
    _before_command.update(repo=repo, debug=debug)


# The commands each module under featurectl/cli defines (they attach to `app` when imported), in
# help order: the workflow first (init, validate, plan, apply), then data, then reads. A run of
# a known command imports its module only: registering them all cost ~5 ms of a `get-online`.
# tests/integration/test_cli_errors_newer.py checks this table against what the modules define.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "definitions": ("init", "validate", "export", "schema", "rules"),
    "planning": ("plan", "apply"),
    "data": ("materialize", "materialize-incremental", "get-online", "get-historical", "prune"),
    "registry": ("list", "show", "history"),
    "monitoring": ("drift", "profile", "freshness"),
    "catalog": ("lineage", "docs"),
    "serve": ("serve",),
}


def _register_commands(name: str | None = None) -> None:
    """Import the module of command `name`; every module when `name` is None or no known
    command (help, a mistyped name: all are listed or suggested)."""
    import importlib

    modules = [m for m, names in COMMAND_MODULES.items() if name in names] or list(COMMAND_MODULES)
    for module in modules:
        importlib.import_module(f"featurectl.cli.{module}")


def _invoked_command(argv: list[str]) -> str | None:
    """The command word of a command line (after the global --repo X / --debug), or None when
    there is none or an option comes first that only the whole app knows (--help, --version)."""
    args = iter(argv)
    for arg in args:
        if arg == "--debug":
            continue
        if arg == "--repo":
            next(args, None)
            continue
        if arg.startswith("--repo="):
            continue
        return None if arg.startswith("-") else arg
    return None


def _keep_only_invoked_command(argv: list[str]) -> None:
    """Keep only the command being run: typer builds every registered command's parameters
    from its signature before parsing (a tenth of a `get-online` process), and one is used.
    Help, a mistyped name or no command keep them all, so that they are listed or suggested."""
    name = _invoked_command(argv)
    mine = [c for c in app.registered_commands
            if (c.name or typer.main.get_command_name(c.callback.__name__)) == name]  # type: ignore[union-attr]
    if len(mine) == 1:
        app.registered_commands = mine


def exit_code_for(exc: BaseException, ui: Output) -> int:
    """Report an exception to the user and choose the exit code of SPEC §4."""
    from featurectl.app.errors import MaterializationFailed, PlanRefused
    from featurectl.core.errors import DefinitionError, UsageError
    from featurectl.offline.base import InvalidSourceData, OfflineStoreError, SourceDataError
    from featurectl.online.base import OnlineStoreError
    from featurectl.registry.base import RegistryError, StaleRevision
    from featurectl.render import errors

    if isinstance(exc, DefinitionError):
        ui.problems(exc.problems)
        return EXIT_INPUT
    if isinstance(exc, UsageError):
        ui.error(str(exc), exc.hint)
        return EXIT_INPUT
    if isinstance(exc, PlanRefused):
        ui.error(str(exc))
        return EXIT_REFUSED
    if isinstance(exc, StaleRevision):  # app.planning words its own; this is for any other committer
        ui.error(*errors.stale_plan(exc))
        return EXIT_REFUSED
    if isinstance(exc, MaterializationFailed):
        ui.error(str(exc))
        return EXIT_STORE if exc.store_failure else EXIT_INPUT if exc.bad_input else EXIT_REFUSED
    if isinstance(exc, SourceDataError):
        ui.error(errors.nothing_written(str(exc)))
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


def failure_exit_code(exc: BaseException, debug: bool, ui: Output) -> int:
    """Report a command's failure; --debug adds the traceback and keeps the exit code.
    A signal that stopped the command wins over the error it caused on its way out."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    signum = signals.received()
    if signum is not None:
        ui.error(signals.NAMES[signum])
        return 128 + signum
    return exit_code_for(exc, ui)


def _with_global_options(kw: dict) -> dict:
    """Fill --repo/--debug the command was not given from the ones before the command."""
    for name, value in _before_command.items():
        if name in kw and not kw[name] and value:
            kw[name] = value
    return kw


_default_showwarning = warnings.showwarning


def _show_warning(message, category, *args, **kwargs) -> None:
    """Definition warnings are for the user: one line on stderr, like the errors."""
    if issubclass(category, DefinitionWarning):
        output.err().print(f"[yellow]warning:[/yellow] {output.escape(message)}")
    else:
        _default_showwarning(message, category, *args, **kwargs)


def command(*args, **kwargs):
    """app.command, with the command's failures reported and mapped to exit codes.
    A command returns its exit code. A command that takes a `ui` parameter gets the Output
    made for this invocation (typer never sees it)."""
    def decorate(fn):
        signature = inspect.signature(fn, eval_str=True)  # typer reads the Annotated options
        wants_ui = "ui" in signature.parameters

        @functools.wraps(fn)
        def run(*a, **kw):
            ui = Output()
            kw = _with_global_options(kw)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("default", DefinitionWarning)
                    warnings.showwarning = _show_warning
                    code = fn(*a, ui=ui, **kw) if wants_ui else fn(*a, **kw)
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except BaseException as exc:  # KeyboardInterrupt too: Ctrl-C is one line and 130
                code = failure_exit_code(exc, bool(kw.get("debug")), ui)
            if code:
                raise typer.Exit(code)
        if wants_ui:
            run.__signature__ = signature.replace(
                parameters=[p for p in signature.parameters.values() if p.name != "ui"])
        return app.command(*args, **kwargs)(run)
    return decorate


# Allocations between collections of the youngest generation in a command that ends when its
# work is done (all but `serve`; Python's default is 700). Such a process keeps what its imports
# make (typer, numpy, pyarrow, DuckDB's module: ~76k objects at the end of a `get-historical`)
# until it exits, and the collector walked them again and again while they were made: after
# this point a `get-historical` process ran 71 young, 6 middle and 1 full collection; all its
# collections took 50-88 ms of CPU on the shared machine, 27-34 ms now (docs/benchmarks.md).
# Cycles are still collected, every 100,000 allocations. (`import featurectl` comes before.)
ONE_SHOT_GC_THRESHOLD = 100_000


def _set_up_process(argv: list[str]) -> None:
    """Settings of the CLI's own process, before anything heavy is imported. numpy's OpenBLAS
    starts a thread per further core when numpy is imported (pyarrow imports it), which spins
    waiting for work featurectl never gives it (no BLAS routine is called): 25-45 ms of CPU of
    a `get-historical` process, taken from DuckDB's threads as the join starts. It runs on the
    calling thread alone unless the user sets OPENBLAS_NUM_THREADS.

    A one-shot command also loads no pydantic plugin unless the user sets
    PYDANTIC_DISABLE_PLUGINS: pydantic's plugin loader otherwise reads the entry points of every
    installed distribution when the first model is built (~17M instructions, ~2% of a
    `get-online` process; docs/decisions.md). `serve` keeps the plugins a user installed."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if _invoked_command(argv) != "serve":  # a server runs for days: Python's default suits it
        gc.set_threshold(ONE_SHOT_GC_THRESHOLD, *gc.get_threshold()[1:])
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def main() -> None:
    _set_up_process(sys.argv[1:])
    signals.install()
    _register_commands(_invoked_command(sys.argv[1:]))
    _keep_only_invoked_command(sys.argv[1:])
    route_warnings()
    try:
        app(prog_name="featurectl")
    finally:
        # The command is done (its stores closed, its output written): what is left is the
        # interpreter's shutdown, whose garbage collections traverse every object the imports
        # made (pydantic's schemas, redis-py, typer): ~45 ms of a 0.25 s `get-online`
        # (docs/benchmarks.md). Frozen objects are not traversed; reference counting still
        # frees them, and atexit handlers (weakref.finalize, logging) still run.
        gc.freeze()
