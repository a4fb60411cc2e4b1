/**
 * Requests generated from the api's OpenAPI document, for the API fuzz
 * (test/integration/fuzz.test.ts): values from each parameter's and body's
 * JSON Schema (fast-check), valid and broken, and the state an answer could
 * have changed (every Redis key of the test database, every row a trigger
 * saw written in Postgres) to prove a refusal changed none of it.
 */
import fc from 'fast-check';
import type { Pool } from '../../src/platform/db/pool.js';
import type { Redis } from '../../src/platform/redis/client.js';

type Json = Record<string, any>;

/** Ids and names the fuzz learnt from answers, offered to every schema whose pattern they match. */
export class IdPool {
  readonly values: string[] = [];
  private readonly seen = new Set<string>();
  readonly apiKeys: string[] = [];
  /** Ids an answer may carry that the fuzz never uses (added only by `add`). */
  private readonly ignored = new Set<string>();

  ignore(ids: Iterable<string>): void {
    for (const id of ids) this.ignored.add(id);
  }

  add(v: string): void {
    if (this.seen.has(v)) return;
    this.seen.add(v);
    this.values.push(v);
  }

  /** Every id-like string in an answer; `apiKey` fields become credentials. */
  harvest(body: unknown): void {
    if (Array.isArray(body)) {
      for (const b of body) this.harvest(b);
    } else if (body !== null && typeof body === 'object') {
      for (const [k, v] of Object.entries(body)) {
        if (k === 'apiKey' && typeof v === 'string' && !this.apiKeys.includes(v)) this.apiKeys.push(v);
        else this.harvest(v);
      }
    } else if (typeof body === 'string' && /^[a-z]{3}_[0-9a-z_]{12,60}$/.test(body) && !this.ignored.has(body)) {
      this.add(body);
    }
  }

  matching(re: RegExp): string[] {
    return this.values.filter((v) => re.test(v));
  }
}

/** One learnt value, chosen when the case runs (the pool grows as answers arrive): an index into the matches. */
interface Learnt { learnt: number; re: RegExp }
const isLearnt = (v: unknown): v is Learnt => typeof v === 'object' && v !== null && (v as Learnt).re instanceof RegExp;

const madeFrom = new Map<string, string[]>();

/** The value with each learnt choice made: the n-th value the pool holds that matches, or one made from the pattern when it holds none. */
export function resolve(v: unknown, pool: IdPool): unknown {
  if (isLearnt(v)) {
    const m = pool.matching(v.re);
    if (m.length) return m[v.learnt % m.length];
    let made = madeFrom.get(v.re.source);
    if (!made) madeFrom.set(v.re.source, made = fc.sample(fc.stringMatching(v.re), { numRuns: 16, seed: 1 }));
    return made[v.learnt % made.length];
  }
  if (Array.isArray(v)) return v.map((x) => resolve(x, pool));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x, pool)]));
  return v;
}

/** Strings that are no id, no number and no name: where a value is expected, each must be refused. */
export const junk: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('', '0', '-1', '1e309', 'NaN', 'null', 'true', '[]', '{}', '__proto__', 'constructor', 'sal_', 'usr_000000000000', 'auc_000000000000x',
    'a'.repeat(300), '\u0000', '%00', '..', ' ', 'SAL_000000000000', '9'.repeat(30), '<script>', "' OR 1=1 --"),
);

const ISO_DATE = /\\d\{4\}-/;

/**
 * Values a schema accepts (most of the time: semantics such as "ends after
 * it starts" are the route's). Strings with a pattern prefer values learnt
 * from answers, so ids name real things.
 */
export function valid(schema: Json, pool: IdPool, now: number): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) {
    return schema.enum.includes('EUR') ? fc.oneof({ weight: 3, arbitrary: fc.constant('EUR') }, { weight: 1, arbitrary: fc.constantFrom(...schema.enum) }) : fc.constantFrom(...schema.enum);
  }
  const alts = schema.oneOf ?? schema.anyOf;
  if (Array.isArray(alts)) return fc.oneof(...alts.map((s: Json) => valid({ ...schema, oneOf: undefined, anyOf: undefined, ...s }, pool, now)));
  if (Array.isArray(schema.type)) return fc.oneof(...schema.type.map((type: string) => valid({ ...schema, type }, pool, now)));
  switch (schema.type) {
    case 'null': return fc.constant(null);
    case 'boolean': return fc.boolean();
    case 'integer': return fc.integer({ min: schema.minimum ?? -1e6, max: Math.min(schema.maximum ?? 1e9, Number.MAX_SAFE_INTEGER) });
    case 'number': return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e9, noNaN: true });
    case 'string': {
      const min = schema.minLength ?? 0;
      const max = Math.min(schema.maxLength ?? 40, 60);
      if (typeof schema.pattern === 'string') {
        const re = new RegExp(schema.pattern);
        if (ISO_DATE.test(schema.pattern)) return fc.integer({ min: -2 * 3600, max: 48 * 3600 }).map((s) => new Date(now + s * 1000).toISOString());
        const made = fc.stringMatching(re).filter((s) => s.length >= min && s.length <= (schema.maxLength ?? Infinity));
        return fc.oneof({ weight: 2, arbitrary: fc.nat().map((n): Learnt => ({ learnt: n, re })) }, { weight: 1, arbitrary: made });
      }
      return fc.string({ minLength: min, maxLength: Math.max(min, max) });
    }
    case 'array': {
      const item = valid(schema.items ?? {}, pool, now);
      const opts = { minLength: schema.minItems ?? 0, maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? 4, 4)) };
      return schema.uniqueItems ? fc.uniqueArray(item, { ...opts, selector: (v) => JSON.stringify(v) }) : fc.array(item, opts);
    }
    case 'object': {
      const props = (schema.properties ?? {}) as Record<string, Json>;
      const model = Object.fromEntries(Object.entries(props).map(([k, s]) => [k, valid(s, pool, now)]));
      return fc.record(model, { requiredKeys: schema.required ?? [] });
    }
    default: return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A valid value broken one way: a field dropped, a field of the wrong kind, a field the schema does not know. */
export function broken(schema: Json, pool: IdPool, now: number): fc.Arbitrary<unknown> {
  return fc.tuple(valid(schema, pool, now), fc.nat(), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('drop', 'replace', 'extra', 'proto')).map(([v, n, other, how]) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return other;
    const keys = Object.keys(v);
    const o = { ...(v as Json) };
    const key = keys.length ? keys[n % keys.length]! : 'x';
    if (how === 'drop') delete o[key];
    else if (how === 'replace') o[key] = other;
    else if (how === 'extra') o[`unknown${n % 7}`] = other;
    else return JSON.parse(`{"__proto__":{"polluted":1},${JSON.stringify(o).slice(1)}`.replace(/,}$/, '}'));
    return o;
  });
}

/** Bodies no route should take: not JSON, not an object, duplicate names, too deep, too large. */
export const rawNasties = (maxBody: number): fc.Arbitrary<string> => fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc.constantFrom('', '{', '{"a":', '[', 'null', '1e309', '{"quantity":1,"quantity":100}', '{"__proto__":{"admin":true}}', '\u0000', '{"a":1}garbage',
    '[' .repeat(10_000) + ']'.repeat(10_000), `{"x":"${'y'.repeat(maxBody)}"}`, '\ufeff{}', '{"amount":1e400}', '{"amount":-0}', '{"quantity":1.0}',
    '{"quantity":"1"}', '{"amount":9007199254740993}'),
);

/** What a refused request must leave as it found it. */
export interface StateSnapshot { redis: Map<string, string>; writes: number }

/**
 * Redis keys a refusal may legitimately touch, all counts rather than state:
 * per-buyer rate windows count refused attempts too, the decision tallies
 * (`:outcomes`, the operators' live view) count refusals by code, and each
 * role's heartbeat is written on a timer.
 */
const COUNTS_ATTEMPTS = /:rate:|:outcomes$|^stampede:ops:/;

/**
 * Every key's content, as a string to compare. Hashes and sets are read as
 * their sorted members, not DUMPed: a large one is a hash table, which a
 * read rehashes a step at a time (an HGET moves its entries between tables),
 * so its DUMP order changes with no write. Every other type is DUMPed.
 */
async function contentOf(redis: Redis, keys: string[]): Promise<Map<string, string>> {
  const typing = redis.pipeline();
  for (const k of keys) typing.type(k);
  const types = ((await typing.exec()) ?? []).map(([, t]) => t as string);
  const pipe = redis.pipeline();
  keys.forEach((k, i) => {
    if (types[i] === 'hash') pipe.hgetall(k);
    else if (types[i] === 'set') pipe.smembers(k);
    else pipe.dumpBuffer(k);
  });
  const replies = (await pipe.exec()) ?? [];
  const out = new Map<string, string>();
  keys.forEach((k, i) => {
    const v = replies[i]![1];
    if (types[i] === 'none') return;
    if (types[i] === 'hash') out.set(k, JSON.stringify(Object.entries(v as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
    else if (types[i] === 'set') out.set(k, JSON.stringify((v as string[]).sort()));
    else out.set(k, (v as Buffer | null)?.toString('base64') ?? '');
  });
  return out;
}

async function allKeys(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch.filter((k) => !COUNTS_ATTEMPTS.test(k)));
  } while (cursor !== '0');
  return keys.sort();
}

/** Every key of the database and its content (see contentOf). */
export async function redisState(redis: Redis): Promise<Map<string, string>> {
  return contentOf(redis, await allKeys(redis));
}

/**
 * The database's state, kept current by its keyspace notifications instead
 * of a whole snapshot after every request: Redis tells a subscriber the name
 * of every key a command writes (or expires, or evicts) as the command runs,
 * and a PING on the subscriber's connection is answered after every
 * notification already queued for it, so once `state()` has its PONG it
 * knows every key written before it was called, and re-reads just those.
 * The state it returns is what redisState would read.
 */
export class RedisState {
  private touched = new Set<string>();
  private constructor(private readonly redis: Redis, private readonly events: Redis, private readonly previousConfig: string, private current: Map<string, string>) {}

  static async start(redis: Redis): Promise<RedisState> {
    const [, previous] = (await redis.config('GET', 'notify-keyspace-events')) as [string, string];
    // K: keyspace channels; A: every class of command; x and e: expired and evicted keys.
    await redis.config('SET', 'notify-keyspace-events', 'KA');
    const events = redis.duplicate({ enableAutoPipelining: false });
    const db = redis.options.db ?? 0;
    const prefix = `__keyspace@${db}__:`;
    const w = new RedisState(redis, events, previous, new Map());
    events.on('pmessage', (_pattern: string, channel: string) => {
      const key = channel.slice(prefix.length);
      if (!COUNTS_ATTEMPTS.test(key)) w.touched.add(key);
    });
    await events.psubscribe(`${prefix}*`);
    w.current = await redisState(redis);
    return w;
  }

  /** The state now: the last one, with every key written since re-read. */
  async state(): Promise<Map<string, string>> {
    await this.events.ping();
    const keys = [...this.touched];
    this.touched = new Set();
    const next = new Map(this.current);
    const read = await contentOf(this.redis, keys);
    for (const k of keys) {
      const v = read.get(k);
      if (v === undefined) next.delete(k);
      else next.set(k, v);
    }
    this.current = next;
    return next;
  }

  async stop(): Promise<void> {
    await this.events.quit().catch(() => this.events.disconnect());
    await this.redis.config('SET', 'notify-keyspace-events', this.previousConfig);
  }
}

export function redisDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const diff: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) diff.push(before.has(k) ? `changed ${k}` : `created ${k}`);
  for (const k of before.keys()) if (!after.has(k)) diff.push(`deleted ${k}`);
  return diff;
}

/**
 * A row trigger on every table of the schema notes each row written, as a
 * signed row: +1 for what is there after, -1 for what was there before
 * (transactional: a write rolled back is no write). Rows whose signs sum to
 * zero since a mark were put back as they were (a claimed idempotency key
 * released, say): changed is what does not; the outbox relay's deletes are not noted.
 * Dropped again by `unwatchWrites`.
 */
export async function watchWrites(pool: Pool): Promise<void> {
  await unwatchWrites(pool);
  await pool.query(`
    CREATE TABLE fuzz_writes (id bigserial PRIMARY KEY, tbl text NOT NULL, sign int NOT NULL, row jsonb NOT NULL);
    CREATE FUNCTION fuzz_note_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      -- The api's outbox relay deletes event_outbox rows in the background once the broker confirmed them:
      -- not the request's doing. A row a refusal inserted there still counts.
      IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'event_outbox' THEN RETURN NULL; END IF;
      IF TG_OP <> 'INSERT' THEN INSERT INTO fuzz_writes (tbl, sign, row) VALUES (TG_TABLE_NAME, -1, to_jsonb(OLD)); END IF;
      IF TG_OP <> 'DELETE' THEN INSERT INTO fuzz_writes (tbl, sign, row) VALUES (TG_TABLE_NAME, 1, to_jsonb(NEW)); END IF;
      RETURN NULL; END $$;
    DO $$ DECLARE r record; BEGIN
      FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                 AND c.relname NOT IN ('fuzz_writes', 'pgmigrations') LOOP
        EXECUTE format('CREATE TRIGGER fuzz_note_write AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION fuzz_note_write()', r.relname);
      END LOOP; END $$;`);
}

export async function unwatchWrites(pool: Pool): Promise<void> {
  await pool.query(`
    DO $$ DECLARE r record; BEGIN
      FOR r IN SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgname = 'fuzz_note_write' AND NOT c.relispartition LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS fuzz_note_write ON %I', r.relname);
      END LOOP; END $$;
    DROP FUNCTION IF EXISTS fuzz_note_write() CASCADE;
    DROP TABLE IF EXISTS fuzz_writes;`);
}

/** The last write noted, and the rows changed for good after `since` (`+table {row}` added, `-table {row}` taken away). */
export async function writesSince(pool: Pool, since: number): Promise<{ last: number; changed: string[] }> {
  const { rows } = await pool.query<{ last: string | null; changed: string[] | null }>(
    `SELECT (SELECT max(id) FROM fuzz_writes) AS last,
            (SELECT array_agg(CASE WHEN net > 0 THEN '+' ELSE '-' END || tbl || ' ' || left(row::text, 200))
               FROM (SELECT tbl, row, sum(sign) AS net FROM fuzz_writes WHERE id > $1 GROUP BY tbl, row HAVING sum(sign) <> 0) d) AS changed`,
    [since],
  );
  return { last: Number(rows[0]!.last ?? since), changed: rows[0]!.changed ?? [] };
}
