// Switchable paging misbehaviour, as real servers show it: a smaller page size than asked for, next links that
// loop back or point to another host, and a resource deleted while a client is paging (offsets shift under it,
// and the total changes).
export class Paging {
  constructor() {
    this.reset();
  }

  reset() {
    this.maxCount = 0; // cap _count (next links then carry the capped value)
    this.loop = false; // the next link of every page after the first points back to the first page
    this.nextHost = null; // next links name this host instead of ours (same port)
    this.deleteDuring = null; // { type, times = 1 }: when a page after the first is asked for, delete that type's first resource (in `times` searches)
    this.outcomes = false; // every page after the first also carries an OperationOutcome entry (search mode "outcome")
  }

  configure(cfg) {
    this.reset();
    this.maxCount = cfg.maxCount ?? 0;
    this.loop = cfg.loop ?? false;
    this.nextHost = cfg.nextHost ?? null;
    this.deleteDuring = cfg.deleteDuring ? { times: 1, armed: true, ...cfg.deleteDuring } : null;
    this.outcomes = cfg.outcomes ?? false;
  }

  /** The page with an OperationOutcome among its entries, as servers add warnings mid-search. */
  withOutcome(bundle, offset) {
    if (!this.outcomes || offset === 0) return bundle;
    const warning = { resourceType: 'OperationOutcome', issue: [{ severity: 'warning', code: 'incomplete',
      diagnostics: `page at offset ${offset} may be incomplete` }] };
    bundle.entry = [...(bundle.entry ?? []), { search: { mode: 'outcome' }, resource: warning }];
    return bundle;
  }

  capCount(query) {
    const asked = Number(query.get('_count') ?? 0);
    if (this.maxCount && asked > this.maxCount) query.set('_count', String(this.maxCount));
  }

  /** The next link as this server misbehaves: pointing back to the first page, or naming another host. */
  misdirect(next, offset) {
    const url = new URL(next);
    if (this.loop && offset > 0) url.searchParams.set('_offset', '0');
    if (this.nextHost) url.hostname = this.nextHost;
    return url;
  }

  /** The resource to delete before serving this page (in the first `times` searches that page on), or null. */
  deletionDue(type, offset, resources) {
    const due = this.deleteDuring;
    if (!due || due.type !== type) return null;
    if (offset === 0) due.armed = true; // a search starts: one deletion in it
    if (offset === 0 || !due.armed || !resources.length) return null;
    due.armed = false;
    due.times -= 1;
    if (due.times <= 0) this.deleteDuring = null;
    return resources[0];
  }
}
