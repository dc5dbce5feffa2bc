// Switchable faults: every Nth data request fails in one of several ways, so clients must retry and resume.
export class Faults {
  constructor() {
    this.reset();
  }

  reset() {
    this.every = 0;
    this.kinds = [];
    this.retryAfter = '0'; // seconds, or 'date' for an HTTP-date
    this.delayMs = 0;
    this.count = 0;
    this.injected = 0;
  }

  configure(cfg) {
    this.reset();
    this.every = cfg.every ?? 0;
    this.kinds = cfg.kinds ?? [];
    this.retryAfter = String(cfg.retryAfter ?? '0');
    this.delayMs = cfg.delayMs ?? 0;
  }

  /** The fault for this request, or null. Kinds: 429, 500, 503, cut (connection cut mid-body), slow, expire. */
  next() {
    if (!this.every || this.kinds.length === 0) return null;
    this.count += 1;
    if (this.count % this.every !== 0) return null;
    const kind = this.kinds[(this.count / this.every - 1) % this.kinds.length];
    this.injected += 1;
    return kind;
  }

  retryAfterHeader() {
    if (this.retryAfter === 'date') return new Date(Date.now() + 1000).toUTCString();
    return this.retryAfter;
  }
}
