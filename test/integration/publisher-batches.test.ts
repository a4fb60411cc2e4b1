/**
 * Announcements go to the broker as CloudEvents batches: the events of one
 * type together, at most N to a message, each event once, named as the
 * relay names its batches; a lone event is a plain CloudEvent.
 */
import t from 'tap';
import { boot } from '../helpers/system.js';
import { eventsIn, openAmqp } from '../helpers/fault-kit.js';
import { publisherOf } from '../../src/platform/messaging/publisher.js';
import type { CloudEvent } from '../../src/platform/messaging/events.js';

const event = (type: string, id: string): CloudEvent => ({
  specversion: '1.0', id, source: 'test', type, time: new Date().toISOString(), datacontenttype: 'application/json', data: { n: id },
});

t.test('250 confirmed and 1 failed purchase result: three batches of at most 100 and one lone event, every event once', async (t) => {
  const sys = await boot(t, { api: false });
  const amqp = await openAmqp(t, sys.cfg);
  const queue = sys.cfg.topology.notifications.queue;
  await amqp.ch.purgeQueue(queue);
  const confirmed = Array.from({ length: 250 }, (_, i) => event('stampede.purchase.confirmed.v1', `pur-${i}:confirmed`));
  const failed = [event('stampede.purchase.failed.v1', 'pur-x:failed')];
  await publisherOf(amqp.ch).publishEventBatches(sys.cfg.topology.exchange, [...confirmed.slice(0, 120), ...failed, ...confirmed.slice(120)], 100);
  const messages = await amqp.take(queue, 4);
  t.equal(await amqp.depth(queue), 0, 'four messages, no more');
  const sizes = messages.map((m) => eventsIn(m).length).sort((a, b) => a - b);
  t.same(sizes, [1, 50, 100, 100]);
  const ids = messages.flatMap((m) => eventsIn(m).map((e: CloudEvent) => e.id));
  t.same(ids.sort(), [...confirmed, ...failed].map((e) => e.id).sort(), 'every event once');
  for (const m of messages) {
    const events = eventsIn(m);
    t.ok(events.every((e: CloudEvent) => e.type === events[0].type), 'one type to a message');
    t.equal(m.properties.contentType, events.length > 1 ? 'application/cloudevents-batch+json' : 'application/cloudevents+json');
    t.equal(m.properties.messageId, events.length > 1 ? `${events[0].id}+${events.length - 1}` : events[0].id);
  }
  for (const m of messages) amqp.ch.ack(m);
});
