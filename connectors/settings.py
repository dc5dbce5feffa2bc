"""How to reach a centre's source, declared once: these models are both the connectors' settings and the
configuration file's `source` table, validated by pydantic with errors that name the key.

A source kind is a settings model tagged by `kind` plus a `Source` class that takes it (`connectors.sources`
maps one to the other); the configuration and the CLI know no kind by name. Secrets are references
(`{ env = "VAR" }` or `{ file = "/run/secrets/x" }`), resolved only when a connection is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from foundation.secrets import SecretRef


class Settings(BaseModel):
    """Settings are immutable and reject unknown keys (a misspelt key is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


AuthKind = Literal["none", "basic", "bearer", "client-credentials", "smart-backend"]
AUTH_NEEDS: dict[str, tuple[str, ...]] = {
    "basic": ("username", "password"), "bearer": ("token",), "client-credentials": ("client_id", "client_secret"),
    "smart-backend": ("client_id", "private_key", "key_id")}


class AuthSettings(Settings):
    """How to authenticate to one server."""

    kind: AuthKind = "none"
    username: str | None = None
    password: SecretRef | None = None
    token: SecretRef | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    private_key: SecretRef | None = None  # PEM
    key_id: str | None = None
    algorithm: Literal["RS384", "ES384"] = "RS384"
    scope: str = "system/*.read"
    token_url: str | None = None  # discovered from .well-known/smart-configuration when absent
    audience: str | None = None  # the assertion's `aud`; the token URL unless the server wants another

    @model_validator(mode="after")
    def _complete(self) -> AuthSettings:
        missing = [name for name in AUTH_NEEDS.get(self.kind, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth kind {self.kind!r} needs {', '.join(missing)}")
        return self


class TransportSettings(Settings):
    """Timeouts, retries and TLS of the HTTP connection to a server. TLS is always verified; `ca_bundle` adds a CA
    (a hospital's own). Retries back off exponentially with jitter, and honour `Retry-After` up to its cap."""

    timeout_s: Annotated[float, Field(gt=0)] = 60.0
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    backoff_initial_s: Annotated[float, Field(gt=0)] = 0.5
    backoff_max_s: Annotated[float, Field(gt=0)] = 30.0
    retry_after_cap_s: Annotated[float, Field(gt=0)] = 120.0
    ca_bundle: Path | None = None


class ServerFeatures(Settings):
    """What the server can do, where its CapabilityStatement is wrong or silent. Unset: as the statement says."""

    last_updated: bool | None = None  # searches filter on `_lastUpdated` (else: every run reads all, keeps changes)
    history: bool | None = None  # type-level `_history` lists deletions (else: deletions by id reconciliation)
    system_search: bool | None = None  # clinical types searchable across patients (else: per patient compartment)
    # searches send `_count` (the page size); false for a server that refuses it (one that ignores it needs nothing)
    count: bool | None = None


class ServerSettings(TransportSettings):
    """A FHIR server: its base URL, how to authenticate, and the transport settings."""

    base_url: str
    auth: AuthSettings = AuthSettings()
    # Other names of this same server (a host name, any port, or host:port), e.g. the name its next links use when
    # the base URL names it by address: links to them are followed, and get our credentials, as the base URL's do.
    same_server_hosts: tuple[str, ...] = ()
    server_features: ServerFeatures = ServerFeatures()
    # Without `_history`, deletions are found by comparing every id the server still serves with what landed (REST:
    # an id listing; Bulk: a full export instead of an incremental one): every this many days (0: every run), and
    # on every `--full` pull.
    reconcile_every_days: Annotated[float, Field(ge=0)] = 7.0

    def same_server(self, url: str) -> bool:
        """Whether `url` is on this server: its base URL's scheme and host, or one of its listed other names."""
        base, other = urlsplit(self.base_url), urlsplit(url)
        return other.scheme == base.scheme and (other.netloc == base.netloc or host_listed(url, self.same_server_hosts))

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s) URL of the FHIR base, e.g. https://fhir.example.org/r4")
        return value.rstrip("/")


def host_listed(url: str, hosts: tuple[str, ...]) -> bool:
    """Whether the URL's host is listed, as a host name (any port) or as host:port."""
    parts = urlsplit(url)
    return parts.netloc in hosts or parts.hostname in hosts


class RestSettings(ServerSettings):
    """REST search, paged by the server's `next` links, incremental by `_lastUpdated`."""

    kind: Literal["rest"] = "rest"
    page_size: Annotated[int, Field(ge=1, le=1000)] = 200
    concurrency: Annotated[int, Field(ge=1, le=16)] = 3
    cohort_only: bool = False  # only patients with an ILP procedure, and their resources


class BulkSettings(ServerSettings):
    """Bulk Data `$export` at system, Patient or Group level."""

    kind: Literal["bulk"] = "bulk"
    level: Literal["system", "patient", "group"] = "system"
    group_id: str | None = None
    max_wait_s: Annotated[float, Field(gt=0)] = 3600.0
    poll_interval_s: Annotated[float, Field(gt=0)] = 2.0
    # other hosts allowed to serve output files (e.g. a storage bucket): a host name (any port) or host:port
    file_hosts: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _group(self) -> BulkSettings:
        if (self.level == "group") != (self.group_id is not None):
            raise ValueError("`group_id` is required with level = 'group' and only then")
        return self


class FilesSettings(Settings):
    """A folder of NDJSON (`.ndjson`, `.ndjson.gz`) or Bundle JSON files."""

    kind: Literal["files"] = "files"
    folder: Path


SourceSettings = Annotated[RestSettings | BulkSettings | FilesSettings, Field(discriminator="kind")]
SOURCE_SETTINGS: TypeAdapter[RestSettings | BulkSettings | FilesSettings] = TypeAdapter(SourceSettings)
SOURCE_KINDS: tuple[str, ...] = tuple(model.model_fields["kind"].default
                                     for model in get_args(get_args(SourceSettings)[0]))
