/**
 * Prometheus metrics on the real services: the api's GET /metrics counts its
 * decisions by script and outcome with their latency and its requests by
 * route and status, and reads queues, dead letters and outbox lag when
 * scraped; the relay, worker and scheduler each serve their own, labelled
 * with their role (events relayed, purchases settled and how long after
 * acceptance, what the consumers did, what was told and delivered);
 * STAMPEDE_METRICS=false serves and counts nothing.
 */
import t from 'tap';
import { boot, call, sleep, waitFor } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { scrape } from '../helpers/metrics.js';
import { smtpCatcher } from '../helpers/smtp.js';
import { announcement, publishAnnouncements } from '../helpers/notifications.js';
import { createLogger } from '../../src/platform/log.js';
import { startRelay, startScheduler, startWorker } from '../../src/roles/index.js';
import { deadLetterQueue } from '../../src/platform/messaging/topology.js';
import { saleKeys } from '../../src/sales/keys.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { newBidId, randomId } from '../../src/platform/ids.js';
import { createAuction } from '../helpers/auctions.js';

const PURCHASES = '/v1/sales/:id/purchases';

t.test('the api: decisions by script and outcome and their latency, requests by route and status, queues and outbox lag read at scrape time', async (t) => {
  const sys = await boot(t);
  const amqp = await openAmqp(t, sys.cfg);
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 2 });
  const [a, b] = await sys.createBuyers(2);
  const url = `${sys.url}/metrics`;
  const before = await scrape(url);
  t.equal(before.status, 200);
  t.match(before.contentType, /^text\/plain; version=0\.0\.4/, 'the Prometheus text format');
  t.ok(before.has('nodejs_eventloop_lag_seconds', { role: 'api' }), 'event-loop lag, labelled with the role');
  t.ok(before.has('nodejs_gc_duration_seconds_count', { role: 'api' }) || before.has('nodejs_gc_duration_seconds_bucket'), 'GC durations');

  t.equal((await sys.purchase(a!, sale.id)).status, 202);
  t.equal((await sys.purchase(b!, sale.id)).status, 202);
  // No worker runs: a's purchase is still in flight, so a second is refused by the script.
  const again = await sys.purchase(a!, sale.id);
  t.equal(again.status, 409);
  t.equal(again.body.code, 'PURCHASE_IN_PROGRESS');
  t.equal((await call(`${sys.url}/v1/no-such-route`)).status, 404);
  const after = await scrape(url);
  const delta = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
  t.equal(delta('stampede_script_decisions_total', { script: 'reservePurchases', outcome: 'applied' }), 2, 'two purchases applied');
  t.equal(delta('stampede_script_decisions_total', { script: 'reservePurchases', outcome: 'in_progress' }), 1, 'one refused: in progress');
  t.equal(delta('stampede_script_duration_seconds_count', { script: 'reservePurchases' }), 3, 'each call timed');
  t.ok(after.value('stampede_script_duration_seconds_sum', { script: 'reservePurchases' }) > 0);
  t.equal(delta('stampede_http_requests_total', { method: 'POST', route: PURCHASES, status: '202' }), 2, 'requests by route and status');
  t.equal(delta('stampede_http_requests_total', { method: 'POST', route: PURCHASES, status: '409' }), 1);
  t.equal(delta('stampede_http_requests_total', { route: 'unmatched', status: '404' }), 1, 'an unmatched request');

  // The relay is not running: the sale's outbox holds both purchases, unread, and their age grows.
  const stream = saleKeys.outbox(sale.id);
  t.equal(after.value('stampede_outbox_unread', { stream }), 2, 'two outbox entries unread');
  t.equal(after.value('stampede_outbox_length', { stream }), 2);
  await sleep(300);
  const later = await scrape(url);
  t.ok(later.value('stampede_outbox_oldest_age_seconds', { stream }) >= 0.3, 'the oldest unrelayed entry is at least 300 ms old');
  const ops = (await sys.operator('/v1/ops/queues')).body as { outboxes: { stream: string; oldestAgeMs: number }[] };
  t.ok(ops.outboxes.find((o) => o.stream === stream)!.oldestAgeMs >= 300, 'GET /v1/ops/queues says so too');

  // Queues as the broker has them, at scrape time.
  const dlq = deadLetterQueue(sys.cfg.topology.orders);
  await amqp.sendToQueue(dlq, JSON.stringify({ a: 'dead letter' }));
  await waitFor('the dead letter counted', async () => (await amqp.depth(dlq)) === 1);
  const queues = await scrape(url);
  t.equal(queues.value('stampede_dead_letters', { concern: sys.cfg.topology.orders.queue }), 1, 'the dead letter, at scrape time');
  t.equal(queues.value('stampede_queue_messages', { queue: dlq, kind: 'dead-letter' }), 1);
  t.equal(queues.value('stampede_queue_consumers', { queue: sys.cfg.topology.orders.queue }), 0, 'no worker consumes the orders');
  t.ok(queues.has('stampede_live_connections', { transport: 'ws' }), 'live connections');
  t.ok(queues.has('stampede_live_slow_readers_total', { transport: 'sse' }), 'slow readers dropped');
});

t.test('relay, worker and scheduler: each its own endpoint and role; relayed, settled and how long after acceptance, told and delivered', async (t) => {
  const smtp = await smtpCatcher(t);
  const sys = await boot(t, { env: { STAMPEDE_SMTP_URL: smtp.url } });
  const log = createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'test');
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const buyers = await sys.createBuyers(3);
  for (const buyer of buyers) t.equal((await sys.purchase(buyer, sale.id)).status, 202);

  const relay = await startRelay(sys.cfg, log);
  const worker = await startWorker(sys.cfg, log);
  const scheduler = await startScheduler(sys.cfg, log);
  t.teardown(async () => void await Promise.all([relay.stop(), worker.stop(), scheduler.stop()]));
  const urls = [relay.metricsUrl, worker.metricsUrl, scheduler.metricsUrl];
  t.ok(urls.every((u) => u !== undefined), 'each role serves its metrics');
  t.equal(new Set(urls).size, 3, 'each on a port of its own');

  await sys.drained(sale.id);
  const w = await waitFor('the purchases told', async () => {
    const s = await scrape(worker.metricsUrl!);
    return s.value('stampede_notifications_recorded_total', { channel: 'in_app' }) >= 3 ? s : undefined;
  });
  t.equal(w.value('stampede_orders_settled_total', { role: 'worker', status: 'confirmed' }), 3, 'three purchases settled, confirmed');
  t.equal(w.value('stampede_settlement_seconds_count'), 3, 'each timed from its acceptance');
  t.ok(w.value('stampede_settlement_seconds_sum') > 0);
  t.ok(w.value('stampede_consumer_messages_total', { queue: sys.cfg.topology.orders.queue, outcome: 'settled' }) >= 3, 'the orders consumer settled them');
  t.equal(w.value('stampede_consumer_messages_total', { queue: sys.cfg.topology.orders.queue, outcome: 'dead_lettered' }), 0);
  const r = await scrape(relay.metricsUrl!);
  t.ok(r.value('stampede_relay_events_total', { role: 'relay' }) >= 3, 'the relay relayed them');
  t.notOk(r.has('stampede_orders_settled_total'), 'the relay shows only its own');
  const s = await scrape(scheduler.metricsUrl!);
  t.ok(s.has('stampede_scheduler_actions_total', { role: 'scheduler', action: 'auction_closed' }), 'the scheduler\'s own, labelled');
  t.equal((await fetch(relay.metricsUrl!.replace('/metrics', '/other'))).status, 404, 'only /metrics is served');

  // An e-mail asked for and sent, counted by channel and outcome.
  const email = `metrics-${randomId(8)}@example.test`;
  const [buyer] = await createBuyers(sys.pool, [{ name: 'metrics buyer', email }]);
  const amqp = await openAmqp(t, sys.cfg);
  // The three purchases' own e-mails are sent first, so that only this one is counted below.
  const before = await waitFor('every e-mail recorded so far sent', async () => {
    const m = await scrape(worker.metricsUrl!);
    return m.value('stampede_notification_deliveries_total', { channel: 'email', outcome: 'sent' }) === m.value('stampede_notifications_recorded_total', { channel: 'email' }) ? m : undefined;
  });
  const lot = await createAuction(sys.pool, sys.redis);
  const won = announcement('won', `${lot.id}:won`, { auctionId: lot.id, buyerId: buyer!.id, bidId: newBidId(lot.id), currency: 'EUR', price: 1200, paid: 1200, bonus: 0 });
  await publishAnnouncements(amqp, sys.cfg.topology.exchange, [won]);
  await waitFor('the e-mail', async () => smtp.mailsTo(email).length === 1);
  const sent = await waitFor('the e-mail counted', async () => {
    const m = await scrape(worker.metricsUrl!);
    return m.value('stampede_notification_deliveries_total', { channel: 'email', outcome: 'sent' }) > before.value('stampede_notification_deliveries_total', { channel: 'email', outcome: 'sent' }) ? m : undefined;
  });
  t.equal(sent.value('stampede_notifications_recorded_total', { channel: 'email' }) - before.value('stampede_notifications_recorded_total', { channel: 'email' }), 1, 'one e-mail recorded');
  t.equal(sent.value('stampede_notification_deliveries_total', { channel: 'email', outcome: 'sent' }) - before.value('stampede_notification_deliveries_total', { channel: 'email', outcome: 'sent' }), 1, 'one sent');
});

t.test('STAMPEDE_METRICS=false: no endpoint, nothing counted', async (t) => {
  const sys = await boot(t, { env: { STAMPEDE_METRICS: 'false' } });
  const res = await call(`${sys.url}/metrics`);
  t.equal(res.status, 404, 'the api has no /metrics');
  const relay = await startRelay(sys.cfg, createLogger(sys.cfg.STAMPEDE_LOG_LEVEL, 'test'));
  t.teardown(() => relay.stop());
  t.equal(relay.metricsUrl, undefined, 'the relay serves none');
});
