"""ConceptMaps from a centre's own server: pulled with its data, the newest version used, a deletion honoured, a
broken one reported; the tables then come out as right as with the ConceptMap files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from pyspark.sql import SparkSession

from connectors import RESOURCE_TYPES, TERMINOLOGY_TYPES, FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from connectors.rest import RestSettings, RestSource
from demo.fhir_server import FhirTestServer
from foundation.model import BY_NAME
from tests.test_transforms_roundtrip import LINKAGE, SECRET, assert_same_table, truth
from transforms.landed import completed_runs
from transforms.pipeline import CentreSettings, TransformOptions, transform
from transforms.terminology import CentreConceptMaps, centre_conceptmaps

Consortium = tuple[Path, dict[str, Any]]
TYPES = RESOURCE_TYPES + TERMINOLOGY_TYPES


def _pull(server: FhirTestServer, root: Path) -> None:
    with RestSource(RestSettings(base_url=server.base), TYPES) as source:
        ingest(source, LandingZone(root, "borealis"), progress=LogProgress())


def _landed_maps(root: Path) -> CentreConceptMaps:
    return centre_conceptmaps((), completed_runs(root, "borealis"), from_source=True)


def test_conceptmaps_from_the_server_map_the_codes_as_the_files_do(spark: SparkSession, demo_consortium: Consortium,
                                                                   fhir_server: FhirTestServer, tmp_path: Path) -> None:
    folder = demo_consortium[0] / "borealis"
    fhir_server.load_centre(folder)
    ids = fhir_server.load_conceptmaps(folder)
    assert ids, "borealis sends local codes: it needs a ConceptMap"
    _pull(fhir_server, tmp_path)
    report = transform(spark, tmp_path, [CentreSettings("borealis", conceptmaps_from_source=True)], SECRET, "r1",
                       TransformOptions(LINKAGE))["borealis"]
    manifest = report.snapshot.manifest("borealis")
    assert manifest.conceptmaps == [f"ConceptMap/{i}" for i in ids] and manifest.conceptmaps_rejected == []
    assert report.unmapped_codes == 0
    for table in ("tumours", "perfusions", "toxicities", "responses", "treatments"):
        written = spark.read.parquet(str(report.snapshot.table(table))).select(*BY_NAME[table].column_names)
        assert_same_table(written, truth(folder, table, "borealis"), table)


def test_a_new_version_on_the_server_replaces_the_old_and_a_deletion_removes_it(
        demo_consortium: Consortium, fhir_server: FhirTestServer, tmp_path: Path) -> None:
    folder = demo_consortium[0] / "borealis"
    (conceptmap_id,) = fhir_server.load_conceptmaps(folder)
    _pull(fhir_server, tmp_path)
    first = _landed_maps(tmp_path).resources[0]
    elements = first["group"][0]["element"]
    with httpx.Client(base_url=fhir_server.base, timeout=30) as client:
        revised = {**first, "version": "2", "group": [{**first["group"][0], "element": elements[1:]}]}
        assert client.put(f"/ConceptMap/{conceptmap_id}", json=revised).status_code == 200
        _pull(fhir_server, tmp_path)  # incremental: only the new version lands
        (second,) = _landed_maps(tmp_path).resources
        assert second["version"] == "2" and [e["code"] for e in second["group"][0]["element"]] == \
            [e["code"] for e in elements[1:]]
        assert client.delete(f"/ConceptMap/{conceptmap_id}").status_code in (200, 204)
    _pull(fhir_server, tmp_path)
    assert _landed_maps(tmp_path).resources == []


def test_a_broken_landed_conceptmap_is_left_out_with_the_reason(demo_consortium: Consortium, tmp_path: Path) -> None:
    (path,) = (demo_consortium[0] / "borealis" / "conceptmaps").glob("*.json")
    good = json.loads(path.read_text())
    broken = {**good, "id": "broken", "group": [{**good["group"][0], "target": None}]}
    files = tmp_path / "export"
    files.mkdir()
    (files / "ConceptMap.ndjson").write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n")
    with FilesSource(FilesSettings(folder=files), TYPES) as source:
        ingest(source, LandingZone(tmp_path, "borealis"), progress=LogProgress())
    maps = _landed_maps(tmp_path)
    assert maps.sources == [f"ConceptMap/{good['id']}"]
    assert len(maps.rejected) == 1 and "ConceptMap/broken: a group without source or target system" in maps.rejected[0]
