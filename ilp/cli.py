"""The `ilp` command: one entry point for every stage.

Commands grow as the stages land; each one is a thin shell over a stage's public API.
"""

from __future__ import annotations

import typer

from ilp.model import dictionary

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Multicentre FHIR data integration for isolated limb perfusion (ILP) in limb sarcoma.")


@app.callback()
def main() -> None:
    """Multicentre FHIR data integration for isolated limb perfusion (ILP) in limb sarcoma."""


@app.command("dictionary")
def dictionary_command(check: bool = typer.Option(False, "--check", help="Fail if the doc is stale; write nothing.")
                       ) -> None:
    """Write docs/data-dictionary.md from the canonical model.

    Example: ilp dictionary --check
    """
    if check:
        if dictionary.DICTIONARY_PATH.read_text(encoding="utf-8") != dictionary.render():
            typer.echo(f"{dictionary.DICTIONARY_PATH} is stale: run `ilp dictionary`", err=True)
            raise typer.Exit(1)
        typer.echo("data dictionary is up to date")
        return
    typer.echo(f"wrote {dictionary.write()}")
