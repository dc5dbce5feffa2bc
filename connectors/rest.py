"""FHIR REST search: every resource of each type, page by page, following `next` links exactly as given, planned
from the server's CapabilityStatement (`connectors.capabilities`).

Incremental runs search `_lastUpdated=ge<watermark>` (inclusive: many resources share one millisecond, and the
landing de-duplicates on id and versionId); a server without `_lastUpdated` is read whole every run and only
what changed since the watermark lands. Deletions come from the type-level `_history` since the watermark, or,
without it, from an id reconciliation (`connectors.deletions`). A server that searches clinical types only within
a patient compartment is searched per chunk of patients. The watermark of a type is the server's clock when its
first page was served. Types are pulled concurrently, a bounded number at a time.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors import deletions
from connectors.base import Source
from connectors.capabilities import TypePlan, export_levels, plan_types
from connectors.http import FhirClient
from connectors.landing import COHORT, REJECTED, TOMBSTONES, LandingRun, StreamProgress, iter_lines
from connectors.ndjson import classify
from connectors.paging import Pager, restart
from connectors.progress import PullProgress
from connectors.settings import RestSettings
from foundation import logs
from foundation.cohort import CohortDefinition
from foundation.errors import AuthenticationFailed, CohortNotFound, SourceProtocolError
from foundation.model.resources import RESOURCE_TYPES, TERMINOLOGY_TYPES
from foundation.terminology import ConceptMapIndex

log = logging.getLogger(__name__)


CHUNK = 50  # patients per scoped search
LISTING_PAGE = 1000  # ids per page of an id-only listing


def _instant(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def changed_since(resource: dict[str, Any], since: datetime | None) -> bool:
    """Whether a resource read whole (no `_lastUpdated` on the server) changed at or after the watermark."""
    if since is None:
        return True
    stamp = (resource.get("meta") or {}).get("lastUpdated")
    when = _instant(stamp) if isinstance(stamp, str) else None
    return when is None or when.tzinfo is None or when >= since


@dataclass(frozen=True)
class CohortSearch:
    """How a REST source with `cohort_only` finds the cohort's patients: by the procedure codes that mean the
    definition's kinds, in the canonical ValueSets and in the centre's ConceptMaps (`conceptmaps`, configured as
    files, and those its server publishes, as they land: pulled first). Finding none is an error unless the centre
    `may_be_empty`."""

    definition: CohortDefinition = field(default_factory=CohortDefinition)
    conceptmaps: tuple[dict[str, Any], ...] = ()
    may_be_empty: bool = False

    def codes(self, landed: list[Any]) -> tuple[str, ...]:
        """`system|code` of every procedure coding that selects a patient, with the ConceptMaps `landed` too."""
        maps = [*self.conceptmaps,
                *(m for m in landed if isinstance(m, dict) and m.get("resourceType") == "ConceptMap")]
        return self.definition.search_codes(ConceptMapIndex.from_resources(maps))


class RestSource(Source):
    kind = "rest"

    def __init__(self, settings: RestSettings, resource_types: tuple[str, ...] = RESOURCE_TYPES,
                 client: FhirClient | None = None, cohort: CohortSearch | None = None) -> None:
        """`client`: an open connection to share (a bulk source searches its server's ConceptMaps with its own).
        `cohort`: how to find the cohort's patients when the settings say `cohort_only`."""
        super().__init__(resource_types)
        self.settings = settings
        # Scope to the cohort: only patients with a procedure of the cohort's kinds, and their resources. None:
        # everything on the server (the transform keeps the cohort).
        self.cohort = (cohort or CohortSearch()) if settings.cohort_only else None
        self.client = client or FhirClient(settings)

    def close(self) -> None:
        self.client.close()

    def fingerprint(self) -> dict[str, Any]:
        s = self.settings
        return {"kind": self.kind, "base_url": self.client.base_url, "types": list(self.resource_types),
                "page_size": s.page_size, "cohort": self.cohort.definition.as_record() if self.cohort else None,
                "server_features": s.server_features.model_dump()}

    def pull(self, run: LandingRun, progress: PullProgress) -> dict[str, Any]:
        capability = self.client.capability()
        self.pull_types(run, self.resource_types, progress, capability)
        stats = self.client.stats
        return {"source": {"kind": self.kind, "base_url": self.client.base_url},
                "server": {"software": capability.get("software", {}), "fhirVersion": capability.get("fhirVersion"),
                           "export_levels": export_levels(capability)},
                "plan": {t: run.progress[t].state["plan"] for t in self.resource_types},
                "deletions": {t: run.progress[t].state["deletions"] for t in self.resource_types},
                "requests": {"count": stats.requests, "retries": stats.retries, "bytes": stats.bytes}}

    def pull_types(self, run: LandingRun, resource_types: tuple[str, ...], progress: PullProgress,
                   capability: dict[str, Any]) -> None:
        """Search each type (a few at a time) into its stream, then find its deletions since the last run. Types
        searched per patient wait for the patients: the cohort, or every Patient (pulled first)."""
        plans = plan_types(capability, resource_types, self.settings.server_features)
        per_patient = [t for t in resource_types if self._scoped(t, plans[t])]
        if per_patient:
            # first what finding the patients needs: every Patient, or the ConceptMaps that translate the codes
            first = [t for t in resource_types if (t in TERMINOLOGY_TYPES if self.cohort else t == "Patient")]
            for resource_type in first:
                self._pull_type(run, resource_type, progress, plans[resource_type])
            self._find_patients(run, plans.get("Procedure"))
        pending = [t for t in resource_types if not run.progress[t].state.get("deletions")]
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="pull") as pool:
            pull = logs.in_context(self._pull_type)  # the pull's log fields (centre, step) in every thread
            for future in [pool.submit(pull, run, t, progress, plans[t]) for t in pending]:
                future.result()

    def _scoped(self, resource_type: str, plan: TypePlan) -> bool:
        """Whether the type is searched per chunk of patients (the cohort's, or within patient compartments)."""
        if resource_type in TERMINOLOGY_TYPES:
            return False
        return self.cohort is not None or (not plan.system_search and resource_type != "Patient")

    def _search_url(self, resource_type: str, plan: TypePlan, since: str | None, patients: list[str] | None = None,
                    page_size: int | None = None, **extra: Any) -> str:
        params: dict[str, Any] = dict(extra)
        if plan.count:
            params["_count"] = page_size or self.settings.page_size
        if since:
            params["_lastUpdated"] = f"ge{since}"
        if patients is not None:
            ids = [p.rsplit("/", 1)[-1] for p in patients]
            params.update({"_id": ",".join(ids)} if resource_type == "Patient"
                          else {"patient": ",".join(f"Patient/{i}" for i in ids)})
        return f"{self.client.base_url}/{resource_type}?{urlencode(params)}"

    def _pager(self, run: LandingRun) -> Pager:
        return Pager(self.client, self.settings, run.checkpoint)

    def _find_patients(self, run: LandingRun, procedures: TypePlan | None) -> None:
        """The patients searched one chunk at a time: the cohort (patients with an ILP procedure) or, on a server
        that searches only within patient compartments, every patient; split into those new since the last run
        (searched whole) and those known (searched since the watermark)."""
        state = run.progress.setdefault(COHORT, StreamProgress())
        if state.done:
            return
        members = self._cohort(run, procedures, self.cohort) if self.cohort else self._every_patient(run)
        previous = self._previous_patients(run)
        run.stream(COHORT).append([{"patient": p} for p in sorted(members)])
        state.state.update(known=sorted(members & previous), new=sorted(members - previous))
        state.done = True
        run.checkpoint()

    def _cohort(self, run: LandingRun, procedures: TypePlan | None, cohort: CohortSearch) -> set[str]:
        """The patients of the Procedures coded with the cohort's codes (an error when there are none and the
        centre may not be empty)."""
        if procedures is not None and not procedures.system_search:
            raise SourceProtocolError(
                f"{self.client.base_url} searches Procedures only within a patient compartment, so the ILP cohort "
                "cannot be found by code across patients: set cohort_only = false for this source (every patient "
                "is pulled, and the transform keeps the cohort), or export a Group of the cohort with a bulk source")
        landed = [m for folder in (*run.zone.runs(), run.folder) for t in TERMINOLOGY_TYPES
                  for m in iter_lines(folder / f"{t}.ndjson")]
        codes = cohort.codes(landed)
        query = urlencode({"code": ",".join(codes),
                           **({"_count": self.settings.page_size} if procedures is None or procedures.count else {})})
        members: set[str] = set()
        procedures_found = 0

        def collect(_: httpx.Response, bundle: dict[str, Any]) -> None:
            nonlocal procedures_found
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") or {}
                procedures_found += resource.get("resourceType") == "Procedure"
                reference = (resource.get("subject") or {}).get("reference", "")
                if "Patient/" in reference:
                    members.add("Patient/" + reference.rsplit("/", 1)[-1])

        self._pager(run).walk(f"{self.client.base_url}/Procedure?{query}", StreamProgress(),
                              "cohort (procedure code) search", collect)
        if not members and not cohort.may_be_empty:
            raise CohortNotFound(
                f"{self.client.base_url}: the cohort search found no patient ({cohort.definition.describe()}): it "
                f"searched Procedure?code= with {len(codes)} codes ({', '.join(codes)}) and the server answered "
                f"{procedures_found} Procedures with a patient subject. If the centre codes the procedure otherwise, "
                "map its code in the centre's ConceptMap (docs/onboarding.md); if its server cannot search "
                "Procedures by code, set cohort_only = false (every patient is pulled, and the transform keeps the "
                "cohort)")
        return members

    def _every_patient(self, run: LandingRun) -> set[str]:
        """Every patient not deleted: those landed before, and in this run, less this run's deletions."""
        live = set(run.zone.live_ids("Patient"))
        live |= {str(p.get("id")) for p in iter_lines(run.folder / "Patient.ndjson")}
        live -= {str(t.get("id")) for t in iter_lines(run.folder / f"{TOMBSTONES}.ndjson")
                 if t.get("resourceType") == "Patient"}
        return {f"Patient/{i}" for i in live}

    def _previous_patients(self, run: LandingRun) -> set[str]:
        runs = run.zone.runs()
        return {str(line["patient"]) for line in iter_lines(runs[-1] / f"{COHORT}.ndjson")} if runs else set()

    def _queries(self, run: LandingRun, resource_type: str, since: str | None, plan: TypePlan,
                 **extra: Any) -> list[str]:
        """The searches that cover a type: one, or one per chunk of patients (new ones without `since`)."""
        if not self._scoped(resource_type, plan):
            return [self._search_url(resource_type, plan, since, **extra)]
        patients = run.progress[COHORT].state
        return [self._search_url(resource_type, plan, window, group[i:i + CHUNK], **extra)
                for group, window in ((patients["new"], None), (patients["known"], since))
                for i in range(0, len(group), CHUNK)]

    def _pull_type(self, run: LandingRun, resource_type: str, progress: PullProgress, planned: TypePlan) -> None:
        state = run.progress[resource_type]
        plan = TypePlan(**state.state.setdefault("plan", planned.describe()))  # a resume keeps its plan
        since = run.since.get(resource_type)
        while not state.done:
            try:
                self._search(run, resource_type, progress, plan, since)
            except (SourceProtocolError, AuthenticationFailed) as error:
                plan = self._fall_back(resource_type, plan, since, error, state)
                continue
            state.done = True
            state.next_url = None
            run.checkpoint()
        if not state.state.get("deletions"):
            state.state["deletions"] = self._deletions(run, resource_type, plan, since, state)
            run.checkpoint()
        progress.finish(resource_type)

    def _fall_back(self, resource_type: str, plan: TypePlan, since: str | None, error: Exception,
                   state: StreamProgress) -> TypePlan:
        """The plan without what the server refused, searching the type again from its first query; or the error
        with what to do about it."""
        status = error.status if isinstance(error, SourceProtocolError | AuthenticationFailed) else None
        if plan.count and status == 400 and ("_count" in str(error) or not (plan.last_updated and since)):
            note = (f"{resource_type}: the server refused _count ({error}); searching with its own page size (set "
                    "server_features = { count = false } to skip asking)")
            plan = replace(plan, count=False)
        elif plan.last_updated and since and status == 400:
            note = (f"{resource_type}: the server refused _lastUpdated ({error}); reading the type whole and keeping "
                    "what changed")
            plan = replace(plan, last_updated=False)
        elif deletions.refused(error) and not self._scoped(resource_type, plan) \
                and self._scoped(resource_type, replace(plan, system_search=False)):  # searched across patients
            raise SourceProtocolError(
                f"{self.client.base_url} refused a search of every {resource_type} ({error}). If it searches "
                f"clinical types only within a patient compartment, set server_features = {{ system_search = "
                f"false }} in the source's configuration", status) from None
        else:
            raise error
        log.warning("%s", note)
        state.state.setdefault("warnings", []).append(note)
        state.state["plan"] = plan.describe()
        restart(state)
        return plan

    def _search(self, run: LandingRun, resource_type: str, progress: PullProgress, plan: TypePlan,
                since: str | None) -> None:
        """Land every query of the type from its checkpointed one on (the cursor notes if one never held still)."""
        state = run.progress[resource_type]
        listing = since is not None and not plan.last_updated  # read whole, only changes land: note every id
        keep_since = None if plan.last_updated or since is None else _instant(since)
        queries = self._queries(run, resource_type, since if plan.last_updated else None, plan)
        stream = run.stream(resource_type)

        def land(response: httpx.Response, bundle: dict[str, Any]) -> None:
            resources, rejected = self._split(bundle, resource_type, str(response.url))
            if listing:
                deletions.list_ids(run, resource_type, bundle)
            kept = [r for r in resources if changed_since(r, keep_since)]
            state.state["unchanged"] = state.state.get("unchanged", 0) + len(resources) - len(kept)
            added = stream.append(kept)
            if rejected:
                run.stream(REJECTED).append(rejected)
            progress.advance(resource_type, added, bundle.get("total") if len(queries) == 1 else None)

        self._pager(run).walk_all(queries, state, f"{resource_type} search", land)

    def _deletions(self, run: LandingRun, resource_type: str, plan: TypePlan, since: str | None,
                   state: StreamProgress) -> dict[str, Any]:
        """Deletions since the last run, the way this server allows; what the manifest says about them."""
        pager = self._pager(run)
        listed_by_search = since is None or not plan.last_updated
        if plan.history and since and not listed_by_search:
            try:
                return {"method": "history", "deleted": deletions.history(pager, run, resource_type, since)}
            except (SourceProtocolError, AuthenticationFailed) as error:
                if not deletions.refused(error):
                    raise
                note = (f"{resource_type}: the server refused its _history (HTTP {error.status}); finding deletions "
                        "by ids instead")
                log.warning("%s", note)
                state.state.setdefault("warnings", []).append(note)
                state.state["plan"] = replace(plan, history=False).describe()
        elif not listed_by_search:
            due = deletions.reconciliation_due(run, resource_type, self.settings.reconcile_every_days)
            if due:  # said in the log: a deletion stays published until then
                log.info("%s: deletions not checked this run (the server lists no _history); the next id "
                         "reconciliation is due %s (reconcile_every_days)", resource_type, due)
                return {"method": "not checked this run", "next_id_reconciliation": due}
        if since is None and not run.zone.runs():
            state.state["reconciled_at"] = state.watermark
            return {"method": "first pull: nothing landed before"}
        if listed_by_search:
            listed_at, stable = state.watermark, bool(state.state.get("stable", True))
        else:
            listed_at, stable = self._list_ids(run, resource_type, plan)
        if not stable or listed_at is None:
            return {"method": "not checked this run: the id listing did not hold still"}
        found = deletions.reconcile(pager, run, resource_type, listed_at, whole=since is None)
        state.state["reconciled_at"] = listed_at
        if listed_by_search:
            method = "id reconciliation with the full search"
        elif run.progress[deletions.listed_stream(resource_type)].state.get("elements", True):
            method = "id reconciliation (_elements=id)"
        else:
            method = "id reconciliation (ids of whole resources: _elements refused)"
        return {"method": method, **found}

    def _list_ids(self, run: LandingRun, resource_type: str, plan: TypePlan) -> tuple[str | None, bool]:
        """Every id the server serves now, in its cheapest listing; (server time it began, whether it held still)."""
        cursor = run.progress.setdefault(deletions.listed_stream(resource_type), StreamProgress())
        while True:
            # `_elements` is optional in FHIR: a server that refuses it lists whole resources (their ids are kept)
            extra = {"_elements": "id"} if cursor.state.get("elements", True) else {}
            queries = self._queries(run, resource_type, None, plan, page_size=LISTING_PAGE, **extra)
            try:
                stable = self._pager(run).walk_all(queries, cursor, f"{resource_type} id listing",
                                                   lambda _, bundle: deletions.list_ids(run, resource_type, bundle))
                return cursor.watermark, stable
            except SourceProtocolError as error:
                if not (extra and error.status == 400):
                    raise
                log.warning("%s: the server refused _elements=id (%s); listing whole resources", resource_type, error)
                cursor.state["elements"] = False
                restart(cursor)

    def _split(self, bundle: dict[str, Any], resource_type: str, page_url: str
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Matches of the searched type; anything else in the page (outcomes, strays) goes to the rejects, each
        keyed by the page's URL and its place in the page (the same page read again rejects nothing twice)."""
        resources, rejected = [], []
        for n, entry in enumerate(bundle.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            mode = (entry.get("search") or {}).get("mode", "match") if isinstance(entry, dict) else "match"
            if isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome":
                log.warning("%s search page carries an OperationOutcome: %s", resource_type, resource.get("issue"))
                reason: str | None = "OperationOutcome in a search page"
            elif isinstance(resource, dict) and resource.get("resourceType") == resource_type and mode == "match":
                reason = classify(resource, (resource_type,))
            else:
                reason = f"entry is not a {resource_type} match"
            if reason is None and isinstance(resource, dict):
                resources.append(resource)
            else:
                rejected.append({"source": f"{resource_type} search", "line": f"{page_url}#{n}",
                                 "reason": reason, "entry": entry})
        return resources, rejected
