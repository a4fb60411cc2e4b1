/**
 * The relay publishes each outbox entry once when nothing fails, even when
 * its claim period is shorter than one round (a busy process): entries it
 * reads in a round are not also reclaimed from itself in that round.
 */
import t from 'tap';
import { Relay } from '../../src/platform/messaging/relay.js';
import { OUTBOX_REGISTRY, RELAY_GROUP } from '../../src/platform/messaging/outbox.js';
import { EVENTS } from '../../src/events/catalogue.js';
import { createLogger } from '../../src/platform/log.js';
import { newPurchaseId, newSaleId } from '../../src/platform/ids.js';
import { saleKeys } from '../../src/sales/keys.js';
import { TEST_ENV, testConfig, testRedis, waitFor } from '../helpers/system.js';
import { openAmqp } from '../helpers/fault-kit.js';
import { assertTopology } from '../../src/platform/messaging/topology.js';

const N = 300;

t.test('a claim period shorter than a round publishes no entry twice', async (t) => {
  // A Redis database and a topology of its own: the relay drains every registered outbox.
  const url = new URL(TEST_ENV.STAMPEDE_REDIS_URL!);
  url.pathname = '/13';
  const cfg = testConfig({ STAMPEDE_REDIS_URL: url.toString(), STAMPEDE_AMQP_PREFIX: `${TEST_ENV.STAMPEDE_AMQP_PREFIX}-relay-once` });
  const redis = testRedis(t, 'relay-once-test');
  await redis.select(13);
  await redis.flushdb();
  const amqp = await openAmqp(t, cfg);
  const queue = cfg.topology.orders.queue;
  await assertTopology(amqp.ch, cfg.topology);
  await amqp.ch.purgeQueue(queue);

  const saleId = newSaleId();
  const outbox = saleKeys.outbox(saleId);
  await redis.xgroup('CREATE', outbox, RELAY_GROUP, '0', 'MKSTREAM');
  await redis.sadd(OUTBOX_REGISTRY, outbox);
  for (let i = 0; i < N; i++) {
    const purchaseId = newPurchaseId(saleId);
    await redis.xadd(outbox, '*', 'type', EVENTS.purchaseAccepted.type, 'id', purchaseId, 'time', Date.now(), 'subject', purchaseId, 'data', JSON.stringify({ purchaseId, saleId }));
  }

  const relay = new Relay({
    redis, amqpUrl: cfg.STAMPEDE_AMQP_URL, log: createLogger('silent', 'test'), batch: 50, claimIdleMs: 1, eventsPerMessage: 1, topology: cfg.topology,
  });
  relay.start();
  t.teardown(() => relay.stop());
  await waitFor('every entry relayed and trimmed', async () => relay.relayed >= N && (await redis.xlen(outbox)) === 0, 30_000);
  t.equal(relay.relayed, N, 'each entry acknowledged once');
  t.equal(await amqp.depth(queue), N, 'one message per entry in the queue');
});
