/**
 * Invariant 6 on every route at once: requests generated from the OpenAPI
 * document the api serves (its parameters' and bodies' schemas, valid and
 * broken), with no credentials, a buyer's token, a seller's or an operator's
 * key, or bad ones. Never a 5xx; every answer is one the document allows
 * (every 4xx a problem+json whose code the route lists: test/helpers/openapi.ts
 * checks each fetch); a 4xx changes no Redis key and writes no Postgres row;
 * the process answers /healthz at the end. Fixed seed, printed on failure.
 */
import t from 'tap';
import fc from 'fast-check';
import { boot, OPERATOR_KEY } from '../helpers/system.js';
import { badApiKeys, badCredentials } from '../helpers/problem.js';
import { createAuction } from '../helpers/auctions.js';
import { broken, IdPool, junk, rawNasties, redisDiff, RedisState, resolve, unwatchWrites, valid, watchWrites, writesSince } from '../helpers/fuzz.js';
import { newSaleId } from '../../src/platform/ids.js';

type Json = Record<string, any>;

const SEED = Number(process.env.STAMPEDE_FUZZ_SEED ?? 20261216);
const RUNS = Number(process.env.STAMPEDE_FUZZ_RUNS ?? 60);

const sys = await boot(t);
const doc = (await (await fetch(`${sys.url}/openapi.json`)).json()) as Json;
const NOW = Date.now();
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;

// --- what the fuzz starts from: buyers, a seller, a sale, an auction, a purchase and a bid ------------
const pool = new IdPool();
const [alice, bob] = await sys.createBuyers(2);
const sale = await sys.createSale({ stock: 50, perBuyerLimit: 3 });
const auction = await createAuction(sys.pool, sys.redis);
const seller = (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name: 'Fuzz shop' }) })).body as Json;
const purchase = await sys.purchase(alice!, sale.id);
const bid = await fetch(`${sys.url}/v1/auctions/${auction.id}/bids`, {
  method: 'POST', headers: { authorization: `Bearer ${sys.token(bob!)}`, 'content-type': 'application/json' }, body: JSON.stringify({ amount: 1000 }),
});
// Redis was flushed at boot, but Postgres keeps the sales and auctions of the tests before this one, and a
// list answer may hand the fuzz their ids. The first request naming one would load it into Redis (a cache
// fill from the record, which a refusal may trigger), and loading them all would make every snapshot of
// Redis as large as the whole suite's: the fuzz never takes their ids from an answer.
const earlier = await sys.pool.query<{ id: string }>('SELECT id FROM sales WHERE id <> $1 UNION ALL SELECT id FROM auctions WHERE id <> $2', [sale.id, auction.id]);
pool.ignore(earlier.rows.map((r) => r.id));
for (const v of [alice!, bob!, sale.id, auction.id, newSaleId(), 'orders', 'notifications', 'vinyl']) pool.add(v);
pool.harvest(seller);
pool.harvest(purchase.body);
pool.harvest(await bid.json());

const { badAuthorizations } = badCredentials(sys.cfg.STAMPEDE_JWT_SECRET, alice!, bob!, sale.id);
/** Each case's credentials: an index into these, made when it runs (keys learnt from answers join them). */
interface Operation { method: string; template: string; op: Json }
const tokens = new Map<string, string>();
const bearer = (id: string) => `Bearer ${tokens.get(id) ?? tokens.set(id, sys.token(id)).get(id)}`;
const fixed: Record<string, string>[] = [
  {},
  { authorization: bearer(alice!) },
  { authorization: bearer(bob!) },
  { 'x-api-key': OPERATOR_KEY },
  { authorization: bearer(alice!), 'x-api-key': OPERATOR_KEY },
  ...badAuthorizations.filter((_, i) => i % 3 === 0).map(([, a]): Record<string, string> => (a === undefined ? {} : { authorization: a })),
  ...badApiKeys(OPERATOR_KEY, sys.token(alice!)).filter((_, i) => i % 2 === 0).map(([, h]) => h),
];
const keys = () => [{ 'x-api-key': OPERATOR_KEY }, ...pool.apiKeys.map((k) => ({ 'x-api-key': k }))];
const buyers = () => [alice!, bob!, ...pool.matching(/^usr_/).slice(0, 4)].map((id) => ({ authorization: bearer(id) }));
/** Three cases in four carry what the route asks for (a key, or a buyer's token); the rest anything, bad ones included. */
const credentials = (o: Operation, n: number): Record<string, string> => {
  const security = JSON.stringify(o.op.security ?? []);
  const fitting = security.includes('apiKey') ? keys() : security.includes('buyerToken') ? buyers() : [];
  const all = [...fixed, ...keys(), ...buyers()];
  return n % 4 !== 0 && fitting.length ? fitting[(n >> 2) % fitting.length]! : all[(n >> 2) % all.length]!;
};

const operations: Operation[] = Object.entries(doc.paths as Json).flatMap(([template, item]) =>
  Object.entries(item as Json).map(([method, op]) => ({ method: method.toUpperCase(), template, op: op as Json })));
// What takes things away (deleting, closing, cancelling, purging) runs last, so the rest meets live fixtures.
const destructive = (o: Operation) => o.method === 'DELETE' || /\/(close|cancel|purge|rotate-secret)$/.test(o.template);
operations.sort((a, b) => Number(destructive(a)) - Number(destructive(b)));

interface Case { path: Record<string, unknown>; query: [string, unknown][]; credential: number; contentType?: string; idempotencyKey?: string; lastEventId?: string; body?: unknown; raw?: string }

const ascii = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 });

function cases(o: Operation): fc.Arbitrary<Case> {
  const params = (o.op.parameters ?? []) as Json[];
  const pathParams = Object.fromEntries(params.filter((p) => p.in === 'path').map((p) => [p.name, fc.oneof(
    { weight: 4, arbitrary: valid(p.schema, pool, NOW) },
    { weight: 1, arbitrary: junk },
  )]));
  const query = fc.tuple(
    ...params.filter((p) => p.in === 'query').map((p) => fc.option(fc.tuple(fc.constant(p.name as string), fc.oneof(valid(p.schema, pool, NOW), junk)), { freq: 2 })),
    fc.option(fc.tuple(fc.constantFrom('unknown', 'limit', '__proto__'), junk), { freq: 5 }),
  ).map((qs) => qs.filter((q): q is [string, unknown] => q !== null));
  const schema = o.op.requestBody?.content?.['application/json']?.schema as Json | undefined;
  const body: fc.Arbitrary<{ body?: unknown; raw?: string }> = o.method === 'GET'
    ? fc.constant({})
    : schema
      ? fc.oneof(
        { weight: 5, arbitrary: valid(schema, pool, NOW).map((b) => ({ body: b })) },
        { weight: 3, arbitrary: broken(schema, pool, NOW).map((b) => ({ body: b })) },
        { weight: 2, arbitrary: rawNasties(MAX_BODY).map((raw) => ({ raw })) },
        { weight: 1, arbitrary: fc.constant({}) },
      )
      : fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: rawNasties(MAX_BODY).map((raw) => ({ raw })) });
  return fc.record({
    path: fc.record(pathParams),
    query,
    credential: fc.nat(),
    contentType: fc.oneof(
      { weight: 8, arbitrary: fc.constant('application/json') },
      { weight: 1, arbitrary: fc.constantFrom(undefined, 'text/plain', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded', 'APPLICATION/JSON', 'application/jsonx') },
    ),
    idempotencyKey: fc.option(fc.oneof(ascii, fc.constantFrom('', 'a b', 'k'.repeat(201))), { freq: 3, nil: undefined }),
    lastEventId: fc.option(fc.oneof(ascii, junk.filter((s) => /^[\x20-\x7e]*$/.test(s))), { freq: 3, nil: undefined }),
  }, { requiredKeys: ['path', 'query', 'credential'] }).chain((c) => body.map((b) => ({ ...c, ...b })));
}

function request(o: Operation, c: Case): { path: string; init: RequestInit } {
  const segment = (v: unknown) => encodeURIComponent(String(resolve(v, pool)));
  const path = o.template.replace(/\{(\w+)\}/g, (_, name: string) => segment(c.path[name]));
  const qs = c.query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(resolve(v, pool)))}`).join('&');
  const headers: Record<string, string> = { ...credentials(o, c.credential) };
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  if (c.idempotencyKey !== undefined) headers['idempotency-key'] = c.idempotencyKey;
  if (c.lastEventId !== undefined) headers['last-event-id'] = c.lastEventId;
  const body = c.raw ?? (c.body === undefined ? undefined : JSON.stringify(resolve(c.body, pool)));
  return { path: `${path}${qs ? `?${qs}` : ''}`, init: { method: o.method, headers, body, signal: AbortSignal.timeout(15_000) } };
}

await watchWrites(sys.pool);
t.teardown(() => unwatchWrites(sys.pool));

t.test(`every route, ${RUNS} generated requests each (seed ${SEED})`, async (t) => {
  const redisWatch = await RedisState.start(sys.redis);
  t.teardown(() => redisWatch.stop());
  let redisBefore = await redisWatch.state();
  // The watch sees a write, a change of one hash field and a delete, each as a whole snapshot would (of the probe's key: the api may write its own meanwhile).
  const probe = (before: Map<string, string>, after: Map<string, string>) => redisDiff(before, after).filter((d) => d.endsWith(' fuzz:probe'));
  await sys.redis.hset('fuzz:probe', { a: '1', b: '2' });
  const written = await redisWatch.state();
  t.same(probe(redisBefore, written), ['created fuzz:probe'], 'a key written is seen');
  await sys.redis.hset('fuzz:probe', 'b', '3');
  const changed = await redisWatch.state();
  t.same(probe(written, changed), ['changed fuzz:probe'], 'a field changed is seen');
  await sys.redis.del('fuzz:probe');
  t.same(probe(changed, await redisWatch.state()), ['deleted fuzz:probe'], 'a key deleted is seen');
  t.same(probe(redisBefore, redisBefore = await redisWatch.state()), [], 'and the state is as before the probe');
  let writes = (await writesSince(sys.pool, 0)).last;
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let sent = 0;

  for (const [i, o] of operations.entries()) {
    const seed = SEED + i;
    for (const c of fc.sample(cases(o), { numRuns: RUNS, seed })) {
      const { path, init } = request(o, c);
      const what = () => `${o.method} ${path} ${JSON.stringify(init.headers)} ${String(init.body ?? '').slice(0, 300)} (seed ${seed}, template ${o.template})`;
      let status: number;
      let answer: unknown;
      try {
        const res = await fetch(`${sys.url}${path}`, init);
        status = res.status;
        if (res.headers.get('content-type')?.startsWith('text/event-stream')) await res.body?.cancel();
        else {
          const text = await res.text();
          try { answer = JSON.parse(text); } catch { answer = text; }
        }
      } catch (err) {
        failures.push(`${what()}: ${(err as Error).message}`);
        continue;
      }
      sent += 1;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status >= 500) failures.push(`${what()}: answered ${status} ${JSON.stringify(answer)}`);
      const redisAfter = await redisWatch.state();
      const written = await writesSince(sys.pool, writes);
      if (status >= 400 && status < 500) {
        const changed = redisDiff(redisBefore, redisAfter);
        if (changed.length || written.changed.length) {
          failures.push(`${what()}: ${status} ${(answer as Json)?.code}, yet it changed ${[...changed, ...written.changed.map((w) => `Postgres ${w}`)].slice(0, 8).join(', ')}`);
        }
      } else {
        pool.harvest(answer);
      }
      redisBefore = redisAfter;
      writes = written.last;
    }
  }
  t.comment(`${sent} requests over ${operations.length} operations; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  t.ok(sent >= operations.length * RUNS * 0.99, `${sent} requests answered`);
  t.same(failures.slice(0, 40), [], `no 5xx, no answer the document does not allow, no state changed by a refusal (seed ${SEED}; STAMPEDE_FUZZ_SEED replays it)`);
  const health = await fetch(`${sys.url}/healthz`);
  t.equal(health.status, 200, 'the api still answers /healthz');
});
