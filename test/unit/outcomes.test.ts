/** The one outcome table: the scripts use only its names, each meaning has one number, and each refusal one answer. */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';
import { luaOutcomeTable, Outcome, refusalOf, type Refusal } from '../../src/platform/redis/outcomes.js';
import { scriptLibrary } from '../../src/platform/redis/functions.js';
import { AppError, problemOf } from '../../src/platform/errors.js';

const luaNames = new Map([...luaOutcomeTable().matchAll(/(\w+) = (-?\d+)/g)].map((m) => [m[1]!, Number(m[2])]));

t.test('every number means one thing', async (t) => {
  const numbers = Object.values(Outcome).filter((v) => typeof v === 'number');
  t.equal(new Set(numbers).size, numbers.length);
  t.equal(luaNames.size, numbers.length, 'the Lua table has every outcome');
  t.equal(luaNames.get('soldOut'), Outcome.SoldOut);
  t.equal(luaNames.get('alreadyApplied'), Outcome.AlreadyApplied);
});

t.test('the scripts name only outcomes the table has, and return no bare codes', async (t) => {
  const dir = join(projectRoot, 'lua');
  for (const product of readdirSync(dir)) {
    for (const file of readdirSync(join(dir, product))) {
      const text = readFileSync(join(dir, product, file), 'utf8');
      const code = text.replace(/--\[\[[\s\S]*?\]\]/, '');
      for (const m of code.matchAll(/OUTCOME\.(\w+)/g)) t.ok(luaNames.has(m[1]!), `${file}: OUTCOME.${m[1]} exists`);
      // A script that answers with an outcome says so in its header (trimOutbox answers a count).
      if (/Output[^\n]*OUTCOME/.test(text)) t.notMatch(code, /return \{ ?-?\d+ ?[,}]/, `${file} returns no bare outcome number`);
    }
  }
  t.match(scriptLibrary().code, /^#!lua name=stampede_\w+\nlocal OUTCOME = \{ applied = 1, /, 'the library defines the table first');
});

t.test('each refusal has one answer, named after its subject', async (t) => {
  const cases: [Refusal, string, string][] = [
    [{ code: Outcome.NotFound }, 'NOT_FOUND', 'NOT_FOUND'],
    [{ code: Outcome.NotOpenYet, startsAt: 0 }, 'SALE_NOT_OPEN', 'AUCTION_NOT_OPEN'],
    [{ code: Outcome.Closed, status: 'closed' }, 'SALE_ENDED', 'AUCTION_CLOSED'],
    [{ code: Outcome.RateLimited, retryAfterMs: 1500 }, 'RATE_LIMITED', 'RATE_LIMITED'],
    [{ code: Outcome.IdempotencyMismatch, purchaseId: 'p' }, 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_REUSED'],
    [{ code: Outcome.SoldOut, available: 0 }, 'SOLD_OUT', 'SOLD_OUT'],
    [{ code: Outcome.SoldOut, available: 2 }, 'NOT_ENOUGH_STOCK', 'NOT_ENOUGH_STOCK'],
    [{ code: Outcome.LimitReached, bought: 1, limit: 1 }, 'LIMIT_REACHED', 'LIMIT_REACHED'],
    [{ code: Outcome.InProgress, purchaseId: 'p' }, 'PURCHASE_IN_PROGRESS', 'PURCHASE_IN_PROGRESS'],
    [{ code: Outcome.NotCancellable, status: 'failed' }, 'NOT_CANCELLABLE', 'NOT_CANCELLABLE'],
    [{ code: Outcome.BidTooLow, nextMinimum: 5 }, 'BID_TOO_LOW', 'BID_TOO_LOW'],
    [{ code: Outcome.NotAboveOwnBid, ownMaximum: 5 }, 'NOT_ABOVE_OWN_BID', 'NOT_ABOVE_OWN_BID'],
    [{ code: Outcome.TooLateToRetract, endsAt: 0 }, 'RETRACTION_TOO_LATE', 'RETRACTION_TOO_LATE'],
    [{ code: Outcome.UnknownBid }, 'NOT_FOUND', 'NOT_FOUND'],
  ];
  for (const [refusal, forSale, forAuction] of cases) {
    t.equal(refusalOf('sale', refusal).code, forSale, `${Outcome[refusal.code]} for a sale`);
    t.equal(refusalOf('auction', refusal).code, forAuction, `${Outcome[refusal.code]} for an auction`);
  }
  t.equal(refusalOf('bid', { code: Outcome.NotFound }).detail, 'no such bid');
  t.equal(refusalOf('purchase', { code: Outcome.NotFound }).detail, 'no such purchase');
  t.same(refusalOf('sale', { code: Outcome.RateLimited, retryAfterMs: 1500 }).headers, { 'Retry-After': '2' });
  t.same(refusalOf('auction', { code: Outcome.IdempotencyMismatch, bidId: 'b' }).extra, { bidId: 'b' });
  t.equal(refusalOf('auction', { code: Outcome.Closed, status: 'cancelled' }).detail, 'the auction was cancelled');
});

t.test("a problem's own members are never replaced by an extension", async (t) => {
  const closed = problemOf(refusalOf('auction', { code: Outcome.Closed, status: 'ended' }));
  t.match(closed, { status: 409, code: 'AUCTION_CLOSED', auctionStatus: 'ended' }, 'the HTTP status, and the auction\'s under its own name');
  const clash = problemOf(new AppError('NOT_FOUND', 'gone', { status: 'x', type: 'y', title: 'z', code: 'w', detail: 'v', other: 1 }));
  t.match(clash, { status: 404, code: 'NOT_FOUND', detail: 'gone', other: 1 });
  t.notMatch(clash.type, /^y$/);
  t.not(clash.title, 'z');
});
