/**
 * The buyers an api node knows to exist, so a validly signed token whose
 * `sub` is no user (a token signed for an id that was never created) is
 * refused at the door (401) instead of being accepted and failed later by
 * settlement (UNKNOWN_BUYER).
 *
 * Cheap on the hot path: the node loads the ids of every live user at start
 * (up to STAMPEDE_KNOWN_BUYERS_MAX, in pages), and a request by a buyer it
 * knows costs one in-memory lookup. A buyer it does not know yet (created
 * after the node started, or past the cap) is looked up in Postgres once:
 * the lookups of one turn of the event loop go as ONE query, and the answer
 * is remembered (a known buyer until evicted, least recently used first; an
 * unknown id for UNKNOWN_TTL_MS, so a flood of one forged id costs one query
 * per interval, and a buyer created meanwhile waits that long at most).
 *
 * When Postgres does not answer, the node lets the buyer through rather
 * than refuse every new buyer during an outage (purchases are decided in
 * Redis alone): settlement still fails the purchase of an id that is no
 * user, with its stock released (src/sales/settlement.ts). Deleted buyers
 * are refused by DeletedUsers (src/buyers/deletion.ts), before this.
 */
import { LRUCache } from 'lru-cache';
import type { Pool } from '../platform/db/pool.js';
import type { Logger } from '../platform/log.js';

/** How long an id Postgres says is no user is refused without asking again. */
export const UNKNOWN_TTL_MS = 5_000;
/** Ids read per page at start. */
const PRELOAD_PAGE = 50_000;

export class KnownBuyers {
  private readonly known: LRUCache<string, true>;
  private readonly unknown = new LRUCache<string, true>({ max: 100_000, ttl: UNKNOWN_TTL_MS });
  /** Ids waiting for this turn's query, with who waits for them. */
  private waiting = new Map<string, ((known: boolean) => void)[]>();
  private lastOutageLog = 0;
  /** Since start: Postgres lookups (queries), and buyers let through because Postgres did not answer. */
  lookups = 0;
  letThrough = 0;

  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly max: number) {
    this.known = new LRUCache<string, true>({ max });
  }

  /** Reads the ids of live users (up to the cap), page by page; returns how many. */
  async preload(): Promise<number> {
    let after = '';
    let n = 0;
    while (n < this.max) {
      const { rows } = await this.pool.query<{ id: string }>(
        'SELECT id FROM users WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2', [after, Math.min(PRELOAD_PAGE, this.max - n)]);
      for (const { id } of rows) this.known.set(id, true);
      n += rows.length;
      if (rows.length < PRELOAD_PAGE) break;
      after = rows[rows.length - 1]!.id;
    }
    return n;
  }

  /** A buyer created on this node: known at once. */
  add(id: string): void {
    this.unknown.delete(id);
    this.known.set(id, true);
  }

  /** Buyers just created on this node (returned as given). */
  addAll<B extends { id: string }>(buyers: B[]): B[] {
    for (const b of buyers) this.add(b.id);
    return buyers;
  }

  /** true: a user; false: recently found to be none; undefined: not known either way (look it up). */
  status(id: string): boolean | undefined {
    if (this.known.get(id)) return true;
    if (this.unknown.get(id)) return false;
    return undefined;
  }

  /** Whether the id is a user, asked of Postgres with the other ids of this turn. */
  lookup(id: string): Promise<boolean> {
    return new Promise((resolve) => {
      const first = this.waiting.size === 0;
      const list = this.waiting.get(id);
      if (list) list.push(resolve);
      else this.waiting.set(id, [resolve]);
      if (first) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.waiting;
    this.waiting = new Map();
    const ids = [...batch.keys()];
    let found: Set<string>;
    try {
      this.lookups++;
      const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM users WHERE id = ANY($1::text[]) AND deleted_at IS NULL', [ids]);
      found = new Set(rows.map((r) => r.id));
    } catch (err) {
      this.letThrough += ids.length;
      if (Date.now() - this.lastOutageLog > 10_000) {
        this.lastOutageLog = Date.now();
        this.log.warn({ err, buyers: ids.length }, 'could not look buyers up in Postgres; letting them through (settlement fails any that is no user)');
      }
      for (const waiters of batch.values()) for (const w of waiters) w(true);
      return;
    }
    for (const [id, waiters] of batch) {
      const known = found.has(id);
      if (known) this.known.set(id, true);
      else this.unknown.set(id, true);
      for (const w of waiters) w(known);
    }
  }
}
