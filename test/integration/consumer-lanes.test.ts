/**
 * The batch consumer settles up to `concurrency` batches side by side. A lane
 * that finds the buffer empty ends; a message arriving while another lane is
 * still busy must start a lane again, not wait for the busy one. (It used to
 * wait: after a short gap in deliveries the worker settled on one lane, and
 * the drain ran at half speed.) Real RabbitMQ; the settle step is held open
 * by the test so the overlap is observed, not timed.
 */
import t, { type Test } from 'tap';
import { BatchConsumer, type JsonObject } from '../../src/platform/messaging/consumer.js';
import { createLogger } from '../../src/platform/log.js';
import { connectAmqp } from '../../src/platform/messaging/amqp.js';
import { allQueues, assertTopology } from '../../src/platform/messaging/topology.js';
import { testConfig, waitFor } from '../helpers/system.js';

const cfg = testConfig({ STAMPEDE_AMQP_PREFIX: `${process.env.STAMPEDE_TEST_AMQP_PREFIX ?? 'stampede-test'}-lanes` });

class HeldConsumer extends BatchConsumer<string> {
  busy = 0;
  mostAtOnce = 0;
  readonly seen: string[][] = [];
  private readonly releases: (() => void)[] = [];
  /** Set when the test is over: nothing is held any more. */
  open = false;

  protected parse(envelope: JsonObject): string {
    return String(envelope.id);
  }

  protected async settle(events: string[]): Promise<void> {
    this.seen.push(events);
    this.busy++;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.busy);
    if (!this.open) await new Promise<void>((r) => this.releases.push(r));
    this.busy--;
  }

  releaseAll(): void {
    this.open = true;
    for (const r of this.releases.splice(0)) r();
  }
}

/** An empty test queue, a way to send to it, and a HeldConsumer of it with `concurrency` lanes; all closed at the end. */
async function setUp(t: Test, name: string, concurrency: number) {
  const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, name);
  t.teardown(() => conn.close().catch(() => {}));
  const ch = await conn.createConfirmChannel();
  await assertTopology(ch, cfg.topology);
  for (const q of allQueues(cfg.topology)) await ch.purgeQueue(q.queue);
  const queue = cfg.topology.orders.queue;
  const send = (id: string) =>
    new Promise<void>((resolve, reject) =>
      ch.sendToQueue(queue, Buffer.from(JSON.stringify({ id })), { persistent: true }, (err: unknown) => (err ? reject(err) : resolve())),
    );
  const consumer = new HeldConsumer({
    amqpUrl: cfg.STAMPEDE_AMQP_URL, log: createLogger(process.env.LANES_LOG ?? 'silent', 'test'), prefetch: 10, batch: 10, concurrency,
    topology: cfg.topology, name, what: 'a test event', concern: cfg.topology.orders,
  });
  consumer.start();
  t.teardown(async () => {
    consumer.releaseAll();
    await consumer.stop();
  });
  return { consumer, send, queueState: () => ch.checkQueue(queue) };
}

t.test('a message arriving while one lane is busy is settled on another lane at once', async (t) => {
  const { consumer, send, queueState } = await setUp(t, 'lanes test', 2);

  await send('first');
  await waitFor('the first batch to be settling', async () => consumer.busy === 1);
  // The other lane found nothing to do and ended. Now a second message comes.
  await send('second');
  await waitFor('the second message settling beside the first', async () => consumer.busy === 2, 10_000);
  t.same(consumer.seen, [['first'], ['second']], 'each on its own lane');

  await send('third');
  await send('fourth');
  consumer.releaseAll();
  await waitFor('every message settled', async () => consumer.seen.flat().length === 4 && consumer.busy === 0);
  t.equal(consumer.mostAtOnce, 2, 'never more lanes than the concurrency');
  t.equal(consumer.settled, 4);
  // Closing the consumer's connection puts anything it did not ack back in the queue.
  await consumer.stop();
  t.equal((await queueState()).messageCount, 0, 'every message was acked');
});

t.test('a connection lost mid-batch: the old lane neither takes nor drops what the new connection delivers', async (t) => {
  const { consumer, send, queueState } = await setUp(t, 'lanes test 2', 1);
  const consumers = async () => (await queueState()).consumerCount;

  await send('first');
  await waitFor('the first batch to be settling', async () => consumer.busy === 1);
  // The network drops under the busy lane; the consumer reconnects and the
  // broker redelivers `first` to the new channel, where it waits: the one
  // lane allowed is still the old one.
  const inside = consumer as unknown as { ch?: unknown; conn: { connection: { stream: { destroy(err: Error): void } } } };
  const lostChannel = inside.ch;
  inside.conn.connection.stream.destroy(new Error('network down (test)'));
  await waitFor('the consumer back on a new channel', async () => inside.ch !== undefined && inside.ch !== lostChannel && (await consumers()) === 1, 20_000);
  await send('second');
  // The old lane's settle ends; its ack fails on the dead channel.
  consumer.releaseAll();
  await waitFor('first (again) and second settled on the new connection', async () => consumer.seen.flat().length === 3 && consumer.busy === 0, 20_000);
  t.same(consumer.seen.flat().sort(), ['first', 'first', 'second'], 'first settled twice (redelivered: settling must be idempotent), second once');
  await consumer.stop();
  t.equal((await queueState()).messageCount, 0, 'nothing left unacked');
});
