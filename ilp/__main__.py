"""`python -m ilp` runs the CLI, for environments without the `ilp` script on PATH."""

from ilp.cli import run

run()
