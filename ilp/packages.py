"""Centre packages: what a centre that runs the pipeline on its own premises sends to the consortium's hub.

A package is a folder: `data/` (either the centre's pseudonymised, validated cohort tables, kind `rows`, or its
answers to the hub's standard aggregate requests under its output policy, kind `aggregates`), `manifest.json`
(centre, kind, software version, the snapshot, its validation verdict without row keys or local paths, the output
policy or whether dates were shifted, and every file's SHA-256 and size) and `manifest.sig`, an
Ed25519 signature of the manifest's bytes by the centre's private key. The hub holds each centre's public key
(`<centre>.pub` in its trust folder) and refuses a package that is unsigned, signed by another key, or whose
files differ from what was signed (`PackageRefused`, exit code 8). Keys and signatures are the `cryptography`
library's (Ed25519, PEM files); nothing here is hand-made cryptography.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from analytics.cohort import CohortData, read_snapshot
from analytics.federated import Site, StoredAnswers, Transport, standard_requests
from analytics.plan import AnalysisPlan
from analytics.releases import ReleaseLedger
from foundation.errors import ConfigError, PackageRefused, ReleaseHeld
from foundation.fileio import sha256_file
from foundation.manifests import PackageManifest, PublicationRecord, ValidationSummary
from foundation.publication import published_snapshot
from foundation.staging import staging_folder
from foundation.zones import VALIDATION_SUMMARY, Snapshot, Zones

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ANSWERS = "answers.json"
PackageKind = Literal["rows", "aggregates"]


def generate_keys(centre_id: str, folder: Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair for a centre: `<centre>.key` (private, readable by its owner only) and `<centre>.pub`
    (for the hub's trust folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{centre_id}.key", folder / f"{centre_id}.pub"
    if private.exists():
        raise ConfigError(f"{private} exists: a centre keeps its key (remove it first to replace it, and send the "
                          "hub the new public key)")
    key = Ed25519PrivateKey.generate()
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{where} is not a PEM private key: make one with `ilp keys --centre ID`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where} is not an Ed25519 key: make one with `ilp keys --centre ID`")
    return key


def _public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError):
        raise PackageRefused(f"{path} is not a PEM public key: ask the centre for its `.pub` file") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PackageRefused(f"{path} is not an Ed25519 public key: ask the centre for its `.pub` file")
    return key


def published_centre(root: Path, centre_id: str) -> tuple[Snapshot, PublicationRecord]:
    """The published snapshot that holds the centre, and the record that published it: only a validated cohort
    leaves a centre (in a package, or in answers to the hub)."""
    snapshot = published_snapshot(root)
    pointer = PublicationRecord.read(Zones(root).publication)
    if centre_id not in pointer.centres:
        raise ConfigError(f"centre {centre_id} is not in the published cohort ({', '.join(pointer.centres)}): "
                          "run `ilp run` for it first; only a validated cohort leaves a centre")
    return snapshot, pointer


def export_package(root: Path, centre_id: str, kind: PackageKind, private_key_pem: bytes, out: Path,
                   plan: AnalysisPlan | None = None, grid_months: float | None = None) -> Path:
    """Write the centre's signed package of its published, validated cohort to `out/<centre>-<snapshot>-<kind>/`."""
    key = _private_key(private_key_pem, "the signing key")
    plan = plan or AnalysisPlan()
    snapshot, pointer = published_centre(root, centre_id)
    summary = ValidationSummary.read(Zones(root).root / pointer.validation / VALIDATION_SUMMARY)
    target = out / f"{centre_id}-{snapshot.run_id}-{kind}"
    ledger = ReleaseLedger(Zones(root).releases)
    with staging_folder(out, target.name) as staging:
        data = staging / "package" / "data"
        if kind == "rows":
            for table in ("cohort", "toxicities"):
                if snapshot.partition(table, centre_id).is_dir():  # a centre without toxicities has none
                    shutil.copytree(snapshot.partition(table, centre_id), data / table / f"centre_id={centre_id}")
                else:
                    (data / table).mkdir(parents=True)
            shutil.copyfile(snapshot.manifest_path(centre_id), data / snapshot.manifest_path(centre_id).name)
            _without_source_ids(data)
        else:
            released = read_snapshot(snapshot).for_centre(centre_id)
            held = ledger.check(released, plan.policy)
            if held is not None:
                raise ReleaseHeld(f"the aggregates of {snapshot.name} are {held}")
            site = Site(released, plan, grid_months)
            answers = [{"request": r, "answer": site.answer(r)} for r in standard_requests(plan)]
            data.mkdir(parents=True)
            (data / ANSWERS).write_text(json.dumps(answers), encoding="utf-8")
        files = {str(p.relative_to(data.parent)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                 for p in sorted(data.rglob("*")) if p.is_file()}
        manifest = PackageManifest(
            centre_id=centre_id, kind=kind, created_at=datetime.now(UTC).isoformat(), software=version("ilp-cohort"),
            snapshot=snapshot.name, validation=_verdict(summary), grid_months=grid_months, files=files,
            output_policy=asdict(plan.policy) if kind == "aggregates" else {},
            dates_shifted=kind == "rows" and snapshot.manifest(centre_id).dates_shifted)
        manifest.write(data.parent / MANIFEST)
        if kind == "aggregates":  # rows are no aggregate release: the consortium holds them
            ledger.record(released, snapshot.name, plan.policy)
        (data.parent / SIGNATURE).write_bytes(key.sign((data.parent / MANIFEST).read_bytes()))
        if target.exists():
            shutil.rmtree(target)
        os.replace(data.parent, target)
    return target


def _verdict(summary: ValidationSummary) -> dict[str, Any]:
    """What the hub needs of the validation: that it passed, over how many checks; not its findings (their
    sample keys are patients' pseudonyms) nor where its Data Docs lie on the centre's disk."""
    return {"snapshot": summary.snapshot, "passed": summary.passed, "evaluated": summary.evaluated,
            "critical_failures": summary.critical_failures, "warnings": summary.warnings}


def _without_source_ids(data: Path) -> None:
    """Rows leave without the ids of their FHIR resources on the hospital's server: each id becomes a hash under
    a key drawn for this package and then discarded, so a row still says how many resources it came from (and
    which rows shared one), not which resources they are."""
    key = secrets.token_bytes(32)
    for path in sorted(data.rglob("*.parquet")):
        table = pq.ParquetFile(path).read()
        if "source_resource_ids" not in table.column_names:
            continue
        index = table.column_names.index("source_resource_ids")
        hashed = [[hmac.new(key, i.encode(), "sha256").hexdigest()[:32] for i in ids]
                  for ids in table.column(index).to_pylist()]
        field = table.schema.field(index)
        pq.write_table(table.set_column(index, field, pa.array(hashed, type=field.type)), path)


def verify_package(package: Path, trust: Path) -> PackageManifest:
    """The package's manifest once its signature and every file check out against the centre's trusted key."""
    manifest_path, signature = package / MANIFEST, package / SIGNATURE
    if not manifest_path.is_file():
        raise PackageRefused(f"{package} has no {MANIFEST}: not a centre package")
    if not signature.is_file():
        raise PackageRefused(f"{package} is unsigned (no {SIGNATURE}): ask the centre to export it again with its "
                             "key (`ilp package ... --key`)")
    manifest = PackageManifest.read(manifest_path)
    trusted = trust / f"{manifest.centre_id}.pub"
    if not trusted.is_file():
        raise PackageRefused(f"{package}: no trusted key for centre {manifest.centre_id} ({trusted} is missing); add "
                             "the centre's public key, received from the centre itself, to the trust folder")
    try:
        _public_key(trusted).verify(signature.read_bytes(), manifest_path.read_bytes())
    except InvalidSignature:
        raise PackageRefused(f"{package}: the signature does not match centre {manifest.centre_id}'s trusted key: "
                             "the manifest was changed after signing, or another key signed it. Do not use it; "
                             "ask the centre for a new package") from None
    present = {str(p.relative_to(package)) for p in (package / "data").rglob("*") if p.is_file()}
    for name in sorted(present - set(manifest.files)):
        raise PackageRefused(f"{package}: {name} is not in the signed manifest (added after signing); do not use it")
    for name, expected in manifest.files.items():
        path = package / name
        if not path.is_file() or sha256_file(path) != expected["sha256"]:
            raise PackageRefused(f"{package}: {name} is missing or changed since it was signed; do not use it, "
                                 "ask the centre for a new package")
    return manifest


def open_package(package: Path, trust: Path, plan: AnalysisPlan) -> tuple[PackageManifest, Transport,
                                                                         CohortData | None]:
    """A verified package as the hub uses it: its manifest, a site answering from it, and its rows if it has any."""
    manifest = verify_package(package, trust)
    if manifest.kind == "rows":
        data = read_snapshot(package / "data")
        return manifest, Site(data, plan).answer, data
    answers: list[dict[str, Any]] = json.loads((package / "data" / ANSWERS).read_text(encoding="utf-8"))
    return manifest, StoredAnswers(manifest.centre_id, answers).answer, None
