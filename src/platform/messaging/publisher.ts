/**
 * Publishing events that a worker derives (announcements): CloudEvents on
 * the topic exchange, on a confirm channel with `mandatory`, resolved only
 * when the broker confirmed and routed every one. Each carries a stable
 * message id, so a republished copy is recognisably the same event.
 */
import type { ConfirmChannel } from './amqp.js';
import { routingKeyOf } from './topology.js';
import type { CloudEvent } from './events.js';

export class UnroutedMessageError extends Error {}

const returnedIds = new WeakMap<ConfirmChannel, Set<string>>();

/** The ids the broker returned as unroutable on this channel (one listener per channel). */
function returnsOf(ch: ConfirmChannel): Set<string> {
  let ids = returnedIds.get(ch);
  if (!ids) {
    const set = new Set<string>();
    ch.on('return', (msg: { properties: { messageId?: string } }) => {
      if (msg.properties.messageId) set.add(msg.properties.messageId);
    });
    returnedIds.set(ch, set);
    ids = set;
  }
  return ids;
}

/** Publishes each event (routing key = its type without `stampede.`) and waits for every confirm. */
export async function publishConfirmed(ch: ConfirmChannel, exchange: string, events: CloudEvent[]): Promise<void> {
  if (events.length === 0) return;
  const returned = returnsOf(ch);
  await Promise.all(
    events.map(
      (e) =>
        new Promise<void>((resolve, reject) => {
          ch.publish(
            exchange,
            routingKeyOf(e.type),
            Buffer.from(JSON.stringify(e)),
            {
              persistent: true, mandatory: true, messageId: e.id, type: e.type, contentType: 'application/cloudevents+json',
              timestamp: Math.floor(Date.parse(e.time) / 1000),
            },
            (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
          );
        }),
    ),
  );
  // The broker sends basic.return before the confirm of the same message.
  const unrouted = events.filter((e) => returned.delete(e.id));
  if (unrouted.length > 0) throw new UnroutedMessageError(`the broker routed no queue for ${unrouted.map((e) => e.id).join(', ')}`);
}
