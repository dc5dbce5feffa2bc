"""The consortium configuration: one TOML file describes the zones, Spark, the secret, the analysis and every centre.

Validated on load (pydantic): an error names the file, the key path and what was expected, and never echoes a
value that could be a secret. Secrets are never in the file, only where they live (`{ env = "VAR" }` or
`{ file = "/run/secrets/x" }`). Relative paths are resolved against the file's folder, so a config and its
ConceptMaps travel together. `docs/configuration.md` documents every key with an example per source and auth kind.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.settings import SOURCE_KINDS, SourceSettings
from foundation.cohort import CohortDefinition
from foundation.errors import ConfigError
from foundation.model.resources import RESOURCE_TYPES, TERMINOLOGY_TYPES
from foundation.secrets import SecretRef
from transforms import Linkage
from transforms.views.catalogue import check_overrides
from transforms.views.fhirpath import ViewError

CentreId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CentreConfig(_Strict):
    id: CentreId
    source: SourceSettings
    resource_types: tuple[str, ...] = RESOURCE_TYPES
    conceptmaps: Path | None = None  # a folder of ConceptMap JSON files
    # Also pull the ConceptMaps the source publishes (searched on its server, or ConceptMap files in its folder)
    # and read the centre's codes through them: the newest version of each, as landed with the data.
    conceptmaps_from_source: bool = False
    # Where this centre keeps an element elsewhere than the project's views say: view -> column -> FHIRPath.
    views: dict[str, dict[str, str]] = {}
    # A centre none of whose patients the cohort definition selects stops the run, unless this says it may.
    cohort_may_be_empty: bool = False

    @property
    def pulled_types(self) -> tuple[str, ...]:
        """What the connector pulls: the resource types, and the ConceptMaps when they come from the source."""
        return self.resource_types + (TERMINOLOGY_TYPES if self.conceptmaps_from_source else ())

    @field_validator("views")
    @classmethod
    def _views(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        try:
            check_overrides(value, "views")
        except ViewError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("resource_types")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(RESOURCE_TYPES))
        if unknown:
            raise ValueError(f"unknown resource types {unknown}; expected some of {', '.join(RESOURCE_TYPES)}")
        return value


class CohortConfig(_Strict):
    """Who is in the study (`foundation.cohort.CohortDefinition`), in the canonical kinds of the shipped ValueSets:
    each centre's codes select its patients through its ConceptMaps."""

    procedure_kinds: tuple[str, ...] = CohortDefinition.procedure_kinds
    condition_kinds: tuple[str, ...] = CohortDefinition.condition_kinds
    performed_from: date | None = None
    performed_until: date | None = None

    @model_validator(mode="after")
    def _definition(self) -> CohortConfig:
        self.definition()  # its checks, with their messages
        return self

    def definition(self) -> CohortDefinition:
        return CohortDefinition(self.procedure_kinds, self.condition_kinds, self.performed_from, self.performed_until)


class PolicyConfig(_Strict):
    """`[analysis.policy]`: the output policy (`analytics.policy.OutputPolicy`, whose docstring says why each)."""

    protect: bool = True  # false only for outputs that stay inside the centre
    threshold: Annotated[int, Field(ge=1)] = 5
    rounding: Annotated[int, Field(ge=1)] = 5
    time_grid_months: Annotated[float, Field(gt=0)] = 1.0
    significant_figures: Annotated[int, Field(ge=1)] = 3
    p_figures: Annotated[int, Field(ge=1)] = 2
    levels_density: Annotated[float, Field(gt=0, le=1)] = 0.33
    model_density: Annotated[float, Field(gt=0, le=1)] = 0.33


class LinkageConfig(_Strict):
    """`[linkage]`: the consortium's opt-in to one pseudonym per person across centres
    (`transforms.pseudonym.Linkage`). Without it each centre keys its patients under its own secret."""

    identifier_system: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*:.+")]  # a URI, as FHIR requires
    secret: SecretRef  # shared by the consortium's centres; never the centre's own `secret`

    def resolve(self) -> Linkage:
        return Linkage(self.identifier_system, self.secret.resolve())


class AnalysisConfig(_Strict):
    ci: Literal["log", "log-log", "plain"] = "log"
    horizons_years: tuple[int, ...] = (1, 5, 10)
    policy: PolicyConfig = PolicyConfig()


class ConsortiumConfig(_Strict):
    name: str
    root: Path
    secret: SecretRef  # the centre's own pseudonymisation key: shared with no other centre
    linkage: LinkageConfig | None = None
    shift_dates: bool = False
    spark: dict[str, str] = {}
    analysis: AnalysisConfig = AnalysisConfig()
    cohort: CohortConfig = CohortConfig()
    centres: list[CentreConfig] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "identifier_system" in data:
            raise ValueError("`identifier_system` links a person's pseudonyms across centres under a shared key: "
                             "declare it, with that key, in a [linkage] section (`identifier_system`, `secret`), "
                             "or remove it to keep each centre's pseudonyms its own")
        return data

    @field_validator("root", mode="before")
    @classmethod
    def _local(cls, value: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            raise ValueError("the zones' root must be a path (local, or a shared mount such as NFS or an HDFS/S3 "
                             "fuse mount on a cluster); URIs are not supported yet")
        return value

    @field_validator("centres")
    @classmethod
    def _unique(cls, value: list[CentreConfig]) -> list[CentreConfig]:
        ids = [c.id for c in value]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"centre ids must be unique; repeated: {', '.join(repeated)}")
        return value

    def centre(self, centre_id: str) -> CentreConfig:
        for centre in self.centres:
            if centre.id == centre_id:
                return centre
        raise ConfigError(f"no centre {centre_id!r} in the configuration; it has {', '.join(self.ids)}")

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.centres]


def load_config(path: Path) -> ConsortiumConfig:
    """Read and validate a configuration file; every problem becomes one `ConfigError` naming file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    try:
        config = ConsortiumConfig.model_validate(_resolve_paths(data, path.parent))
    except ValidationError as error:
        problems = [f"{path}: {_location(e['loc'])}: {_message(e)}" for e in error.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    return config


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in SOURCE_KINDS and text.endswith("source"):
            continue  # the discriminator's branch name adds nothing for the reader
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: Any) -> str:
    """Pydantic's message without the offending input (which could be a secret pasted in the wrong place)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling against docs/configuration.md)"
    if error["type"] == "missing":
        return "required key is missing"
    return message


_PATH_KEYS = {"root", "folder", "conceptmaps", "ca_bundle", "file"}


def _resolve_paths(value: Any, base: Path, key: str = "") -> Any:
    """Relative paths in the file are relative to the file's folder; URIs (hdfs://, s3a://) stay as they are."""
    if isinstance(value, dict):
        return {k: _resolve_paths(v, base, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_paths(v, base, key) for v in value]
    if key in _PATH_KEYS and isinstance(value, str) and "://" not in value and not Path(value).is_absolute():
        return str((base / value).resolve())
    return value
