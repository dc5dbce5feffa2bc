// Bulk Data $export (system, Patient and Group level): a snapshot taken at kick-off, ready after a few polls,
// served as NDJSON files (split every `linesPerFile`), with deletions since `_since` and an error file.
// Switchable misbehaviour: file URLs on another host (`fileHost`, with or without `requiresAccessToken`), a huge
// error file with a broken line (`errorLines`), and hostile names in the manifest (`hostileNames`).
import crypto from 'node:crypto';

const EXPORT_TYPES = ['Patient', 'Condition', 'Procedure', 'Observation', 'MedicationAdministration'];
const SUPPORTED = new Set(EXPORT_TYPES.concat(['Group']));

function patientOf(resource) {
  if (resource.resourceType === 'Patient') return resource.id;
  const ref = resource.subject?.reference ?? resource.patient?.reference ?? '';
  return ref.startsWith('Patient/') ? ref.slice(8) : null;
}

function ndjson(resources) {
  return resources.map((r) => JSON.stringify(r)).join('\n') + (resources.length ? '\n' : '');
}

export class Bulk {
  constructor(repo) {
    this.repo = repo;
    this.reset();
  }

  reset() {
    this.jobs = new Map();
    this.pollsBeforeReady = 2;
    this.retryAfter = '0';
    this.linesPerFile = 500;
    this.gzip = false;
    this.neverFinish = false;
    this.fileHost = null;
    this.requiresAccessToken = null; // null: as the server's auth says
    this.errorLines = 0;
    this.hostileNames = false;
    this.listsDeleted = true; // an incremental export's manifest lists deletions (`deleted`); servers may omit them
    this.fileRequests = []; // { name, authorization } per file download, so tests see where the token went
  }

  configure(cfg) {
    this.pollsBeforeReady = cfg.pollsBeforeReady ?? this.pollsBeforeReady;
    this.retryAfter = String(cfg.retryAfter ?? this.retryAfter);
    this.linesPerFile = cfg.linesPerFile ?? this.linesPerFile;
    this.gzip = cfg.gzip ?? this.gzip;
    this.neverFinish = cfg.neverFinish ?? this.neverFinish;
    this.fileHost = cfg.fileHost ?? this.fileHost;
    this.requiresAccessToken = cfg.requiresAccessToken ?? this.requiresAccessToken;
    this.errorLines = cfg.errorLines ?? this.errorLines;
    this.hostileNames = cfg.hostileNames ?? this.hostileNames;
    this.listsDeleted = cfg.listsDeleted ?? this.listsDeleted;
  }

  fileUrl(baseUrl, id, name) {
    const url = new URL(`${baseUrl}/_bulk/files/${id}/${encodeURIComponent(name)}`);
    if (this.fileHost) url.hostname = this.fileHost;
    return url.toString();
  }

  recordFileRequest(name, authorization) {
    this.fileRequests.push({ name: decodeURIComponent(name), authorization });
  }

  needsToken(id) {
    return this.jobs.get(id)?.manifest.requiresAccessToken ?? true;
  }

  /** Start an export; returns [jobId, null] or [null, error message]. */
  async kickOff({ level, groupId, types, since, baseUrl, requestUrl, requiresAccessToken }) {
    const requested = types ? types.split(',').map((t) => t.trim()).filter(Boolean) : EXPORT_TYPES;
    let patients = null;
    if (level === 'group') {
      const group = this.repo.all('Group').find((g) => g.id === groupId);
      if (!group) return [null, `Group/${groupId} not found`];
      patients = new Set((group.member ?? []).map((m) => m.entity?.reference?.replace(/^Patient\//, '')));
    } else if (level === 'patient') {
      patients = new Set(this.repo.all('Patient').map((p) => p.id));
    }
    const transactionTime = new Date().toISOString();
    const id = crypto.randomBytes(8).toString('hex');
    const files = new Map();
    const output = [];
    const deleted = [];
    const errors = [];
    for (const type of requested) {
      if (!SUPPORTED.has(type)) {
        errors.push({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported',
          diagnostics: `resource type ${type} is not exported by this server` }] });
        continue;
      }
      const selected = this.repo.all(type).filter((r) => (!since || r.meta.lastUpdated >= since)
        && (!patients || patients.has(patientOf(r))));
      for (let start = 0, n = 1; start < selected.length; start += this.linesPerFile, n += 1) {
        const chunk = selected.slice(start, start + this.linesPerFile);
        const name = `${type}-${n}.ndjson`;
        files.set(name, ndjson(chunk));
        output.push({ type, url: this.fileUrl(baseUrl, id, name), count: chunk.length });
      }
      if (since && this.listsDeleted) {
        const gone = this.repo.changesSince(type, since).filter((c) => c.deleted
          && (!patients || patients.has(patientOf(this.repo.lastVersion(c.resourceType, c.id) ?? {}))));
        if (gone.length) {
          const name = `${type}-deleted.ndjson`;
          files.set(name, ndjson(gone.map((c) => ({ resourceType: 'Bundle', type: 'transaction',
            entry: [{ request: { method: 'DELETE', url: `${c.resourceType}/${c.id}` } }] }))));
          deleted.push({ type: 'Bundle', url: this.fileUrl(baseUrl, id, name), count: gone.length });
        }
      }
    }
    for (let n = 0; n < this.errorLines; n += 1) {
      errors.push({ resourceType: 'OperationOutcome', id: `error-${n}`, issue: [{ severity: 'error',
        code: 'processing', diagnostics: `resource ${n} could not be exported: ${'x'.repeat(200)}` }] });
    }
    if (errors.length) {
      const text = ndjson(errors) + (this.errorLines ? '{"resourceType": "OperationOutcome", "issue": [\n' : '');
      files.set('errors.ndjson', text);
      errors.length = 0;
      errors.push({ type: 'OperationOutcome', url: this.fileUrl(baseUrl, id, 'errors.ndjson') });
    }
    if (this.hostileNames) {
      const name = '../../../escape.ndjson';
      files.set(name, ndjson([{ resourceType: '../../../escape', id: '../../../escape' },
        { resourceType: 'Patient', id: '../../../escape-patient', meta: { versionId: '1', lastUpdated: transactionTime } }]));
      output.push({ type: '../../../escape', url: this.fileUrl(baseUrl, id, name), count: 2 });
    }
    const manifest = { transactionTime, request: requestUrl, output, deleted, error: errors,
      requiresAccessToken: this.requiresAccessToken ?? requiresAccessToken };
    this.jobs.set(id, { polls: 0, manifest, files });
    return [id, null];
  }

  /** [httpStatus, headers, body] for a status poll, or null for an unknown job. */
  status(id) {
    const job = this.jobs.get(id);
    if (!job) return null;
    job.polls += 1;
    if (this.neverFinish || job.polls <= this.pollsBeforeReady) {
      const progress = `${Math.round((100 * job.polls) / (this.pollsBeforeReady + 1))}% of the snapshot written`;
      return [202, { 'X-Progress': progress, 'Retry-After': this.retryAfter }, null];
    }
    return [200, {}, job.manifest];
  }

  file(id, name) {
    return this.jobs.get(id)?.files.get(name) ?? null;
  }

  delete(id) {
    return this.jobs.delete(id);
  }
}
