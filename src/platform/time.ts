/**
 * True when an ISO 8601 date-time names a real instant: `new Date` would
 * quietly turn 2030-02-30 into March 2nd.
 */
export function isRealDateTime(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(s);
  if (!m || Number.isNaN(Date.parse(s))) return false;
  const [y, mo, d, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
  const t = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, sec!));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo! - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === sec;
}

/** A wait that a wake-up cuts short: a polling loop waits for its next round or for news, whichever comes first. */
export class Pause {
  private wakeUp?: () => void;

  /** Resolves after `ms`, or at the next wake(). */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** Ends the wait under way, if any. */
  wake(): void {
    this.wakeUp?.();
  }
}

/**
 * A sweep run every `everyMs` (an interval that keeps no process alive);
 * `stop()` ends the schedule and waits for the run under way. A failed run
 * is reported to `onError` and the schedule goes on.
 */
export class Every {
  private timer?: NodeJS.Timeout;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly everyMs: number, private readonly run: () => Promise<unknown>, private readonly onError: (err: unknown) => void) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.run().catch(this.onError);
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
