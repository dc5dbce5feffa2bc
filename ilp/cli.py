"""The `ilp` command: a thin entry point that dispatches to each command group's module (`ilp.commands`).

This module owns what every command shares: the global options (--log-format, --debug) and how typed errors become
exit codes and one clear line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from foundation import logs
from foundation.errors import ConfigError, IlpError, exit_codes_text
from ilp.commands import consortium, demo, operations, stages

_debug = False  # set by `run()` from --debug, which may appear anywhere on the command line

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Multicentre FHIR data integration for isolated limb perfusion (ILP) in limb sarcoma.",
                  epilog=f"Exit codes: {exit_codes_text()}. Add --debug anywhere for a traceback.")

COMMANDS: dict[str, Callable[..., None]] = {  # in the order --help lists them
    "dictionary": operations.dictionary_command,
    "synth": demo.synth_command,
    "demo": demo.demo_command,
    "ingest": stages.ingest_command,
    "transform": stages.transform_command,
    "validate": stages.validate_command,
    "analyse": stages.analyse_command,
    "run": operations.run_command,
    "profile": operations.profile_command,
    "status": operations.status_command,
    "query": operations.query_command,
    "keys": consortium.keys_command,
    "package": consortium.package_command,
    "serve": consortium.serve_command,
    "pool": consortium.pool_command,
}
for name, command in COMMANDS.items():
    app.command(name)(command)


@app.callback()
def main(
    log_format: Annotated[str, typer.Option(
        "--log-format", help="text (for people) or json (one object per line, for schedulers).")] = "text",
) -> None:
    """Multicentre FHIR data integration for isolated limb perfusion (ILP) in limb sarcoma."""
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, not {log_format!r}")
    logs.configure("json" if log_format == "json" else "text", debug=_debug)


def run() -> None:
    """Console entry point: typed errors become their exit code and one clear line, no traceback."""
    global _debug
    debug = _debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    logs.configure("text", debug)  # until the callback has read --log-format
    try:
        code = app(standalone_mode=False)  # in this mode typer returns an Exit's code instead of exiting
    except IlpError as error:
        if debug:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except typer.exceptions.TyperException as error:  # usage errors: unknown option, missing value
        typer.echo(f"error: {error.format_message()} (see --help)", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
