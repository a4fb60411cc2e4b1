/**
 * Webhook delivery against a real local receiver: each message signed as
 * Standard Webhooks says (verified with the `standardwebhooks` package, as
 * a receiver would), only to the endpoints that subscribed and only with
 * their seller's events; one message per (event, endpoint) under a
 * redelivered event; each retry rule (2xx, 3xx, 429 + Retry-After, 410,
 * timeout); the schedule's end, replay and recover; rotation's two
 * signatures; disabling after a failing streak, the seller told; a slow
 * endpoint never holding back another's deliveries; and the retention
 * sweep deleting old done messages, never a pending one.
 */
import t, { type Test } from 'tap';
import { Webhook } from 'standardwebhooks';
import { boot, call, OPERATOR_KEY, waitFor } from '../helpers/system.js';
import { confirmedEvent, newSeller, publishEvents, startReceiver } from '../helpers/webhooks.js';
import { startWorker } from '../../src/roles/worker.js';
import { scrape } from '../helpers/metrics.js';
import { createLogger } from '../../src/platform/log.js';
import { Sales } from '../../src/sales/sales.js';
import { newPurchaseId } from '../../src/platform/ids.js';
import type { CloudEvent } from '../../src/platform/messaging/events.js';
import { webhookRetentionSweep } from '../../src/webhooks/retention.js';

const PER_ENDPOINT = 2;
const sys = await boot(t, {
  env: {
    STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true', STAMPEDE_WEBHOOK_RETRY_SCHEDULE_MS: '0,50,50,50', STAMPEDE_WEBHOOK_TIMEOUT_MS: '300',
    STAMPEDE_WEBHOOK_POLL_MS: '20', STAMPEDE_WEBHOOK_ENDPOINT_CONCURRENCY: String(PER_ENDPOINT), STAMPEDE_WORKER_QUEUES: 'webhooks',
  },
});
await sys.pool.query('DELETE FROM webhook_endpoints');
const worker = await startWorker(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'worker'));
t.teardown(() => worker.stop());
const fanOut = worker.webhooks!;
const receiver = await startReceiver(t);
const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 0 });
const ada = await newSeller(sys, 'Ada');
const bob = await newSeller(sys, 'Bob');

async function saleOf(seller: { id: string }): Promise<string> {
  const now = Date.now();
  const sale = await new Sales(sys.pool, sys.redis).create({
    name: 'Drop', sku: 'D-1', unitPrice: 1000, currency: 'EUR', stock: 10, perBuyerLimit: 1,
    startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(),
  }, { role: 'seller', userId: seller.id });
  return sale.id;
}
const adaSale = await saleOf(ada);
const bobSale = await saleOf(bob);

const as = (key: string, method: string, path: string, body?: unknown) =>
  call(`${sys.url}${path}`, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

async function register(key: string, path: string, events = ['purchase.confirmed']): Promise<{ id: string; secret: string }> {
  const r = await as(key, 'POST', '/v1/webhooks', { url: `${receiver.url}${path}`, events });
  if (r.status !== 201) throw new Error(`registration answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

const confirmed = (saleId = adaSale) => confirmedEvent(saleId, buyer!, newPurchaseId(saleId));
const deliveriesOf = async (key: string, id: string, query = '') => (await as(key, 'GET', `/v1/webhooks/${id}/deliveries${query}`)).body.items as {
  id: string; eventId: string; status: string; attempts: { statusCode: number | null; error: string | null; at: string; response: string }[]; nextAttemptAt: string | null;
}[];
/** Waits until the fan-out settled `n` more events than `before` (what it made of them is in Postgres then). */
const settled = (before: number, n: number) => waitFor('the fan-out to settle', async () => fanOut.settled >= before + n);

function verify(t: Test, secret: string, r: { headers: Record<string, string>; body: string }): unknown {
  try {
    const payload = new Webhook(secret).verify(r.body, r.headers);
    t.pass(`verified with ${secret.slice(0, 10)}…`);
    return payload;
  } catch (err) {
    t.fail(`the signature does not verify with ${secret.slice(0, 10)}…: ${(err as Error).message}`);
    return undefined;
  }
}

t.test('a signed delivery to the seller\'s subscribed endpoints and the operators\', no one else', async (t) => {
  const mine = await register(ada.key, '/ada');
  const other = await register(bob.key, '/bob');
  const bids = await register(ada.key, '/ada-bids', ['bid.placed']);
  const ops = await register(OPERATOR_KEY, '/ops');
  const event = confirmed();
  await publishEvents(sys.cfg, [event]);
  await waitFor('the delivery to Ada and the operators', async () => receiver.of('/ada').length === 1 && receiver.of('/ops').length === 1);
  const got = receiver.of('/ada')[0]!;
  const payload = verify(t, mine.secret, got) as { id: string; type: string; data: { saleId: string }; dataschema: string };
  t.equal(payload.id, event.id, 'the event, under its id');
  t.equal(payload.type, 'stampede.purchase.confirmed.v1');
  t.equal(payload.data.saleId, adaSale);
  t.equal(payload.dataschema, `${sys.cfg.STAMPEDE_PUBLIC_URL}/v1/event-types/purchase.confirmed`);
  t.equal(got.headers['content-type'], 'application/json');
  t.match(got.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/, 'one signature');
  verify(t, ops.secret, receiver.of('/ops')[0]!);
  // The attempt is recorded once its answer is read: after the receiver has the request.
  await waitFor('the attempt recorded', async () => (await deliveriesOf(ada.key, mine.id))[0]?.status === 'succeeded');
  const [d] = await deliveriesOf(ada.key, mine.id);
  t.equal(d!.id, got.headers['webhook-id'], 'the webhook-id is the message\'s id');
  t.equal(d!.status, 'succeeded');
  t.equal(d!.attempts.length, 1);
  t.equal(d!.attempts[0]!.statusCode, 200);
  // Bob's sale's event: to Bob and the operators only.
  await publishEvents(sys.cfg, [confirmed(bobSale)]);
  await waitFor('the delivery to Bob', async () => receiver.of('/bob').length === 1 && receiver.of('/ops').length === 2);
  verify(t, other.secret, receiver.of('/bob')[0]!);
  t.equal(receiver.of('/ada').length, 1, "Ada never gets Bob's events");
  t.equal(receiver.of('/ada-bids').length, 0, 'an endpoint gets only the types it subscribed to');
  t.same(await deliveriesOf(ada.key, bids.id), [], 'and no message is made for it');
  for (const id of [mine.id, other.id, bids.id, ops.id]) await as(OPERATOR_KEY, 'DELETE', `/v1/webhooks/${id}`);
});

t.test('a redelivered event is one message: one request, one webhook-id', async (t) => {
  const ep = await register(ada.key, '/once');
  const event = confirmed();
  const before = fanOut.settled;
  await publishEvents(sys.cfg, [event]);
  await publishEvents(sys.cfg, [event]);
  await publishEvents(sys.cfg, [{ ...event, time: new Date().toISOString() } as CloudEvent]);
  await settled(before, 3);
  await waitFor('the delivery', async () => receiver.of('/once').length >= 1);
  await waitFor('it to be recorded', async () => (await deliveriesOf(ada.key, ep.id))[0]?.status === 'succeeded');
  t.equal(receiver.of('/once').length, 1, 'sent once');
  t.equal((await deliveriesOf(ada.key, ep.id)).length, 1, 'one message');
  await as(ada.key, 'DELETE', `/v1/webhooks/${ep.id}`);
});

t.test('retry rules: 5xx and 3xx are retried under the same id; 2xx ends it', async (t) => {
  const before = await scrape(worker.metricsUrl!);
  const ep = await register(ada.key, '/flaky');
  receiver.answer('/flaky', (n) => (n === 1 ? { status: 500, body: 'down' } : n === 2 ? { status: 302, headers: { location: '/elsewhere' } } : { status: 204 }));
  await publishEvents(sys.cfg, [confirmed()]);
  await waitFor('three attempts', async () => (await deliveriesOf(ada.key, ep.id))[0]?.status === 'succeeded');
  const got = receiver.of('/flaky');
  t.equal(got.length, 3, 'three requests');
  t.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id across the retries');
  t.equal(receiver.of('/elsewhere').length, 0, 'a redirect is not followed');
  for (const r of got) verify(t, ep.secret, r);
  const [d] = await deliveriesOf(ada.key, ep.id);
  t.same(d!.attempts.map((a) => a.statusCode), [500, 302, 204], 'every attempt recorded, in order');
  t.equal(d!.attempts[0]!.response, 'down', 'with the start of the answer');
  t.match(d!.attempts[1]!.error, /302/, 'a 3xx is a failure');
  // Counted just after each attempt's record commits.
  const after = await waitFor('the attempts counted', async () => {
    const m = await scrape(worker.metricsUrl!);
    return m.value('stampede_webhook_attempts_total', { outcome: 'succeeded' }) > before.value('stampede_webhook_attempts_total', { outcome: 'succeeded' }) ? m : undefined;
  });
  const delta = (outcome: string) => after.value('stampede_webhook_attempts_total', { outcome }) - before.value('stampede_webhook_attempts_total', { outcome });
  t.same({ retried: delta('retried'), succeeded: delta('succeeded'), failed: delta('failed') }, { retried: 2, succeeded: 1, failed: 0 }, 'the attempts counted by outcome (metrics)');
  await as(ada.key, 'DELETE', `/v1/webhooks/${ep.id}`);
});

t.test('429 and 503 with Retry-After wait as long as asked, not the schedule\'s 50 ms', async (t) => {
  const ep = await register(ada.key, '/busy');
  receiver.answer('/busy', (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : n === 2 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
  await publishEvents(sys.cfg, [confirmed()]);
  await waitFor('the delivery', async () => (await deliveriesOf(ada.key, ep.id))[0]?.status === 'succeeded', 30_000);
  const [d] = await deliveriesOf(ada.key, ep.id);
  t.same(d!.attempts.map((a) => a.statusCode), [429, 503, 200]);
  const at = d!.attempts.map((a) => Date.parse(a.at));
  t.ok(at[1]! - at[0]! >= 1000 && at[2]! - at[1]! >= 1000, 'each retry was scheduled after Retry-After (1 s), not the 50 ms tier');
  await as(ada.key, 'DELETE', `/v1/webhooks/${ep.id}`);
});

t.test('410 Gone disables the endpoint: nothing more is sent to it', async (t) => {
  const ep = await register(ada.key, '/gone');
  receiver.answer('/gone', () => ({ status: 410 }));
  await publishEvents(sys.cfg, [confirmed()]);
  await waitFor('the endpoint disabled', async () => (await as(ada.key, 'GET', `/v1/webhooks/${ep.id}`)).body.enabled === false);
  const view = (await as(ada.key, 'GET', `/v1/webhooks/${ep.id}`)).body;
  t.equal(view.disabledReason, 'gone');
  const [d] = await deliveriesOf(ada.key, ep.id);
  t.equal(d!.status, 'failed', 'the message failed for good, with no retry');
  t.equal(d!.attempts.length, 1);
  const before = fanOut.settled;
  await publishEvents(sys.cfg, [confirmed()]);
  await settled(before, 1);
  const later = (await deliveriesOf(ada.key, ep.id)).filter((x) => x.id !== d!.id);
  t.same(later.map((x) => [x.status, x.attempts.length]), [['failed', 0]], 'a later event\'s message is made failed, with no attempt (for recover)');
  t.equal(receiver.of('/gone').length, 1, 'and nothing more is sent');
  await as(ada.key, 'DELETE', `/v1/webhooks/${ep.id}`);
});

t.test('a timeout is a failed attempt; after the schedule\'s last the message fails; recover and replay send it again, same id', async (t) => {
  const ep = await register(ada.key, '/slow-then-fixed');
  let fixed = false;
  receiver.answer('/slow-then-fixed', () => (fixed ? { status: 200 } : 'hang'));
  await publishEvents(sys.cfg, [confirmed()]);
  await waitFor('the message to fail', async () => (await deliveriesOf(ada.key, ep.id))[0]?.status === 'failed', 30_000);
  let [d] = await deliveriesOf(ada.key, ep.id, '?status=failed');
  t.equal(d!.attempts.length, sys.cfg.webhookScheduleMs.length, 'one attempt per step of the schedule');
  t.ok(d!.attempts.every((a) => a.statusCode === null && /timed out/.test(a.error ?? '')), 'each timed out');
  receiver.release('/slow-then-fixed', 500);
  fixed = true;
  const recovered = await as(ada.key, 'POST', `/v1/webhooks/${ep.id}/recover`, { since: new Date(Date.now() - 60_000).toISOString() });
  t.equal(recovered.status, 202);
  t.same(recovered.body, { recovered: 1 });
  await waitFor('the recovered message', async () => (await deliveriesOf(ada.key, ep.id))[0]?.status === 'succeeded');
  const sent = receiver.of('/slow-then-fixed');
  t.equal(new Set(sent.map((r) => r.headers['webhook-id'])).size, 1, 'every attempt under one webhook-id');
  t.same(await as(ada.key, 'POST', `/v1/webhooks/${ep.id}/recover`, { since: new Date(Date.now() - 60_000).toISOString() }).then((r) => r.body), { recovered: 0 },
    'nothing failed is left to recover');
  [d] = await deliveriesOf(ada.key, ep.id);
  const replayed = await as(ada.key, 'POST', `/v1/webhooks/${ep.id}/deliveries/${d!.id}/replay`);
  t.equal(replayed.status, 202);
  t.equal(replayed.body.status, 'pending');
  await waitFor('the replay', async () => receiver.of('/slow-then-fixed').length === sent.length + 1);
  t.equal(receiver.of('/slow-then-fixed').at(-1)!.headers['webhook-id'], d!.id, 'a replay is the same message');
  await as(ada.key, 'DELETE', `/v1/webhooks/${ep.id}`);
});

t.test('after a rotation each delivery carries both signatures, each verifying', async (t) => {
  const ep = await register(ada.key, '/rotated');
  const rotated = (await as(ada.key, 'POST', `/v1/webhooks/${ep.id}/rotate-secret`, {})).body as { secret: string };
  await publishEvents(sys.cfg, [confirmed()]);
  await waitFor('the delivery', async () => receiver.of('/rotated').length === 1);
  const got = receiver.of('/rotated')[0]!;
  t.equal(got.headers['webhook-signature']!.split(' ').length, 2, 'two signatures');
  verify(t, rotated.secret, got);
  verify(t, ep.secret, got);
  t.throws(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(got.body, got.headers), 'and not with another secret');
  await as(ada.key, 'DELETE', `/v1/webhooks/${ep.id}`);
});

t.test('a slow endpoint holds only its own slots: another endpoint gets every delivery meanwhile', async (t) => {
  const slow = await register(bob.key, '/stuck');
  const fast = await register(ada.key, '/fast');
  receiver.answer('/stuck', () => 'hang');
  const n = 10;
  await publishEvents(sys.cfg, Array.from({ length: n }, () => confirmed(bobSale)));
  await waitFor('the slow endpoint to hold its slots', async () => receiver.open('/stuck') === PER_ENDPOINT);
  await publishEvents(sys.cfg, Array.from({ length: n }, () => confirmed(adaSale)));
  await waitFor('the fast endpoint\'s deliveries', async () => receiver.of('/fast').length === n);
  t.equal(receiver.of('/fast').length, n, 'every delivery of the fast endpoint arrived');
  t.ok(receiver.of('/stuck').length >= PER_ENDPOINT, 'while the slow one was being sent to');
  t.equal(receiver.maxOpen('/stuck'), PER_ENDPOINT, 'never with more than its own slots in flight');
  receiver.answer('/stuck', () => ({ status: 200 }));
  receiver.release('/stuck');
  await as(OPERATOR_KEY, 'DELETE', `/v1/webhooks/${slow.id}`);
  await as(ada.key, 'DELETE', `/v1/webhooks/${fast.id}`);
});

t.test('the retention sweep deletes done messages past the retention with their attempts, never a pending one, nothing recent', async (t) => {
  const ep = await register(ada.key, '/kept');
  receiver.answer('/kept', () => ({ status: 200 }));
  await publishEvents(sys.cfg, [confirmed(), confirmed(), confirmed(), confirmed()]);
  await waitFor('four delivered', async () => (await deliveriesOf(ada.key, ep.id)).filter((d) => d.status === 'succeeded').length === 4);
  const ids = (await sys.pool.query<{ id: string }>('SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id', [ep.id])).rows.map((r) => r.id);
  const [oldDelivered, oldFailed, oldPending, recent] = ids as [string, string, string, string];
  // 40 days old: one delivered, one failed for good (as a disabled endpoint's are made), one still owed an attempt (not due yet).
  await sys.pool.query("UPDATE webhook_deliveries SET created_at = now() - interval '40 days' WHERE id = ANY($1)", [[oldDelivered, oldFailed, oldPending]]);
  await sys.pool.query("UPDATE webhook_deliveries SET status = 'failed' WHERE id = $1", [oldFailed]);
  await sys.pool.query("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now() + interval '1 day' WHERE id = $1", [oldPending]);
  const sweep = webhookRetentionSweep(sys.pool, 30, 60_000, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'test'));
  t.equal(await sweep.sweep(), 2, 'the old delivered and the old failed message');
  const left = (await sys.pool.query<{ id: string }>('SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id', [ep.id])).rows.map((r) => r.id);
  t.same(left, [oldPending, recent], 'the pending one and the recent one are kept');
  t.equal((await sys.pool.query('SELECT 1 FROM webhook_attempts WHERE delivery_id = ANY($1)', [[oldDelivered, oldFailed]])).rowCount, 0, 'their attempts went with them');
  t.equal((await sys.pool.query('SELECT 1 FROM webhook_attempts WHERE delivery_id = $1', [recent])).rowCount, 1, 'the recent one keeps its attempt');
  t.equal(await sweep.sweep(), 0, 'a second sweep finds nothing');
  await as(ada.key, 'DELETE', `/v1/webhooks/${ep.id}`);
});
