// A MemoryRepository that keeps a change log, so the server can answer type-level _history (with deletions),
// which Medplum's router does not route.
import { MemoryRepository } from '@medplum/fhir-router';

export class LoggingRepository extends MemoryRepository {
  constructor() {
    super();
    this.changes = []; // { resourceType, id, versionId, lastUpdated, deleted, resource }
  }

  createResourceSync(resource, options, update = false) {
    const existed = this.resources.get(resource.resourceType)?.has(resource.id);
    const saved = super.createResourceSync(resource, options, update);
    this.changes.push({
      resourceType: saved.resourceType, id: saved.id, versionId: saved.meta.versionId,
      lastUpdated: saved.meta.lastUpdated, deleted: false, created: !existed, resource: saved,
    });
    return saved;
  }

  async deleteResource(resourceType, id, options) {
    await super.deleteResource(resourceType, id, options);
    this.changes.push({ resourceType, id, lastUpdated: new Date().toISOString(), deleted: true });
  }

  clear() {
    super.clear();
    this.changes = [];
  }

  /** Changes of one type at or after `since` (an ISO instant), oldest first. */
  changesSince(resourceType, since) {
    return this.changes.filter((c) => c.resourceType === resourceType && (!since || c.lastUpdated >= since));
  }

  /** The last version written of a resource, deleted or not. */
  lastVersion(resourceType, id) {
    for (let i = this.changes.length - 1; i >= 0; i -= 1) {
      const c = this.changes[i];
      if (c.resourceType === resourceType && c.id === id && !c.deleted) return c.resource;
    }
    return null;
  }

  /** Every current resource of a type (no paging): for $export snapshots. */
  all(resourceType) {
    return [...(this.resources.get(resourceType)?.values() ?? [])];
  }
}
