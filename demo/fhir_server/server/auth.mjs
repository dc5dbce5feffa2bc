// Authentication for the test server: none, HTTP basic, a static bearer token, or OAuth2 client credentials
// (client secret, or SMART Backend Services private_key_jwt checked against the client's JWKS).
import crypto from 'node:crypto';
import * as jose from 'jose';

export class Auth {
  constructor() {
    this.reset();
  }

  reset() {
    this.mode = 'none'; // none | basic | bearer | oauth
    this.username = null;
    this.password = null;
    this.staticToken = null;
    this.clients = new Map(); // clientId -> { secret?, jwks? }
    this.tokens = new Map(); // access token -> expiry (ms since epoch)
    this.issued = []; // every access token handed out, so tests can look for them where they must not be
    this.seenJti = new Set();
    this.tokenLifetime = 300;
  }

  configure(cfg) {
    this.reset();
    this.mode = cfg.mode ?? 'none';
    this.username = cfg.username ?? null;
    this.password = cfg.password ?? null;
    this.staticToken = cfg.token ?? null;
    this.tokenLifetime = cfg.tokenLifetime ?? 300;
    for (const client of cfg.clients ?? []) {
      this.clients.set(client.clientId, { secret: client.secret, jwks: client.jwks });
    }
  }

  /** Revoke every access token (a static bearer token is replaced by one the client does not know). */
  expireTokens() {
    this.tokens.clear();
    if (this.mode === 'bearer') this.staticToken = crypto.randomBytes(12).toString('hex');
  }

  /** null when the request may proceed, else the reason it may not. */
  check(headers) {
    const header = headers.authorization ?? '';
    switch (this.mode) {
      case 'none':
        return null;
      case 'basic': {
        const expected = 'Basic ' + Buffer.from(`${this.username}:${this.password}`).toString('base64');
        return header === expected ? null : 'missing or wrong basic credentials';
      }
      case 'bearer':
        return header === `Bearer ${this.staticToken}` ? null : 'missing or wrong bearer token';
      case 'oauth': {
        const token = header.startsWith('Bearer ') ? header.slice(7) : null;
        const expiry = token ? this.tokens.get(token) : undefined;
        if (expiry === undefined) return 'unknown access token';
        return expiry > Date.now() ? null : 'access token expired';
      }
      default:
        return `unknown auth mode ${this.mode}`;
    }
  }

  /** The token endpoint: returns [status, body]. */
  async token(headers, form, tokenUrl) {
    if (this.mode !== 'oauth') return [400, { error: 'unsupported_grant_type', error_description: 'no OAuth here' }];
    if (form.get('grant_type') !== 'client_credentials') {
      return [400, { error: 'unsupported_grant_type', error_description: 'only client_credentials' }];
    }
    let clientId;
    try {
      clientId = form.get('client_assertion') ? await this.verifyAssertion(form, tokenUrl) : this.verifySecret(headers, form);
    } catch (error) {
      return [401, { error: 'invalid_client', error_description: error.message }];
    }
    const accessToken = crypto.randomBytes(24).toString('hex');
    this.tokens.set(accessToken, Date.now() + this.tokenLifetime * 1000);
    this.issued.push(accessToken);
    return [200, { access_token: accessToken, token_type: 'bearer', expires_in: this.tokenLifetime,
      scope: form.get('scope') ?? 'system/*.read', client_id: clientId }];
  }

  verifySecret(headers, form) {
    let clientId = form.get('client_id');
    let secret = form.get('client_secret');
    const header = headers.authorization ?? '';
    if (header.startsWith('Basic ')) {
      [clientId, secret] = Buffer.from(header.slice(6), 'base64').toString().split(':');
    }
    const client = this.clients.get(clientId);
    if (!client?.secret || client.secret !== secret) throw new Error('unknown client or wrong secret');
    return clientId;
  }

  async verifyAssertion(form, tokenUrl) {
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      throw new Error('client_assertion_type must be jwt-bearer');
    }
    const assertion = form.get('client_assertion');
    const clientId = jose.decodeJwt(assertion).iss;
    const client = this.clients.get(clientId);
    if (!client?.jwks) throw new Error(`unknown client ${clientId}`);
    const { payload } = await jose.jwtVerify(assertion, jose.createLocalJWKSet(client.jwks), {
      issuer: clientId, subject: clientId, audience: tokenUrl, algorithms: ['RS384', 'ES384'],
      requiredClaims: ['exp', 'jti'],
    });
    if (payload.exp - Date.now() / 1000 > 300) throw new Error('assertion exp more than 5 minutes ahead');
    if (this.seenJti.has(payload.jti)) throw new Error('assertion jti reused');
    this.seenJti.add(payload.jti);
    return clientId;
  }
}
