"""Secrets come from environment variables or files named in the configuration, never from the config itself.

`Secret` never shows its value in a repr, a log line or an error message: only `reveal()` gives it, at the
point of use.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from foundation.errors import ConfigError


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class SecretRef(BaseModel):
    """Where a secret lives: an environment variable or a file (whose content is the secret, trailing newline cut).
    The configuration file names it as `{ env = "VAR" }` or `{ file = "/run/secrets/x" }`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_place(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env` (a variable name) or `file` (a path)")
        return self

    def resolve(self) -> Secret:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"environment variable {self.env} is not set (it should hold a secret)")
            return Secret(value)
        assert self.file is not None
        try:
            return Secret(Path(self.file).read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError as error:
            raise ConfigError(f"cannot read secret file {self.file}: {error.strerror}") from None

    def describe(self) -> str:
        """Where the secret comes from, safe to log."""
        return f"env:{self.env}" if self.env else f"file:{self.file}"
