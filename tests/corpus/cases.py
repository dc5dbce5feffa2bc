"""The corpus cases. Each starts from one complete, valid patient record (every resource of one demo patient
with an ILP) and breaks it in one way; `Expect` says where the broken input must end up.

Row counts are stated as differences from the unbroken record (`baseline`), so a case says only what its
breakage changes. A case's name is also the centre id it lands as: the whole corpus runs as one consortium.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Resource = dict[str, Any]
Files = dict[str, bytes]
IMPOSSIBLE = "internally impossible: "
UNMAPPED = "code not in the canonical ValueSets or the centre's ConceptMaps"
UNUSED = "no canonical table uses this resource"


def _wrong_focus(target: str) -> str:
    return (f"not linked to a tumour: its focus points at {target}, which is not a primary tumour Condition of its "
            "patient: set focus to the tumour's Condition")


@dataclass(frozen=True)
class Expect:
    rejected: tuple[str, ...] = ()  # landing rejects' reasons, in order
    quarantined: dict[str, str] = field(default_factory=dict)  # resource id -> reason, at any transform stage
    # table -> rows gained (+) or lost (-) against the baseline; None: not judged; {"*": 0}: every table empty
    rows: dict[str, int] | None = field(default_factory=dict)
    error: str | None = None  # the pull stops with a clear error containing this


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    files: Callable[[list[Resource]], Files]
    expect: Callable[[list[Resource]], Expect] = lambda record: Expect()


def ndjson(resources: list[Any], extra: Files | None = None) -> Files:
    """One NDJSON file per resource type (values that are not resources go to `Other.ndjson`)."""
    files: dict[str, list[bytes]] = {}
    for item in resources:
        kind = item.get("resourceType") if isinstance(item, dict) else None
        name = f"{kind}.ndjson" if isinstance(kind, str) and kind.isalpha() else "Other.ndjson"
        files.setdefault(name, []).append(json.dumps(item).encode() + b"\n")
    return {**{name: b"".join(lines) for name, lines in files.items()}, **(extra or {})}


def first(record: list[Resource], resource_type: str, test: Callable[[Resource], bool] = lambda r: True) -> Resource:
    return next(r for r in record if r["resourceType"] == resource_type and test(r))


def code_of(resource: Resource) -> str:
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    return str((concept.get("coding") or [{}])[0].get("code"))


def is_ilp(resource: Resource) -> bool:
    return resource["resourceType"] == "Procedure" and code_of(resource) == "4019656"


def is_tumour_size(resource: Resource) -> bool:
    return resource["resourceType"] == "Observation" and code_of(resource) == "21889-1"


def changed(record: list[Resource], pick: Callable[[list[Resource]], Resource],
            change: Callable[[Resource], None]) -> list[Resource]:
    """The record with one resource changed in place (on a copy)."""
    record = copy.deepcopy(record)
    change(pick(record))
    return record


def _ilp(record: list[Resource]) -> Resource:
    return first(record, "Procedure", is_ilp)


def _size(record: list[Resource]) -> Resource:
    return first(record, "Observation", is_tumour_size)


def _tnf(record: list[Resource]) -> Resource:
    return first(record, "MedicationAdministration")


def _copy_of(pick: Callable[[list[Resource]], Resource], new_id: str,
             **changes: Any) -> Callable[[list[Resource]], Files]:
    """The record plus a copy of one of its resources under a new id, with some elements replaced."""
    def files(record: list[Resource]) -> Files:
        extra = {**copy.deepcopy(pick(record)), "id": new_id, **changes}
        return ndjson([*record, extra])
    return files


def _broken(pick: Callable[[list[Resource]], Resource], change: Callable[[Resource], None]
            ) -> Callable[[list[Resource]], Files]:
    return lambda record: ndjson(changed(record, pick, change))


def _quarantined(pick: Callable[[list[Resource]], Resource], reason: str, **rows: int
                 ) -> Callable[[list[Resource]], Expect]:
    return lambda record: Expect(quarantined={str(pick(record)["id"]): reason}, rows=rows)


def _extra_line(name: str, line: bytes) -> Callable[[list[Resource]], Files]:
    def files(record: list[Resource]) -> Files:
        out = ndjson(record)
        out[name] = out.get(name, b"") + line
        return out
    return files


def _set(path: str, value: Any) -> Callable[[Resource], None]:
    """Set a dotted path (`component.0.valueQuantity.value`) in a resource."""
    def change(resource: Resource) -> None:
        *parents, last = path.split(".")
        target: Any = resource
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return change


def _drop(path: str) -> Callable[[Resource], None]:
    def change(resource: Resource) -> None:
        *parents, last = path.split(".")
        target: Any = resource
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target.pop(last, None)
    return change


def _bundle(kind: str, with_outcome: bool = False) -> Callable[[list[Resource]], Files]:
    def files(record: list[Resource]) -> Files:
        entries: list[dict[str, Any]] = [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
             **({"request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} if kind == "transaction"
                else {"search": {"mode": "match"}} if kind == "searchset" else {})} for r in record]
        if with_outcome:
            entries.insert(1, {"resource": {"resourceType": "OperationOutcome", "issue": [
                {"severity": "warning", "code": "processing", "diagnostics": "page 2 was slow"}]},
                "search": {"mode": "outcome"}})
        return {"bundle.json": json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}).encode()}
    return files


def _gzip_truncated(record: list[Resource]) -> Files:
    files = ndjson(record)
    packed = gzip.compress(files.pop("Observation.ndjson"))
    return {**files, "Observation.ndjson.gz": packed[: len(packed) * 2 // 3]}


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "leaf"}
    for level in range(depth):
        node = {"url": f"http://example.org/level-{level}", "extension": [node]}
    return node


# What a perfusion row is made of besides its Procedure (toxicities and responses are rows of their own).
PERFUSION_PARTS = ("MedicationAdministration", "perfusate-temp", "leakage-pct", "limb-volume", "perfusion-duration")


def _ilp_and_its_parts(reason: str) -> Callable[[list[Resource]], Expect]:
    """The ILP quarantined with `reason`; the drugs and measurements that only make up its perfusion row then
    serve no table and are quarantined as parts of it; its toxicities and responses stay (without a perfusion)."""
    def expect(record: list[Resource]) -> Expect:
        ilp = _ilp(record)
        part_of_it = f"part of Procedure/{ilp['id']}, which is quarantined"
        parts = {str(r["id"]): part_of_it for r in record
                 if any(str(link.get("reference", "")).endswith(ilp["id"]) for link in r.get("partOf") or [])
                 and (r["resourceType"] in PERFUSION_PARTS or code_of(r) in PERFUSION_PARTS)}
        return Expect(quarantined={str(ilp["id"]): reason, **parts}, rows={"perfusions": -1})
    return expect


def _size_reason(reason: str) -> Callable[[list[Resource]], Expect]:
    return _quarantined(_size, IMPOSSIBLE + reason)


SIZE_VALUE = "component.0.valueQuantity.value"
CASES: tuple[Case, ...] = (
    Case("baseline", "the complete, valid record", ndjson),
    # Landing: what is not a FHIR resource is rejected with the reason, the rest lands.
    Case("malformed-json-line", "a line that is not JSON among valid lines",
         _extra_line("Observation.ndjson", b'{"resourceType": "Observation", "id": \n'),
         lambda r: Expect(rejected=("not valid JSON",))),
    Case("json-array-not-ndjson", "the Observations as one JSON array instead of one per line",
         lambda r: {**ndjson([x for x in r if x["resourceType"] != "Observation"]),
                    "Observation.ndjson": json.dumps([x for x in r if x["resourceType"] == "Observation"]).encode()},
         lambda r: Expect(rejected=("not a JSON object",), rows=None)),
    Case("missing-resource-type", "a resource without resourceType", _broken(_size, _drop("resourceType")),
         lambda r: Expect(rejected=("no resourceType",))),
    Case("type-not-asked-for", "an Encounter among the resources",
         _extra_line("Encounter.ndjson", b'{"resourceType": "Encounter", "id": "e1", "status": "finished"}\n'),
         lambda r: Expect(rejected=("resource type Encounter was not asked for",))),
    Case("missing-id", "a resource without id", _broken(_size, _drop("id")),
         lambda r: Expect(rejected=("resource has no id",))),
    Case("id-with-path-characters", "a resource whose id is ../../escape",
         _extra_line("Observation.ndjson", b'{"resourceType": "Observation", "id": "../../escape"}\n'),
         lambda r: Expect(rejected=("id is not a FHIR id (1 to 64 letters, digits, '-' or '.')",))),
    Case("resource-in-the-wrong-file", "an Observation inside Patient.ndjson",
         lambda r: {**ndjson([x for x in r if x is not _size(r)]),
                    "Patient.ndjson": ndjson(r)["Patient.ndjson"] + json.dumps(_size(r)).encode() + b"\n"}),
    Case("bom-at-file-start", "a UTF-8 byte order mark before the first line",
         lambda r: {k: (b"\xef\xbb\xbf" + v if k == "Patient.ndjson" else v) for k, v in ndjson(r).items()}),
    Case("non-utf8-bytes", "bytes that are not UTF-8 inside a string",
         _extra_line("Observation.ndjson", b'{"resourceType": "Observation", "id": "bad-bytes", "status": "final", '
                                           b'"code": {"text": "\xff\xfe size"}}\n'),
         lambda r: Expect(quarantined={"bad-bytes": UNMAPPED})),
    Case("truncated-gzip", "a gzip file cut off two thirds of the way", _gzip_truncated,
         lambda r: Expect(rejected=("truncated or corrupt gzip",), rows=None)),
    Case("bundle-collection", "everything in one collection Bundle", _bundle("collection")),
    Case("bundle-transaction", "everything in one transaction Bundle", _bundle("transaction")),
    Case("bundle-searchset-with-outcome", "a searchset page carrying an OperationOutcome",
         _bundle("searchset", with_outcome=True),
         lambda r: Expect(rejected=("resource type OperationOutcome was not asked for",))),
    Case("empty-input", "a source with nothing in it", lambda r: {}, lambda r: Expect(rows={"*": 0})),
    # Versions: the newest wins, a repeat changes nothing.
    Case("duplicate-id-newer-version", "the same Observation twice, the second a newer version",
         lambda r: ndjson([*r, {**_size(r), "meta": {"versionId": "9", "lastUpdated": "2030-01-01T00:00:00Z"}}])),
    Case("duplicate-id-same-version", "the same line twice", lambda r: ndjson([*r, _size(r)])),
    Case("meta-missing", "no resource has meta",
         lambda r: ndjson([{k: v for k, v in x.items() if k != "meta"} for x in r])),
    # Dates.
    Case("partial-date", "a diagnosis dated only by month",
         _broken(lambda r: first(r, "Condition"), _set("onsetDateTime", "2011-03"))),
    Case("impossible-date", "an Observation dated 2019-02-30", _broken(_size, _set("effectiveDateTime", "2019-02-30")),
         _size_reason("effectiveDateTime is not a valid date")),
    Case("future-date", "an Observation dated 2099", _broken(_size, _set("effectiveDateTime", "2099-01-01")),
         _size_reason("effectiveDateTime is in the future")),
    Case("odd-time-zone", "a date-time at +14:00 late in the evening",
         _broken(_size, _set("effectiveDateTime", "2011-02-01T23:30:00+14:00"))),
    Case("backwards-period", "an ILP that ends before it starts",
         _broken(_ilp, _set("performedPeriod", {"start": "2011-03-01T10:00:00Z", "end": "2011-03-01T09:00:00Z"})),
         _ilp_and_its_parts(IMPOSSIBLE + "performedPeriod ends before it starts")),
    # Numbers and units.
    Case("number-as-string", "a quantity whose value is the string \"17.4\"", _broken(_size, _set(SIZE_VALUE, "17.4"))),
    Case("number-not-a-number", "a quantity whose value is \"large\"", _broken(_size, _set(SIZE_VALUE, "large")),
         _size_reason("component.valueQuantity.value is not a number")),
    Case("negative-dose", "a TNF dose of -1 mg", _broken(_tnf, _set("dosage.dose.value", -1)),
         _quarantined(_tnf, IMPOSSIBLE + "dosage.dose.value is negative")),
    Case("absurd-dose", "a TNF dose of 400 mg (possible to write, implausible: the audit warns)",
         _broken(_tnf, _set("dosage.dose.value", 400))),
    Case("quantity-without-unit", "a size with a value and no unit",
         _broken(_size, _set("component.0.valueQuantity", {"value": 17.4})),
         _size_reason("component.valueQuantity has no unit")),
    Case("unknown-unit", "a size in furlongs",
         _broken(_size, _set("component.0.valueQuantity", {"value": 17.4, "unit": "furlong"})),
         _size_reason("component.valueQuantity has an unknown unit")),
    # Codes.
    Case("unknown-code-system", "an Observation coded in a system nobody maps",
         _broken(_size, _set("code", {"coding": [{"system": "http://example.org/unknown", "code": "x1"}]})),
         _quarantined(_size, UNMAPPED)),
    Case("empty-codeable-concept", "an Observation whose code is {}", _broken(_size, _set("code", {})),
         _quarantined(_size, UNMAPPED)),
    Case("text-only-concept", "an Observation coded only by text",
         _broken(_size, _set("code", {"text": "Tumour size"})),
         _quarantined(_size, UNMAPPED)),
    Case("contained-medication", "a drug given as a contained Medication, not a code",
         _broken(_tnf, lambda m: m.update(
             contained=[{"resourceType": "Medication", "id": "m1", "code": m.pop("medicationCodeableConcept")}],
             medicationReference={"reference": "#m1"})),
         _quarantined(_tnf, UNMAPPED)),
    # References.
    Case("reference-to-missing-patient", "an Observation about a patient and tumour that do not exist",
         _copy_of(_size, "orphan", subject={"reference": "Patient/missing"}, focus=[{"reference": "Condition/gone"}]),
         lambda r: Expect(quarantined={"orphan": _wrong_focus("gone")})),
    Case("unresolved-urn-uuid", "references by urn:uuid to nothing in the export",
         _copy_of(_size, "by-urn", subject={"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"},
                  focus=[{"reference": "urn:uuid:00000000-0000-0000-0000-000000000001"}]),
         lambda r: Expect(quarantined={"by-urn": _wrong_focus("00000000-0000-0000-0000-000000000001")})),
    # Odd structure.
    Case("extension-with-null-url", "an extension whose url is null",
         _broken(_ilp, lambda p: p.setdefault("extension", []).append({"url": None, "valueString": "x"}))),
    Case("nulls-everywhere", "null values and null array members", _broken(_ilp, lambda p: p.update(
        note=None, extension=[*p.get("extension", []), None], bodySite=[*p.get("bodySite", []), None]))),
    Case("deeply-nested", "an extension nested 200 levels deep",
         _broken(_ilp, lambda p: p.setdefault("extension", []).append(_nested(200)))),
    Case("string-where-object", "a code that is a plain string", _broken(_size, _set("code", "21889-1")),
         _quarantined(_size, UNMAPPED)),
    Case("long-value", "a 1 MB free-text note", _broken(_size, _set("note", [{"text": "x" * 1_000_000}]))),
    Case("fifty-megabyte-line", "one line of 50 MB", _broken(_size, _set("note", [{"text": "y" * 50_000_000}]))),
)
