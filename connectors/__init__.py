"""Pull FHIR resources from a centre into the landing zone: REST search, Bulk Data $export, or files."""

from connectors.auth import AuthSettings
from connectors.base import Source, ingest
from connectors.bulk import BulkSettings, BulkSource
from connectors.files import FilesSettings, FilesSource
from connectors.http import TransportSettings
from connectors.landing import LandingZone, landed_count
from connectors.progress import PullProgress
from connectors.rest import ILP_PROCEDURE_CODES, RestSettings, RestSource
from ilp.model.resources import RESOURCE_TYPES, TERMINOLOGY_TYPES
from ilp.secrets import SecretRef

__all__ = [
    "ILP_PROCEDURE_CODES", "RESOURCE_TYPES", "TERMINOLOGY_TYPES", "AuthSettings", "BulkSettings", "BulkSource",
    "FilesSettings", "FilesSource", "LandingZone", "PullProgress", "RestSettings", "RestSource", "SecretRef",
    "Source", "TransportSettings", "ingest", "landed_count",
]
