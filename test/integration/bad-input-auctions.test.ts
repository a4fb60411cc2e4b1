/**
 * Invariant 6 for the auction routes, as for purchases: bad input never
 * crashes, never yields a 5xx, never changes the auction, and always gets a
 * precise problem+json error.
 */
import { scanKeys } from '../../src/platform/redis/client.js';
import t from 'tap';
import type { Test } from 'tap';
import { boot, call, type HttpAnswer } from '../helpers/system.js';
import { rawRequest } from '../helpers/bad-raw-http.js';
import { badCredentials, problem, refusesEach } from '../helpers/problem.js';
import { auctionKeys } from '../../src/auctions/keys.js';

const sys = await boot(t);
const MAX_BODY = sys.cfg.STAMPEDE_MAX_BODY_BYTES;
const buyers = await sys.createBuyers(12);
const [buyer, other] = [buyers[0]!, buyers[1]!];
const token = sys.token(buyer);
const now = Date.now();
const created = await sys.operator('/v1/auctions', {
  method: 'POST',
  body: JSON.stringify({
    title: 'bad-input lot', currency: 'EUR', startPrice: 1000, startsAt: new Date(now - 1000).toISOString(),
    endsAt: new Date(now + 3600_000).toISOString(), softCloseSeconds: 10, increment: { type: 'absolute', amount: 100 },
  }),
});
const auction = created.body as { id: string };
const otherAuction = (await sys.operator('/v1/auctions', {
  method: 'POST',
  body: JSON.stringify({
    title: 'bad-input other lot', currency: 'EUR', startPrice: 1000, startsAt: new Date(now - 1000).toISOString(),
    endsAt: new Date(now + 3600_000).toISOString(), softCloseSeconds: 10, increment: { type: 'absolute', amount: 100 },
  }),
})).body as { id: string };
const bidsUrl = `${sys.url}/v1/auctions/${auction.id}/bids`;
// One real bid by `buyer` and one by `other` on the other auction, for the retraction cases.
const ownBid = (await call(bidsUrl, {
  method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"amount":1000}',
})).body.bidId as string;
const foreignBid = (await call(`${sys.url}/v1/auctions/${otherAuction.id}/bids`, {
  method: 'POST', headers: { authorization: `Bearer ${sys.token(other)}`, 'content-type': 'application/json' }, body: '{"amount":1000}',
})).body.bidId as string;
const { badAuthorizations } = badCredentials(sys.cfg.STAMPEDE_JWT_SECRET, buyer, other, auction.id);

async function snapshot(): Promise<unknown> {
  const keys: string[] = [];
  for (const id of [auction.id, otherAuction.id, 'auc_zzzzzzzzzzzz']) keys.push(...(await scanKeys(sys.redis, `*${id}*`)));
  // A refused bid is counted for the operators' board (`:outcomes`, as a metric is); an unknown auction is not, so it has no keys at all.
  keys.splice(0, keys.length, ...keys.filter((k) => !k.endsWith(':outcomes')));
  const { rows } = await sys.pool.query(
    `SELECT (SELECT count(*) FROM auctions)::int AS auctions, (SELECT count(*) FROM auction_events)::int AS events`,
  );
  return {
    keys: keys.filter((k) => !k.includes(':rate:')).sort(),
    auction: await sys.redis.hgetall(auctionKeys.auction(auction.id)),
    bids: await sys.redis.hgetall(auctionKeys.bids(auction.id)),
    otherBids: await sys.redis.hgetall(auctionKeys.bids(otherAuction.id)),
    outbox: await sys.redis.xlen(auctionKeys.outbox(auction.id)),
    rows: rows[0],
  };
}

async function unchanged(t: Test, bad: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  await bad();
  t.same(await snapshot(), before, 'nothing changed: auction state, bids, outbox, Postgres rows');
  t.equal((await call(`${sys.url}/healthz`)).status, 200, 'still up');
}

let amount = 2000;
async function normalBidWorks(t: Test): Promise<void> {
  const r = await call(bidsUrl, {
    method: 'POST', headers: { authorization: `Bearer ${sys.token(buyers[2 + (amount % 9)]!)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ amount: (amount += 1000) }),
  });
  t.equal(r.status, 202, 'a normal bid is still accepted afterwards');
}

const bid = (body: unknown, headers: Record<string, string> = {}, url = bidsUrl): Promise<HttpAnswer> =>
  call(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });

t.test('POST /v1/auctions/{id}/bids: bodies', async (t) => {
  await unchanged(t, async () => {
    for (const raw of ['{', '{"amount":1,}', "{'amount':5000}", '{"amount":05000}', 'amount=5000', 'NaN', '   ', '\u0000']) {
      problem(t, await bid(raw), 400, 'MALFORMED_JSON', `body ${JSON.stringify(raw)}`);
    }
    for (const raw of ['[]', '"x"', 'null', '1', 'true']) problem(t, await bid(raw), 400, 'VALIDATION_FAILED', `non-object JSON ${raw}`);
    problem(t, await bid(undefined), 400, 'VALIDATION_FAILED', 'missing body', '/');
    problem(t, await bid({}), 400, 'VALIDATION_FAILED', 'empty object', '/amount');
    for (const a of ['5000', true, null, {}, [5000]]) problem(t, await bid({ amount: a }), 400, 'VALIDATION_FAILED', `amount ${JSON.stringify(a)}`, '/amount');
    for (const a of [0, -1, 1.5, 100_000_000_001, 2 ** 53, 1e308]) problem(t, await bid({ amount: a }), 400, 'VALIDATION_FAILED', `amount ${a}`, '/amount');
    for (const m of ['9000', 0, -5, 2.5, 100_000_000_001]) problem(t, await bid({ amount: 5000, maxAmount: m }), 400, 'VALIDATION_FAILED', `maxAmount ${JSON.stringify(m)}`, '/maxAmount');
    problem(t, await bid({ amount: 5000, maxAmount: 4999 }), 400, 'VALIDATION_FAILED', 'maxAmount below amount', '/maxAmount');
    problem(t, await bid({ amount: 5000, buyerId: other }), 400, 'VALIDATION_FAILED', 'a buyerId field', '/buyerId');
    problem(t, await bid('{"amount":5000,"__proto__":{"x":1}}'), 400, 'VALIDATION_FAILED', '__proto__ field', '/__proto__');
    problem(t, await bid('{"amount":' + '{"a":'.repeat(2000) + '1' + '}'.repeat(2000) + '}'), 400, 'VALIDATION_FAILED', 'deeply nested amount', '/amount');
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      problem(t, await bid({ amount: 5000 }, { 'content-type': ct }), 415, 'UNSUPPORTED_MEDIA_TYPE', `content-type ${ct}`);
    }
    const big = `{"amount":5000,"pad":"${'a'.repeat(MAX_BODY)}"}`;
    const head = [`POST /v1/auctions/${auction.id}/bids HTTP/1.1`, 'host: 127.0.0.1', `authorization: Bearer ${token}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(big)}`].join('\r\n');
    problem(t, await rawRequest(sys.api!.port, { head, chunks: [big] }), 413, 'PAYLOAD_TOO_LARGE', 'a body over the limit');
  });
  await normalBidWorks(t);
});

t.test('POST /v1/auctions/{id}/bids: auction ids, authentication, Idempotency-Key', async (t) => {
  await unchanged(t, async () => {
    problem(t, await bid({ amount: 5000 }, {}, `${sys.url}/v1/auctions/auc_zzzzzzzzzzzz/bids`), 404, 'NOT_FOUND', 'unknown auction id');
    for (const id of ['nope', 'auc_', 'auc_ABCDEFGHIJKL', auction.id.toUpperCase(), `${auction.id}x`, auction.id.slice(0, -1), `sal_${auction.id.slice(4)}`, '%00']) {
      problem(t, await bid({ amount: 5000 }, {}, `${sys.url}/v1/auctions/${id}/bids`), 404, 'NOT_FOUND', `malformed auction id ${JSON.stringify(id)}`);
    }
    await refusesEach(t, badAuthorizations, (headers) => call(bidsUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"amount":5000}' }));
    for (const [what, key] of [['201 characters', 'k'.repeat(201)], ['a space inside', 'a b'], ['a tab', 'a\tb']] as const) {
      problem(t, await bid({ amount: 5000 }, { 'idempotency-key': key }), 400, 'VALIDATION_FAILED', `Idempotency-Key with ${what}`, 'header:Idempotency-Key');
    }
  });
  await normalBidWorks(t);
});

t.test('DELETE /v1/auctions/{id}/bids/{bidId}: malformed, foreign and unknown bids', async (t) => {
  const del = (path: string, authorization = `Bearer ${token}`) => call(`${sys.url}${path}`, { method: 'DELETE', headers: { authorization } });
  await unchanged(t, async () => {
    problem(t, await del(`/v1/auctions/${auction.id}/bids/${ownBid}`, `Bearer ${sys.token(other)}`), 404, 'NOT_FOUND', "another buyer's bid");
    problem(t, await del(`/v1/auctions/${otherAuction.id}/bids/${foreignBid}`), 404, 'NOT_FOUND', 'a bid of another buyer on another auction');
    problem(t, await del(`/v1/auctions/${auction.id}/bids/${foreignBid}`), 404, 'NOT_FOUND', 'a bid id of another auction');
    for (const id of ['nope', 'bid_', `bid_${auction.id.slice(4)}_short`, `bid_${auction.id.slice(4)}_${'A'.repeat(16)}`, auction.id]) {
      problem(t, await del(`/v1/auctions/${auction.id}/bids/${id}`), 404, 'NOT_FOUND', `malformed bid id ${JSON.stringify(id)}`);
    }
    problem(t, await del(`/v1/auctions/auc_zzzzzzzzzzzz/bids/bid_zzzzzzzzzzzz_${'0'.repeat(16)}`), 404, 'NOT_FOUND', 'unknown auction');
    await refusesEach(t, badAuthorizations.slice(0, 8), (headers) => call(`${sys.url}/v1/auctions/${auction.id}/bids/${ownBid}`, { method: 'DELETE', headers }), 'retract');
  });
});

t.test('GET /v1/auctions/{id}/bids and /v1/auctions: query parameters', async (t) => {
  await unchanged(t, async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'limit=1.5', 'before=0', 'before=-3', 'before=abc', 'before=1e3', 'mine=yes', 'mine=1']) {
      problem(t, await call(`${bidsUrl}?${q}`), 400, 'VALIDATION_FAILED', `history ?${q}`);
    }
    problem(t, await call(`${bidsUrl}?mine=true`), 401, 'UNAUTHORIZED', 'mine=true without a token');
    for (const q of ['limit=0', 'after=nope', `after=sal_${auction.id.slice(4)}`]) {
      problem(t, await call(`${sys.url}/v1/auctions?${q}`), 400, 'VALIDATION_FAILED', `list ?${q}`);
    }
  });
});

t.test('200 mixed bad bid requests at once: no 5xx, state unchanged, still up', async (t) => {
  await unchanged(t, async () => {
    const bad = [
      () => bid('{'), () => bid({ amount: 0 }), () => bid({ amount: 5000, maxAmount: 1 }), () => bid({ amount: 5000 }, { authorization: 'Bearer x' }),
      () => bid({ amount: 5000 }, {}, `${sys.url}/v1/auctions/auc_zzzzzzzzzzzz/bids`), () => bid({ amount: 5000 }, { 'content-type': 'text/plain' }),
      () => call(`${bidsUrl}?limit=0`), () => call(`${sys.url}/v1/auctions/${auction.id}/bids/nope`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }),
    ];
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => bad[i % bad.length]!()));
    t.ok(answers.every((a) => a.status >= 400 && a.status < 500), 'every answer is a 4xx');
  });
  await normalBidWorks(t);
});
