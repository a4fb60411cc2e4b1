/**
 * Failed authentication, throttled per source address: past `limit` 401s
 * within a window, an address's requests that carry credentials are refused
 * (429 with Retry-After) until the window ends, before their token or key is
 * looked at. It lives in each api node's memory, so a valid request pays no
 * Redis call: with no failures in the current windows the check is one size
 * test. An attacker spread over N api nodes gets N times the limit; the
 * limit is per node, and the README says so.
 */
export interface AuthThrottleOptions {
  /** 401s an address may get in one window before it is throttled (0: never throttled). */
  limit: number;
  windowMs: number;
  /** Addresses tracked at most; the oldest window is forgotten past it. */
  maxAddresses?: number;
  now?: () => number;
}

interface Window {
  endsAt: number;
  failures: number;
}

export const MAX_TRACKED_ADDRESSES = 100_000;

export class AuthThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly maxAddresses: number;
  private readonly now: () => number;

  constructor(private readonly options: AuthThrottleOptions) {
    this.maxAddresses = options.maxAddresses ?? MAX_TRACKED_ADDRESSES;
    this.now = options.now ?? Date.now;
  }

  /** Whether any address has failed lately (when not, nothing needs looking up). */
  get watching(): boolean {
    return this.windows.size > 0;
  }

  /** Seconds `address` must wait before presenting credentials again; 0 when it may now. */
  retryAfter(address: string): number {
    const w = this.windows.get(address);
    if (!w) return 0;
    const left = w.endsAt - this.now();
    if (left <= 0) {
      this.windows.delete(address);
      return 0;
    }
    return w.failures > this.options.limit ? Math.ceil(left / 1000) : 0;
  }

  /** Counts a 401 answered to `address`. */
  failed(address: string): void {
    if (this.options.limit === 0) return;
    const now = this.now();
    const w = this.windows.get(address);
    if (w && w.endsAt > now) {
      w.failures += 1;
      return;
    }
    if (w) this.windows.delete(address);
    if (this.windows.size >= this.maxAddresses) this.forgetOldest(now);
    this.windows.set(address, { endsAt: now + this.options.windowMs, failures: 1 });
  }

  /** Drops ended windows, or else the oldest one (insertion order is age order). */
  private forgetOldest(now: number): void {
    for (const [address, w] of this.windows) {
      if (w.endsAt <= now) this.windows.delete(address);
    }
    if (this.windows.size >= this.maxAddresses) this.windows.delete(this.windows.keys().next().value!);
  }
}
