/**
 * The event catalogue against what really travels: every event the scripts
 * append to an outbox, and every announcement settlement publishes, is of a
 * type the catalogue has and matches the JSON Schema of its data; the Lua
 * sources name only catalogue types; the topology binds what the catalogue
 * routes.
 */
import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { projectRoot } from '../../src/platform/paths.js';
import { EVENT_TYPES, EVENTS, eventTypeOf, luaEventTable } from '../../src/events/catalogue.js';
import { newPurchaseId, newSaleId, newUserId } from '../../src/platform/ids.js';
import { saleKeys } from '../../src/sales/keys.js';
import { loadSale, requestCancel, expirePurchase, reservePurchase } from '../../src/sales/scripts.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { closeAuction, promoteBid, retractBid } from '../../src/auctions/scripts.js';
import { parseAuctionEvent } from '../../src/auctions/events.js';
import { settleAuctions } from '../../src/auctions/settlement.js';
import { MAX_AUCTION_AMOUNT } from '../../src/auctions/rules.js';
import { createBuyers, creditWallet } from '../../src/buyers/buyers.js';
import { cloudEventJson, outboxEntryOf } from '../../src/platform/messaging/events.js';
import { Outcome } from '../../src/platform/redis/outcomes.js';
import { createPool } from '../../src/platform/db/pool.js';
import { migrate } from '../../src/platform/db/migrate.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { createLogger } from '../../src/platform/log.js';
import { bid, closeWhenDue, createAuction } from '../helpers/auctions.js';
import { sleep, testConfig } from '../helpers/system.js';

const cfg = testConfig();
const ajv = new Ajv({ allErrors: true, strict: false });
const validators = new Map(EVENT_TYPES.map((e) => [e.type, ajv.compile(e.schema)]));

/** Checks one event against the catalogue; returns its type. */
function check(t: Test, type: string, data: unknown, where: string): void {
  const validate = validators.get(type);
  if (!validate) {
    t.fail(`${where}: ${type} is not in the catalogue`);
    return;
  }
  t.ok(validate(data), `${where}: ${type} matches its schema`, { errors: validate.errors, data });
}

t.test('the Lua sources name only catalogue types, and every scripted type names a script that emits it', async (t) => {
  const lua = join(projectRoot, 'lua');
  const sources = readdirSync(lua).flatMap((dir) => readdirSync(join(lua, dir)).map((f) => ({ file: `lua/${dir}/${f}`, text: readFileSync(join(lua, dir, f), 'utf8') })));
  const names = new Set(EVENT_TYPES.map((e) => e.name));
  for (const { file, text } of sources) {
    t.notMatch(text.replace(/--\[\[[\s\S]*?\]\]/, ''), /'stampede\.[a-z0-9_.]+'/, `${file} spells no event type itself`);
    for (const m of text.matchAll(/EVENT\['([a-z_.]+)'\]/g)) t.ok(names.has(m[1]!), `${file}: EVENT['${m[1]}'] is in the catalogue`);
    for (const m of text.matchAll(/emit\(K, [\w[\]]+, '([a-z_]+)'/g)) t.ok(names.has(`auction.${m[1]}`), `${file}: emits auction.${m[1]}, in the catalogue`);
  }
  for (const e of EVENT_TYPES.filter((x) => x.emittedBy.startsWith('lua/'))) {
    const text = sources.find((s) => s.file === e.emittedBy)?.text ?? '';
    const short = e.name.replace(/^auction\./, '');
    t.ok(text.includes(`EVENT['${e.name}']`) || text.includes(`'${short}'`), `${e.emittedBy} emits ${e.name}`);
  }
  t.match(luaEventTable(), /^local EVENT = \{ \['purchase\.accepted'\] = 'stampede\.purchase\.accepted\.v1', /);
  t.same(cfg.topology.orders.bindings, ['purchase.accepted.v1', 'purchase.cancel_requested.v1', 'purchase.expired.v1']);
  t.same(cfg.topology.notifications.bindings, EVENT_TYPES.filter((e) => e.concerns.includes('notifications')).map((e) => e.routingKey));
});

t.test('what the scripts append and settlement announces matches the catalogue', async (t) => {
  const log = createLogger('silent', 'test');
  await migrate(cfg.STAMPEDE_DATABASE_URL, log);
  const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 2);
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'event-catalogue-test' });
  t.teardown(() => Promise.all([pool.end(), redis.quit()]));

  // A sale: a purchase accepted, then its cancellation requested.
  const saleId = newSaleId();
  const now = Date.now();
  await loadSale(redis, { id: saleId, status: 'open', startsAt: now - 1000, endsAt: now + 60_000, perBuyerLimit: 2, unitPrice: 500, currency: 'EUR', stock: 10 }, 0);
  const buyer = newUserId();
  const accepted = await reservePurchase(redis, {
    saleId, buyerId: buyer, quantity: 2, purchaseId: newPurchaseId(saleId), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000,
  });
  t.equal(accepted.code, Outcome.Applied);
  if (accepted.code !== Outcome.Applied) return;
  t.equal((await requestCancel(redis, saleId, accepted.purchaseId, buyer)).code, Outcome.Applied);
  // Another, past a reservation deadline of 0 ms: its expiry.
  const late = await reservePurchase(redis, {
    saleId, buyerId: newUserId(), quantity: 1, purchaseId: newPurchaseId(saleId), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 1000,
  });
  if (late.code !== Outcome.Applied) return t.fail('the second purchase was refused');
  t.equal((await expirePurchase(redis, saleId, late.purchaseId, 0)).code, Outcome.Applied);
  const saleEntries = await redis.xrange(saleKeys.outbox(saleId), '-', '+');
  t.same(saleEntries.map(([, f]) => f[1]), [EVENTS.purchaseAccepted.type, EVENTS.purchaseCancelRequested.type, EVENTS.purchaseAccepted.type, EVENTS.purchaseExpired.type]);
  for (const [id, fields] of saleEntries) {
    const entry = outboxEntryOf(saleKeys.outbox(saleId), id, fields);
    check(t, entry.type, JSON.parse(entry.data), 'sale outbox');
  }

  // An auction: bids (one taking the lead, one in the soft close), a retraction, a doubling, the close.
  const [a, b, c] = await createBuyers(pool, [{ name: 'A' }, { name: 'B' }, { name: 'C' }]);
  for (const u of [a!, b!, c!]) await creditWallet(pool, u.id, 'EUR', 1_000_000, `credit:catalogue:${u.id}`);
  const auction = await createAuction(pool, redis, { endsAt: Date.now() + 1_500, hardCloseAt: Date.now() + 4_000, softCloseMs: 1_000, promoter: true });
  await bid(redis, auction, a!.id, 1000, 3000);
  const second = await bid(redis, auction, b!.id, 4000, 6000);
  // Inside the last second: the soft close extends the end.
  await sleep(Math.max(0, auction.endsAt - Date.now() - 700));
  await bid(redis, auction, c!.id, 1100 + 6000);
  t.equal((await retractBid(redis, auction.id, b!.id, second, true)).code, Outcome.Applied);
  const doubled = await promoteBid(redis, auction.id, (await redis.hget(auctionKeys.standing(auction.id), a!.id))!, MAX_AUCTION_AMOUNT);
  t.equal(doubled.code, Outcome.Applied, 'a standing bid doubled');
  t.equal((await closeWhenDue(redis, auction.id)).code, Outcome.Applied);
  const cancelled = await createAuction(pool, redis);
  await bid(redis, cancelled, a!.id, 1000);
  t.equal((await closeAuction(redis, cancelled.id, 'cancel')).code, Outcome.Applied);

  const logged = [];
  for (const id of [auction.id, cancelled.id]) {
    for (const [streamId, fields] of await redis.xrange(auctionKeys.outbox(id), '-', '+')) {
      const entry = outboxEntryOf(auctionKeys.outbox(id), streamId, fields);
      check(t, entry.type, JSON.parse(entry.data), 'auction outbox');
      logged.push(parseAuctionEvent(JSON.parse(cloudEventJson(entry, 'test'))));
    }
  }
  const types = new Set(logged.map((e) => e.type));
  for (const type of ['bid_placed', 'bid_retracted', 'bid_doubled', 'extended', 'closed', 'cancelled']) t.ok(types.has(type as never), `the run emitted ${type}`);

  const announcements = await settleAuctions(pool, logged);
  const announced = new Set(announcements.map((e) => e.type));
  for (const e of [EVENTS.auctionOutbid, EVENTS.auctionWon, EVENTS.auctionLost, EVENTS.auctionReleased]) t.ok(announced.has(e.type), `settlement announced ${e.name}`);
  for (const e of announcements) {
    t.ok(eventTypeOf(e.type), `${e.type} is in the catalogue`);
    check(t, e.type, e.data, 'announcement');
  }
});
