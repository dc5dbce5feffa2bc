"""Pull FHIR resources from a centre into the landing zone: REST search, Bulk Data $export, or files."""

from connectors.base import Source, ingest
from connectors.bulk import BulkSource
from connectors.files import FilesSource
from connectors.landing import LandingZone, landed_count
from connectors.progress import PullProgress
from connectors.rest import CohortSearch, RestSource
from connectors.settings import (
    SOURCE_KINDS,
    SOURCE_SETTINGS,
    AuthSettings,
    BulkSettings,
    FilesSettings,
    RestSettings,
    SourceSettings,
    TransportSettings,
)
from connectors.sources import open_source
from foundation.model.resources import RESOURCE_TYPES, TERMINOLOGY_TYPES
from foundation.secrets import SecretRef

__all__ = [
    "RESOURCE_TYPES",
    "SOURCE_KINDS",
    "SOURCE_SETTINGS",
    "TERMINOLOGY_TYPES",
    "AuthSettings",
    "BulkSettings",
    "BulkSource",
    "CohortSearch",
    "FilesSettings",
    "FilesSource",
    "LandingZone",
    "PullProgress",
    "RestSettings",
    "RestSource",
    "SecretRef",
    "Source",
    "SourceSettings",
    "TransportSettings",
    "ingest",
    "landed_count",
    "open_source",
]
