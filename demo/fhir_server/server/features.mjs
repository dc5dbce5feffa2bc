// Switchable server features, as hospital servers lack them: no type-level _history, no _lastUpdated, a page
// size of their own whatever _count asks, opaque page tokens instead of offsets, and no system-level search
// (clinical types searched only within a patient compartment, as some EHR vendors do). The CapabilityStatement
// says what is missing unless `honest` is off (servers that advertise what they do not serve).
import crypto from 'node:crypto';

const COMBINATION = 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination';
const COMPARTMENT = ['patient', 'subject'];
const COMPARTMENT_TYPES = new Set(['Condition', 'Procedure', 'Observation', 'MedicationAdministration']);

export class Features {
  constructor() {
    this.reset();
  }

  reset() {
    this.history = true; // type-level _history
    this.lastUpdated = true; // the _lastUpdated search parameter (else: 400 unknown parameter)
    this.count = true; // _count honoured (else: pages of `pageSize` whatever is asked)
    this.pageSize = 10;
    this.opaquePaging = false; // next links are `?_page=<token>`, a cursor the server keeps
    this.systemSearch = true; // searches of types other than Patient without a patient are refused
    this.honest = true; // the CapabilityStatement says what is missing
    this.strict = false; // parameters it lacks are refused (400), not ignored: _count without `count`, and _elements
    this.listsCount = true; // the CapabilityStatement lists _count among the search parameters (most do not)
    this.pages = new Map();
  }

  configure(cfg) {
    this.reset();
    for (const key of ['history', 'lastUpdated', 'count', 'pageSize', 'opaquePaging', 'systemSearch', 'honest', 'strict', 'listsCount']) {
      if (cfg[key] !== undefined) this[key] = cfg[key];
    }
  }

  /** The resource's CapabilityStatement entry as this server describes it. */
  describe(type, interactions, searchParams) {
    const honest = this.honest;
    const entry = {
      type,
      interaction: interactions.filter((code) => !honest || this.history || code !== 'history-type')
        .map((code) => ({ code })),
      searchParam: searchParams.filter((name) => !honest || (this.lastUpdated || name !== '_lastUpdated')
        && (this.count || name !== '_count') && (this.listsCount || name !== '_count'))
        .map((name) => ({ name, type: name === '_lastUpdated' ? 'date' : name === 'patient' ? 'reference' : 'token' })),
    };
    if (honest && !this.systemSearch && COMPARTMENT_TYPES.has(type)) {
      entry.extension = [{ url: COMBINATION, extension: [{ url: 'required', valueString: 'patient' }] }];
    }
    return entry;
  }

  /** [status, OperationOutcome diagnostics] when this server refuses the request, else null. */
  refusal(method, segments, query) {
    if (method !== 'GET' || !segments.length || segments[0].startsWith('_') || segments[0].startsWith('$')) return null;
    const [type, second] = segments;
    if (second === '_history' && segments.length === 2) {
      if (!this.history) return [404, 'type-level _history is not supported by this server'];
      if (!this.systemSearch && COMPARTMENT_TYPES.has(type)) return [403, 'history is only available within a patient compartment'];
      return null;
    }
    if (segments.length !== 1) return null;
    if (!this.lastUpdated && query.has('_lastUpdated')) return [400, 'Unknown search parameter "_lastUpdated"'];
    if (this.strict && !this.count && query.has('_count')) return [400, 'Unknown search parameter "_count"'];
    if (this.strict && query.has('_elements')) return [400, 'Unknown search parameter "_elements"'];
    if (!this.systemSearch && COMPARTMENT_TYPES.has(type) && !COMPARTMENT.some((name) => query.has(name))) {
      return [403, `system-level search of ${type} is not allowed: search within a patient compartment (patient=...)`];
    }
    return null;
  }

  /** The query as the server applies it: its own page size when it ignores _count. */
  adjust(query) {
    if (!this.count) query.set('_count', String(this.pageSize));
  }

  /** The next link as this server writes it: the offset link itself, or an opaque token standing for it. */
  nextLink(next, baseUrl) {
    if (this.strict && !this.count) next.searchParams.delete('_count'); // its own links carry no _count either
    if (!this.opaquePaging) return next;
    const token = crypto.randomBytes(12).toString('base64url');
    this.pages.set(token, next.toString());
    return new URL(`${baseUrl}?_page=${token}`);
  }

  /** The URL an opaque token stands for, or null when it is unknown (expired or invented). */
  resolve(token) {
    return this.pages.get(token) ?? null;
  }
}
