/**
 * Auctions end to end over HTTP against the real services: creation and its
 * validation, reads that never leak the reserve, bids decided atomically
 * under concurrency, proxy bidding, buy-now races, soft close, a bid racing
 * the close, retraction, the promoter and deleting a buyer.
 */
import t from 'tap';
import { boot, holdToDocument, call, sleep, waitFor, type HttpAnswer, type System } from '../helpers/system.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { parseStoredBid } from '../../src/auctions/codec.js';
import { handleOf, incrementOf } from '../../src/auctions/rules.js';
import { promoterPolicies } from '../../src/auctions/promoter.js';
import { startApi } from '../../src/roles/index.js';
import { createLogger } from '../../src/platform/log.js';
import { LiveClient } from '../helpers/live-client.js';

const iso = (ms: number) => new Date(ms).toISOString();

function auctionBody(over: Record<string, unknown> = {}) {
  const now = Date.now();
  return {
    title: 'Signed first edition', collection: 'Books', currency: 'EUR', startPrice: 1000, reservePrice: 0,
    startsAt: iso(now - 1000), endsAt: iso(now + 600_000), softCloseSeconds: 10, increment: { type: 'absolute', amount: 100 }, ...over,
  };
}

async function createAuction(sys: System, over: Record<string, unknown> = {}): Promise<any> {
  const r = await sys.operator('/v1/auctions', { method: 'POST', body: JSON.stringify(auctionBody(over)) });
  if (r.status !== 201) throw new Error(`create auction: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const bid = (sys: System, buyerId: string, auctionId: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
  call(`${sys.url}/v1/auctions/${auctionId}/bids`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sys.token(buyerId)}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const retract = (sys: System, buyerId: string, auctionId: string, bidId: string): Promise<HttpAnswer> =>
  call(`${sys.url}/v1/auctions/${auctionId}/bids/${bidId}`, { method: 'DELETE', headers: { authorization: `Bearer ${sys.token(buyerId)}` } });

t.test('auctions over HTTP', async (t) => {
  const sys = await boot(t);
  const buyers = await sys.createBuyers(1200);

  t.test('creation is validated precisely and changes nothing when refused', async (t) => {
    const before = (await sys.pool.query('SELECT count(*)::int AS n FROM auctions')).rows[0].n;
    const cases: [string, Record<string, unknown>, string][] = [
      ['no title', { title: undefined }, '/title'],
      ['zero start price', { startPrice: 0 }, '/startPrice'],
      ['unknown currency', { currency: 'XXY' }, '/currency'],
      ['ends before it starts', { endsAt: iso(Date.now() - 5000) }, '/endsAt'],
      ['impossible date', { endsAt: '2031-02-30T10:00:00Z' }, '/endsAt'],
      ['hard close before the end', { hardCloseAt: iso(Date.now() + 1000) }, '/hardCloseAt'],
      ['buy-now below the reserve', { reservePrice: 5000, buyNowPrice: 4000 }, '/buyNowPrice'],
      ['bad increment type', { increment: { type: 'random' } }, '/increment'],
      ['tiers not from 0', { increment: { type: 'tiered', tiers: [{ from: 5, increment: 10 }] } }, '/increment/tiers/0/from'],
      ['tiers not ascending', { increment: { type: 'tiered', tiers: [{ from: 0, increment: 10 }, { from: 0, increment: 20 }] } }, '/increment/tiers/1/from'],
      ['percentage above 100%', { increment: { type: 'percentage', basisPoints: 10_001 } }, '/increment'],
      ['soft close too long', { softCloseSeconds: 3601 }, '/softCloseSeconds'],
      ['promoter interval upside down', { promoter: { enabled: true, minIntervalSeconds: 10, maxIntervalSeconds: 5, policy: 'uniform' } }, '/promoter/maxIntervalSeconds'],
      ['unknown promoter policy', { promoter: { enabled: true, minIntervalSeconds: 1, maxIntervalSeconds: 5, policy: 'luckiest' } }, '/promoter/policy'],
      ['extra field', { colour: 'red' }, '/colour'],
      ['amount past the limit', { startPrice: 100_000_000_001 }, '/startPrice'],
    ];
    for (const [what, over, path] of cases) {
      const body: Record<string, unknown> = { ...auctionBody(), ...over };
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      const r = await sys.operator('/v1/auctions', { method: 'POST', body: JSON.stringify(body) });
      t.equal(r.status, 400, `${what}: 400`);
      t.equal(r.headers.get('content-type'), 'application/problem+json', `${what}: problem+json`);
      t.ok(r.body.errors?.some((e: { path: string }) => e.path.startsWith(path)), `${what}: names ${path} (got ${JSON.stringify(r.body.errors)})`);
    }
    const anon = await call(`${sys.url}/v1/auctions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(auctionBody()) });
    t.equal(anon.status, 401);
    const byBuyer = await call(`${sys.url}/v1/auctions`, {
      method: 'POST', headers: { authorization: `Bearer ${sys.token(buyers[0]!)}`, 'content-type': 'application/json' }, body: JSON.stringify(auctionBody()),
    });
    t.equal(byBuyer.status, 401, 'a buyer token is not an API key');
    t.equal((await sys.pool.query('SELECT count(*)::int AS n FROM auctions')).rows[0].n, before, 'no auction was created');
  });

  t.test('reads: the view, the list, and never the reserve', async (t) => {
    const a = await createAuction(sys, { reservePrice: 777_777, buyNowPrice: 900_000 });
    t.match(a, { status: 'open', currentPrice: null, nextMinimumBid: 1000, bidCount: 0, leader: null, reserveMet: false, buyNowPrice: 900_000 });
    t.notOk(JSON.stringify(a).includes('777777'), 'the reserve is never shown');
    const got = await call(`${sys.url}/v1/auctions/${a.id}`);
    t.equal(got.status, 200);
    t.notOk('reservePrice' in got.body);
    // The test database keeps earlier runs' auctions: page through all of them.
    const listed: string[] = [];
    for (let after: string | null = null, guard = 0; guard < 1000; guard++) {
      const page: HttpAnswer = await call(`${sys.url}/v1/auctions?limit=100${after ? `&after=${after}` : ''}`);
      t.equal(page.status, 200);
      listed.push(...page.body.items.map((x: { id: string }) => x.id));
      after = page.body.next;
      if (!after) break;
    }
    t.ok(listed.includes(a.id), 'listed while open');
    t.equal(new Set(listed).size, listed.length, 'no auction twice across pages');
    t.equal((await call(`${sys.url}/v1/auctions/auc_000000000000`)).status, 404);
    t.equal((await call(`${sys.url}/v1/auctions/nope`)).status, 404);
    t.equal((await call(`${sys.url}/v1/auctions?limit=0`)).status, 400);
    t.equal((await call(`${sys.url}/v1/auctions?after=sal_000000000000`)).status, 400);
    t.equal((await call(`${sys.url}/v1/auctions/${a.id}/bids?before=abc`)).status, 400);
    t.equal((await call(`${sys.url}/v1/auctions/${a.id}/bids?mine=true`)).status, 401, 'mine needs a buyer');
  });

  t.test('bids: 202 answers, precise refusals, nothing changed by a refusal', async (t) => {
    const a = await createAuction(sys);
    const [x, y] = [buyers[1]!, buyers[2]!];
    const r1 = await bid(sys, x, a.id, { amount: 1000 });
    t.equal(r1.status, 202);
    t.match(r1.body, { leading: true, currentPrice: 1000, nextMinimumBid: 1100, closed: false });
    t.match(r1.body.bidId, /^bid_[0-9a-z]{12}_[0-9a-z]{16}$/);
    t.equal(typeof r1.body.endsAt, 'string');
    const refusals: [unknown, number, string][] = [
      [{ amount: 1050 }, 409, 'BID_TOO_LOW'],
      [{ amount: 0 }, 400, 'VALIDATION_FAILED'],
      [{ amount: 1.5 }, 400, 'VALIDATION_FAILED'],
      [{ amount: '1200' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 1200, maxAmount: 1100 }, 400, 'VALIDATION_FAILED'],
      [{ amount: 1200, extra: 1 }, 400, 'VALIDATION_FAILED'],
      [{}, 400, 'VALIDATION_FAILED'],
      ['{"amount":', 400, 'MALFORMED_JSON'],
      [{ amount: 100_000_000_001 }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [body, status, code] of refusals) {
      const r = await bid(sys, y, a.id, body);
      t.equal(r.status, status, `${JSON.stringify(body)}: ${status}`);
      t.equal(r.body.code, code);
    }
    const low = await bid(sys, y, a.id, { amount: 1050 });
    t.equal(low.body.nextMinimumBid, 1100, 'BID_TOO_LOW names the next minimum');
    const own = await bid(sys, x, a.id, { amount: 1100, maxAmount: 1000 });
    t.equal(own.status, 400, 'max below amount');
    const notAbove = await bid(sys, x, a.id, { amount: 1100, maxAmount: 1100 });
    t.equal(notAbove.status, 202, 'the leader raising their own bid');
    const again = await bid(sys, x, a.id, { amount: 1200, maxAmount: 1100 });
    t.equal(again.status, 400);
    const lower = await bid(sys, x, a.id, { amount: 1200 });
    t.equal(lower.status, 202);
    const view = await call(`${sys.url}/v1/auctions/${a.id}`);
    t.match(view.body, { bidCount: 3, currentPrice: 1200, leader: handleOf((await sys.pool.query('SELECT handle_salt FROM auctions WHERE id = $1', [a.id])).rows[0].handle_salt, x) });
    t.equal((await bid(sys, y, 'auc_000000000000', { amount: 5000 })).status, 404);
    const unauth = await call(`${sys.url}/v1/auctions/${a.id}/bids`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":5000}' });
    t.equal(unauth.status, 401);

    const keyed = { 'idempotency-key': 'bid-1' };
    const k1 = await bid(sys, y, a.id, { amount: 2000 }, keyed);
    const k2 = await bid(sys, y, a.id, { amount: 2000 }, keyed);
    t.equal(k1.status, 202);
    t.equal(k2.status, 202);
    t.equal(k2.body.bidId, k1.body.bidId, 'same key, same body: the same bid');
    t.equal(k2.headers.get('idempotent-replayed'), 'true');
    t.equal((await bid(sys, y, a.id, { amount: 3000 }, keyed)).status, 422);

    const later = await createAuction(sys, { startsAt: iso(Date.now() + 60_000) });
    const early = await bid(sys, y, later.id, { amount: 1000 });
    t.equal(early.status, 409);
    t.equal(early.body.code, 'AUCTION_NOT_OPEN');
  });

  t.test('over HTTP: NOT_ABOVE_OWN_BID, RATE_LIMITED with Retry-After, and ?mine=true shows the caller its own bids only', async (t) => {
    const a = await createAuction(sys);
    const [x, y, z] = [buyers[3]!, buyers[4]!, buyers[5]!];
    const proxy = await bid(sys, x, a.id, { amount: 1000, maxAmount: 5000 });
    t.equal(proxy.status, 202);
    const yBid = await bid(sys, y, a.id, { amount: 1200 });
    t.equal(yBid.status, 202);
    t.equal(yBid.body.leading, false, "x's proxy outbids y at once");
    t.equal(yBid.body.currentPrice, 1300);
    const before = (await call(`${sys.url}/v1/auctions/${a.id}`)).body;

    const notAbove = await bid(sys, x, a.id, { amount: 1400, maxAmount: 4000 });
    t.equal(notAbove.status, 409);
    t.match(notAbove.body, { code: 'NOT_ABOVE_OWN_BID', ownMaximum: 5000 }, 'names the standing maximum');
    t.equal((await bid(sys, x, a.id, { amount: 1400, maxAmount: 5000 })).body.code, 'NOT_ABOVE_OWN_BID', 'an equal maximum is not above it either');
    t.same((await call(`${sys.url}/v1/auctions/${a.id}`)).body, before, 'refusals changed nothing');

    // z hammers the auction: every attempt counts, accepted or not, until the window's limit.
    let limited: HttpAnswer | undefined;
    for (let i = 0; i < 200 && !limited; i++) {
      const r = await bid(sys, z, a.id, { amount: 1 });
      if (r.status === 429) limited = r;
      else t.equal(r.body.code, 'BID_TOO_LOW');
    }
    t.ok(limited, 'rate limited within 200 attempts');
    t.equal(limited!.body.code, 'RATE_LIMITED');
    const retryAfter = Number(limited!.headers.get('retry-after'));
    t.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After in whole seconds (${limited!.headers.get('retry-after')})`);
    t.ok(limited!.body.retryAfterMs > 0 && limited!.body.retryAfterMs <= 1000, 'and the wait in ms, within the window');
    t.equal((await call(`${sys.url}/v1/auctions/${a.id}`)).body.bidCount, before.bidCount, 'the attempts placed nothing');

    const history = async (buyer: string | undefined, query: string) =>
      (await call(`${sys.url}/v1/auctions/${a.id}/bids?${query}`, buyer ? { headers: { authorization: `Bearer ${sys.token(buyer)}` } } : {})).body.items as
        { bidId: string; bidder: string; amount: number; maxAmount?: number }[];
    const mineX = await history(x, 'mine=true');
    t.same(mineX.map((b) => b.bidId), [proxy.body.bidId], "x sees its own bid, and no one else's");
    t.equal(mineX[0]!.maxAmount, 5000, 'with its maximum');
    const mineY = await history(y, 'mine=true');
    t.same(mineY.map((b) => b.bidId), [yBid.body.bidId]);
    t.equal(mineY[0]!.maxAmount, 1200);
    const all = await history(undefined, 'limit=100');
    t.ok(all.some((b) => b.bidId === proxy.body.bidId) && all.some((b) => b.bidId === yBid.body.bidId), 'the public history has both');
    t.ok(all.every((b) => b.maxAmount === undefined), 'and no maximum of anyone');
    t.notOk(all.some((b) => Object.values(b).includes(5000)), "x's hidden maximum appears nowhere in it");
  });

  t.test('percentage and tiered increments end to end: created over HTTP, decided by the script, shown alike by GET', async (t) => {
    const cases: [Record<string, unknown>, number, [number, number][]][] = [
      // rule, start price, [bid amount, next minimum after it]
      [{ type: 'percentage', basisPoints: 500 }, 1000, [[1000, 1050], [1051, 1051 + 53], [2000, 2100]]],
      [{ type: 'tiered', tiers: [{ from: 0, increment: 10 }, { from: 1000, increment: 50 }, { from: 5000, increment: 100 }] }, 900, [[900, 910], [999, 1009], [1009, 1059], [5000, 5100]]],
    ];
    let i = 10;
    for (const [increment, startPrice, steps] of cases) {
      const a = await createAuction(sys, { increment, startPrice });
      t.equal(a.nextMinimumBid, startPrice);
      for (const [amount, next] of steps) {
        const r = await bid(sys, buyers[i++]!, a.id, { amount });
        t.equal(r.status, 202, `${increment.type}: ${amount} accepted`);
        t.equal(r.body.nextMinimumBid, next, `${increment.type}: after ${amount}, the script asks ${next}`);
        t.equal((await call(`${sys.url}/v1/auctions/${a.id}`)).body.nextMinimumBid, next, 'and GET says the same');
      }
      const low = await bid(sys, buyers[i++]!, a.id, { amount: steps[steps.length - 1]![1] - 1 });
      t.match(low.body, { code: 'BID_TOO_LOW', nextMinimumBid: steps[steps.length - 1]![1] }, 'one below it is too low');
    }
  });

  t.test('1,000 parallel bids from distinct bidders: the leader is the highest, ties the earliest', async (t) => {
    const a = await createAuction(sys);
    const bidders = buyers.slice(100, 1100);
    // Many equal amounts, so ties must be broken by order of acceptance.
    const amounts = bidders.map((_, i) => 1000 + 100 * (i % 40));
    const answers = await Promise.all(bidders.map((b, i) => bid(sys, b, a.id, { amount: amounts[i]! })));
    const accepted = answers.filter((r) => r.status === 202);
    t.ok(accepted.length > 0);
    t.ok(answers.every((r) => r.status === 202 || (r.status === 409 && r.body.code === 'BID_TOO_LOW')), 'only 202 or BID_TOO_LOW');
    const bids = await sys.redis.hgetall(auctionKeys.bids(a.id));
    const stored = Object.entries(bids).map(([id, raw]) => parseStoredBid(id, raw));
    t.equal(stored.length, accepted.length, 'one stored bid per 202');
    const highest = Math.max(...stored.map((b) => b.amount));
    const earliestHighest = stored.filter((b) => b.amount === highest).sort((p, q) => p.seq - q.seq)[0]!;
    const live = await sys.redis.hgetall(auctionKeys.auction(a.id));
    t.equal(live.leaderBid, earliestHighest.bidId, 'the leader is the earliest of the highest bids');
    t.equal(Number(live.price), highest);
    // History is consistent: in sequence order every accepted bid was at least the next minimum at its time.
    const bySeq = [...stored].sort((p, q) => p.seq - q.seq);
    let price: number | null = null;
    let ok = true;
    for (const b of bySeq) {
      const min: number = price === null ? 1000 : price + incrementOf({ type: 'absolute', amount: 100 }, price);
      if (b.amount < min) ok = false;
      price = Math.max(price ?? 0, b.amount);
    }
    t.ok(ok, 'each accepted bid met the minimum of its moment');
    const view = (await call(`${sys.url}/v1/auctions/${a.id}`)).body;
    t.equal(view.bidCount, accepted.length);
    t.equal(view.currentPrice, highest);
    // History pages cover every bid exactly once, newest first.
    const seen: string[] = [];
    let before: number | null = null;
    do {
      const page: HttpAnswer = await call(`${sys.url}/v1/auctions/${a.id}/bids?limit=100${before ? `&before=${before}` : ''}`);
      t.equal(page.status, 200);
      seen.push(...page.body.items.map((b: { bidId: string }) => b.bidId));
      before = page.body.next;
    } while (before !== null);
    t.equal(seen.length, accepted.length);
    t.equal(new Set(seen).size, seen.length, 'no bid twice');
    const mine = await call(`${sys.url}/v1/auctions/${a.id}/bids?mine=true`, { headers: { authorization: `Bearer ${sys.token(bidders[0]!)}` } });
    t.ok(mine.body.items.every((b: { maxAmount?: number }) => typeof b.maxAmount === 'number'), 'own bids show their maximum');
    const pub = await call(`${sys.url}/v1/auctions/${a.id}/bids?limit=5`);
    t.ok(pub.body.items.every((b: { maxAmount?: number; bidder: string }) => b.maxAmount === undefined && /^bidder-/.test(b.bidder)), 'others see handles, never maxima');
    t.notOk(JSON.stringify(pub.body).includes('usr_'), 'no buyer id in the public history');
  });

  t.test('proxy bidding against manual bids', async (t) => {
    const a = await createAuction(sys);
    const [p, m] = [buyers[1101]!, buyers[1102]!];
    t.match((await bid(sys, p, a.id, { amount: 1000, maxAmount: 3000 })).body, { leading: true, currentPrice: 1000 });
    for (const amount of [1200, 1800, 2500]) {
      const r = await bid(sys, m, a.id, { amount });
      t.match(r.body, { leading: false, currentPrice: amount + 100 }, `manual ${amount} is outbid by the proxy at once`);
    }
    t.match((await bid(sys, m, a.id, { amount: 3000 })).body, { leading: false, currentPrice: 3000 }, 'equal to the proxy maximum: the earlier proxy keeps it');
    t.match((await bid(sys, m, a.id, { amount: 3100 })).body, { leading: true, currentPrice: 3100 }, 'above the maximum leads');
  });

  t.test('two buyers hitting buy-now at once: one wins, the other is told it closed', async (t) => {
    for (let round = 0; round < 5; round++) {
      const a = await createAuction(sys, { buyNowPrice: 50_000 });
      const [x, y] = [buyers[1110 + 2 * round]!, buyers[1111 + 2 * round]!];
      const [r1, r2] = await Promise.all([bid(sys, x, a.id, { amount: 50_000 }), bid(sys, y, a.id, { amount: 60_000 })]);
      const statuses = [r1.status, r2.status].sort();
      t.same(statuses, [202, 409], `round ${round}: one 202, one 409`);
      const loser = r1.status === 409 ? r1 : r2;
      t.equal(loser.body.code, 'AUCTION_CLOSED');
      const winner = r1.status === 202 ? r1 : r2;
      t.match(winner.body, { closed: true, leading: true, currentPrice: 50_000 });
      t.match((await call(`${sys.url}/v1/auctions/${a.id}`)).body, { status: 'closed', currentPrice: 50_000 });
    }
  });

  t.test('soft close: extended by accepted bids only, never past the hard close', async (t) => {
    const now = Date.now();
    const a = await createAuction(sys, { endsAt: iso(now + 4000), hardCloseAt: iso(now + 9000), softCloseSeconds: 30 });
    const refused = await bid(sys, buyers[1130]!, a.id, { amount: 10 });
    t.equal(refused.status, 409);
    t.equal((await call(`${sys.url}/v1/auctions/${a.id}`)).body.endsAt, a.endsAt, 'a refused bid extends nothing');
    const ok = await bid(sys, buyers[1130]!, a.id, { amount: 1000 });
    t.equal(ok.body.endsAt, a.hardCloseAt, 'now + W is past the hard close: capped');
    const ok2 = await bid(sys, buyers[1131]!, a.id, { amount: 1100 });
    t.equal(ok2.body.endsAt, a.hardCloseAt);
  });

  t.test('the scheduler closes an extended auction at its new end, not its first one', async (t) => {
    const { scheduler, stop } = await sys.startScheduler();
    t.teardown(stop);
    const now = Date.now();
    const a = await createAuction(sys, { endsAt: iso(now + 1500), softCloseSeconds: 4, hardCloseAt: iso(now + 20_000) });
    const r = await bid(sys, buyers[1135]!, a.id, { amount: 1000 });
    const extendedTo = Date.parse(r.body.endsAt);
    t.ok(extendedTo > Date.parse(a.endsAt), 'the bid extended the end');
    await waitFor('the first end to pass', async () => Date.now() > Date.parse(a.endsAt) + 500, 5_000);
    t.equal(await sys.redis.hget(auctionKeys.auction(a.id), 'status'), 'open', 'still open past its first end');
    t.equal((await bid(sys, buyers[1136]!, a.id, { amount: 1100 })).status, 202, 'and still taking bids');
    await waitFor('the scheduler to close it', async () => scheduler.closed >= 1 && (await sys.redis.hget(auctionKeys.auction(a.id), 'status')) === 'closed', 15_000);
    const live = await sys.redis.hgetall(auctionKeys.auction(a.id));
    t.ok(Number(live.endsAt) >= extendedTo, 'the end is the extended one (or later)');
    t.ok(Number(live.closedAt) >= Number(live.endsAt), 'closed at or after it');
    t.ok(scheduler.closed >= 1, 'closed by the scheduler (the only one running)');
    // Stopped here, not only at teardown: tap runs a subtest's teardown after the next one may have started.
    await stop();
  });

  t.test('a bid racing the close: nothing is accepted after it', async (t) => {
    const { scheduler, stop } = await sys.startScheduler();
    t.teardown(stop);
    const a = await createAuction(sys, { endsAt: iso(Date.now() + 1500), softCloseSeconds: 0 });
    const racers = buyers.slice(1140, 1190);
    let amount = 1000;
    const answers: HttpAnswer[] = [];
    const deadline = Date.now() + 3500;
    while (Date.now() < deadline) {
      const wave = await Promise.all(racers.slice(0, 10).map((b) => bid(sys, b, a.id, { amount: (amount += 100) + 100_000 })));
      answers.push(...wave);
      if (wave.every((r) => r.status === 409 && r.body.code === 'AUCTION_CLOSED')) break;
    }
    // The counter moves a moment after the script closed it: wait for both, not the status alone.
    await waitFor('the scheduler closes it', async () => scheduler.closed >= 1 && (await sys.redis.hget(auctionKeys.auction(a.id), 'status')) === 'closed');
    const live = await sys.redis.hgetall(auctionKeys.auction(a.id));
    t.equal(live.closeReason, 'time', 'closed by its end');
    const stored = Object.entries(await sys.redis.hgetall(auctionKeys.bids(a.id))).map(([id, raw]) => parseStoredBid(id, raw));
    t.equal(stored.length, answers.filter((r) => r.status === 202).length, 'every 202 is a stored bid, no other');
    t.ok(stored.every((b) => b.placedAt < Number(live.endsAt)), 'every accepted bid was placed before the end');
    t.ok(Number(live.closedAt) >= Number(live.endsAt), 'closed at or after its end');
    const after = await bid(sys, racers[20]!, a.id, { amount: 10_000_000 });
    t.equal(after.body.code, 'AUCTION_CLOSED');
    t.equal(await sys.redis.hlen(auctionKeys.bids(a.id)), stored.length, 'the refused bid stored nothing');
    await stop();
  });

  t.test('retraction of the leading bid over HTTP', async (t) => {
    const a = await createAuction(sys);
    const [x, y] = [buyers[1191]!, buyers[1192]!];
    await bid(sys, x, a.id, { amount: 1000 });
    const lead = await bid(sys, y, a.id, { amount: 1500 });
    t.equal((await retract(sys, x, a.id, lead.body.bidId)).status, 404, "another bidder's bid is not found");
    const r = await retract(sys, y, a.id, lead.body.bidId);
    t.equal(r.status, 200);
    t.match(r.body, { status: 'retracted', currentPrice: 1000 });
    t.match((await call(`${sys.url}/v1/auctions/${a.id}`)).body, { currentPrice: 1000, bidCount: 1 });
    t.equal((await retract(sys, y, a.id, 'bid_nope')).status, 404);
    const other = await createAuction(sys);
    t.equal((await retract(sys, y, other.id, lead.body.bidId)).status, 404, 'a bid id of another auction');
    const late = await createAuction(sys, { endsAt: iso(Date.now() + 20_000), softCloseSeconds: 60, hardCloseAt: iso(Date.now() + 20_000) });
    const lb = await bid(sys, x, late.id, { amount: 1000 });
    const tooLate = await retract(sys, x, late.id, lb.body.bidId);
    t.equal(tooLate.status, 409);
    t.equal(tooLate.body.code, 'RETRACTION_TOO_LATE');
  });

  t.test('sellers create auctions and cancel only their own', async (t) => {
    const newSeller = async (name: string) => (await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name }) })).body as { id: string; apiKey: string };
    const [owner, stranger] = [await newSeller('Owner'), await newSeller('Stranger')];
    const asSeller = (key: string, path: string, init: RequestInit = {}) =>
      call(`${sys.url}${path}`, { ...init, headers: { 'x-api-key': key, 'content-type': 'application/json' } });
    const created = await asSeller(owner.apiKey, '/v1/auctions', { method: 'POST', body: JSON.stringify(auctionBody()) });
    t.equal(created.status, 201);
    t.equal(created.body.sellerId, owner.id, 'the auction is the seller\'s');
    const foreign = await asSeller(stranger.apiKey, `/v1/auctions/${created.body.id}/cancel`, { method: 'POST' });
    t.equal(foreign.status, 404, "another seller's auction is answered as missing");
    t.equal(await sys.redis.hget(auctionKeys.auction(created.body.id), 'status'), 'open', 'and is left open');
    const own = await asSeller(owner.apiKey, `/v1/auctions/${created.body.id}/cancel`, { method: 'POST' });
    t.equal(own.status, 200);
    t.equal(own.body.status, 'cancelled');
    const again = await asSeller(owner.apiKey, `/v1/auctions/${created.body.id}/cancel`, { method: 'POST' });
    t.equal(again.status, 200, 'cancelling twice is harmless');
  });

  t.test('cancel: bidders released, no more bids', async (t) => {
    const a = await createAuction(sys);
    await bid(sys, buyers[1193]!, a.id, { amount: 1000 });
    const c = await sys.operator(`/v1/auctions/${a.id}/cancel`, { method: 'POST' });
    t.equal(c.status, 200);
    t.equal(c.body.status, 'cancelled');
    const r = await bid(sys, buyers[1194]!, a.id, { amount: 5000 });
    t.equal(r.body.code, 'AUCTION_CLOSED');
    t.equal((await sys.pool.query('SELECT status FROM auctions WHERE id = $1', [a.id])).rows[0].status, 'cancelled');
  });

  t.test('the promoter doubles one live bid, chosen by its policy', async (t) => {
    const { stop } = await sys.startScheduler();
    t.teardown(stop);
    const a = await createAuction(sys, { promoter: { enabled: true, minIntervalSeconds: 1, maxIntervalSeconds: 2, policy: 'recency' } });
    const [x, y] = [buyers[1195]!, buyers[1196]!];
    await bid(sys, x, a.id, { amount: 1000 });
    await bid(sys, y, a.id, { amount: 1100 });
    await waitFor('a promotion', async () => (await sys.redis.xlen(auctionKeys.outbox(a.id))) > 0 &&
      (await sys.redis.xrange(auctionKeys.outbox(a.id), '-', '+')).some(([, f]) => f.includes('stampede.auction.bid_doubled.v1')), 15_000);
    const stored = Object.entries(await sys.redis.hgetall(auctionKeys.bids(a.id))).map(([id, raw]) => parseStoredBid(id, raw));
    const doubled = stored.filter((b) => b.bonus > 0);
    t.ok(doubled.length >= 1, 'a bid was doubled');
    t.ok(doubled.every((b) => [1000, 1100].includes(b.bonus) && b.amount === 2 * b.bonus && b.maxAmount === 2 * b.bonus), 'a bid of 1000 or 1100 doubled, the house adding the original amount');
    // Policies are plain functions: uniform and recency with a fixed random source.
    const bids = stored.map((b, i) => ({ ...b, seq: i + 1 }));
    t.equal(promoterPolicies.uniform(bids, () => 0)?.bidId, bids[0]!.bidId);
    t.equal(promoterPolicies.recency(bids, () => 0.99)?.bidId, bids[bids.length - 1]!.bidId, 'recency favours the latest');
    t.equal(promoterPolicies.uniform([], () => 0.5), undefined);
  });

  t.test('live: every api node pushes price, leader handle and end of each accepted bid', async (t) => {
    const second = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-2'));
    await holdToDocument(t, second.url);
    t.teardown(() => second.stop());
    const a = await createAuction(sys, { endsAt: iso(Date.now() + 600_000), softCloseSeconds: 10 });
    const [c1, c2] = await Promise.all([LiveClient.connect(sys.url), LiveClient.connect(second.url)]);
    t.teardown(() => {
      c1.ws.close();
      c2.ws.close();
    });
    const snap = await c1.subscribe(`auction/${a.id}`);
    t.match(snap.snapshot, { auctionId: a.id, price: null, nextMinimum: 1000, leader: null, bidCount: 0, status: 'open' });
    await c2.subscribe(`auction/${a.id}`);
    const r = await bid(sys, buyers[1199]!, a.id, { amount: 1000 });
    t.equal(r.status, 202);
    const salt = (await sys.pool.query('SELECT handle_salt FROM auctions WHERE id = $1', [a.id])).rows[0].handle_salt;
    for (const [name, c] of [['node 1', c1], ['node 2', c2]] as const) {
      const update = await c.next((f) => f.topic === `auction/${a.id}` && f.data?.bidCount === 1, `the bid on ${name}`);
      t.match(update.data, { price: 1000, nextMinimum: 1100, leader: handleOf(salt, buyers[1199]!), endsAt: Date.parse(r.body.endsAt), status: 'open' }, name);
    }
    const refused = await bid(sys, buyers[1199]!, a.id, { amount: 5 });
    t.equal(refused.status, 409);
    await bid(sys, buyers[1198]!, a.id, { amount: 1100 });
    const next = await c1.next((f) => f.topic === `auction/${a.id}`, 'the next update');
    t.equal(next.data.bidCount, 2, 'the refused bid pushed nothing: the next update is the second accepted bid');
  });

  t.test('deleting a buyer retracts their bids, cancels their pending purchase, refuses their token, anonymises them', async (t) => {
    const a = await createAuction(sys);
    const [gone, stays] = [buyers[1197]!, buyers[1198]!];
    await bid(sys, stays, a.id, { amount: 1000 });
    await bid(sys, gone, a.id, { amount: 1500 });
    const sale = await sys.createSale({ stock: 10 });
    const p = await sys.purchase(gone, sale.id);
    t.equal(p.status, 202);
    const asGone = { authorization: `Bearer ${sys.token(gone)}`, 'content-type': 'application/json' };
    t.equal((await call(`${sys.url}/v1/interests/Books`, { method: 'PUT', headers: asGone })).status, 201);
    t.equal((await call(`${sys.url}/v1/sales/${sale.id}/watch`, { method: 'PUT', headers: asGone })).status, 201);
    t.equal((await call(`${sys.url}/v1/notification-preferences`, { method: 'PUT', headers: asGone, body: JSON.stringify({ phone: '+15005550006' }) })).status, 200);
    // Another api node, up before the deletion: it must learn of it through pub/sub.
    const other = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-2'));
    await holdToDocument(t, other.url);
    t.teardown(() => other.stop());
    const wallet = (url: string) => call(`${url}/v1/wallet`, { headers: { authorization: `Bearer ${sys.token(gone)}` } });
    t.equal((await wallet(other.url)).status, 200, 'the other node serves the buyer before');
    const del = await sys.operator(`/v1/buyers/${gone}`, { method: 'DELETE' });
    t.equal(del.status, 200);
    t.match(del.body, { userId: gone, retractedBids: 1, cancelledPurchases: 1 });
    t.match((await call(`${sys.url}/v1/auctions/${a.id}`)).body, { currentPrice: 1000, bidCount: 1 });
    const refused = await bid(sys, gone, a.id, { amount: 9000 });
    t.equal(refused.status, 401, 'their token is refused');
    await waitFor('the other node to refuse the token', async () => (await wallet(other.url)).status === 401, 10_000);
    const later = await startApi(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'api-3'));
    await holdToDocument(t, later.url);
    t.teardown(() => later.stop());
    t.equal((await wallet(later.url)).status, 401, 'a node started afterwards refuses it from the start');
    t.equal((await wallet(sys.url)).status, 401, 'and so does the node that deleted it');
    const user = (await sys.pool.query('SELECT name, email, deleted_at FROM users WHERE id = $1', [gone])).rows[0];
    t.match(user, { name: 'deleted buyer', email: null });
    const settings = async (table: string) => (await sys.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE buyer_id = $1`, [gone])).rows[0].n;
    t.same([await settings('buyer_interests'), await settings('sale_watches'), await settings('notification_preferences')], [0, 0, 0],
      'no interest, watch or notification address of theirs is kept: no fan-out finds them');
    t.ok(user.deleted_at);
    const history = await call(`${sys.url}/v1/auctions/${a.id}/bids`);
    t.equal(history.body.items.length, 2, 'their history stays');
    t.equal((await sys.operator(`/v1/buyers/${gone}`, { method: 'DELETE' })).status, 200, 'deleting twice is harmless');
    t.equal((await sys.operator('/v1/buyers/usr_000000000000', { method: 'DELETE' })).status, 404);
    t.equal((await call(`${sys.url}/v1/buyers/${stays}`, { method: 'DELETE' })).status, 401, 'operators only');
    await sleep(0);
  });
});
