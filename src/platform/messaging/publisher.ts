/**
 * The one way anything is published: on a confirm channel, with `mandatory`,
 * and resolved only when the broker confirmed the message AND routed it to a
 * queue. The relay (outbox entries), the workers (announcements) and the
 * consumer (retry tiers, dead letters) all publish through it.
 *
 * The broker answers an unroutable mandatory message with basic.return before
 * its confirm, so a confirm whose message id was returned is a failure.
 */
import type { Options } from 'amqplib';
import type { ConfirmChannel } from './amqp.js';
import { routingKeyOf } from './topology.js';
import type { CloudEvent } from './events.js';

export class UnroutedMessageError extends Error {}

/** Most announcements a worker sends in one message (as the relay's default batch): the notifications worker settles them together. */
export const ANNOUNCEMENTS_PER_MESSAGE = 100;

export type PublishOptions = Options.Publish & { messageId: string };

export class ConfirmingPublisher {
  private readonly returned = new Set<string>();

  constructor(readonly channel: ConfirmChannel) {
    channel.on('return', (msg: { properties: { messageId?: string } }) => {
      if (msg.properties.messageId) this.returned.add(msg.properties.messageId);
    });
  }

  /** Publishes one persistent message; resolves once the broker confirmed and routed it. */
  publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.channel.publish(exchange, routingKey, body, { persistent: true, ...options, mandatory: true }, (err: unknown) => {
        if (this.returned.delete(options.messageId)) reject(new UnroutedMessageError(`the broker routed no queue for ${options.messageId}`));
        else if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve();
      });
    });
  }

  /** Publishes straight to a queue (the default exchange). */
  sendToQueue(queue: string, body: Buffer, options: PublishOptions): Promise<void> {
    return this.publish('', queue, body, options);
  }

  /**
   * Publishes CloudEvents on the topic exchange as CloudEvents batches: the
   * events of one type together, at most `perMessage` to a message, named as
   * the relay names its batches (the first event's id and how many follow).
   * For events a consumer settles together (announcements): one message,
   * one confirm and one delivery for many events, instead of one each.
   */
  async publishEventBatches(exchange: string, events: CloudEvent[], perMessage: number): Promise<void> {
    const byType = new Map<string, CloudEvent[]>();
    for (const e of events) {
      const ofType = byType.get(e.type);
      if (ofType) ofType.push(e);
      else byType.set(e.type, [e]);
    }
    const messages: CloudEvent[][] = [];
    for (const ofType of byType.values()) {
      for (let i = 0; i < ofType.length; i += perMessage) messages.push(ofType.slice(i, i + perMessage));
    }
    await Promise.all(messages.map((run) => {
      const [first] = run as [CloudEvent];
      if (run.length === 1) return this.publishEvents(exchange, run);
      return this.publish(exchange, routingKeyOf(first.type), Buffer.from(JSON.stringify(run)), {
        messageId: `${first.id}+${run.length - 1}`, type: first.type, contentType: 'application/cloudevents-batch+json',
        timestamp: Math.floor(Date.parse(first.time) / 1000),
      });
    }));
  }

  /** Publishes CloudEvents on the topic exchange (routing key: the type without `stampede.`), each under its own id. */
  async publishEvents(exchange: string, events: CloudEvent[]): Promise<void> {
    await Promise.all(
      events.map((e) =>
        this.publish(exchange, routingKeyOf(e.type), Buffer.from(JSON.stringify(e)), {
          messageId: e.id, type: e.type, contentType: 'application/cloudevents+json', timestamp: Math.floor(Date.parse(e.time) / 1000),
        }),
      ),
    );
  }
}

const publishers = new WeakMap<ConfirmChannel, ConfirmingPublisher>();

/** The channel's publisher (one per channel, so one `return` listener). */
export function publisherOf(channel: ConfirmChannel): ConfirmingPublisher {
  let p = publishers.get(channel);
  if (!p) publishers.set(channel, (p = new ConfirmingPublisher(channel)));
  return p;
}
