/**
 * The RabbitMQ topology, declared in one place and re-asserted on every
 * (re)connect: one durable topic exchange; per concern a quorum queue, one
 * delay queue per retry tier (dead-lettering back into the queue when its
 * TTL passes) and a `.dlq` an operator can inspect and replay. Every name
 * carries a prefix, so two deployments (or a test run) can share a broker.
 */
import type { Channel } from 'amqplib';
import { bindingsOf } from '../../events/catalogue.js';

export interface Concern {
  queue: string;
  bindings: string[];
}

export interface Topology {
  exchange: string;
  orders: Concern;
  /** The auction log and settlement: every logged auction event. */
  auctions: Concern;
  /**
   * What buyers are to be told (outbid, won, lost, offer_failed, released),
   * consumed by the notifications worker.
   */
  notifications: Concern;
  /** E-mails to send (the notifications' e-mail channel), with retry tiers of their own. */
  email: Concern;
  /** Text messages to send (the notifications' SMS channel), with retry tiers of their own. */
  sms: Concern;
  /** The public events sellers' webhooks carry, fanned out to their endpoints by the webhooks worker (src/webhooks). */
  webhooks: Concern;
  concerns: Concern[];
  retryDelaysMs: number[];
}

export function topologyFor(prefix: string, retryDelaysMs: number[]): Topology {
  // Each queue is bound to the event types the catalogue routes to it.
  const orders: Concern = { queue: `${prefix}.orders`, bindings: bindingsOf('orders') };
  const auctions: Concern = { queue: `${prefix}.auctions`, bindings: bindingsOf('auctions') };
  const notifications: Concern = { queue: `${prefix}.notifications`, bindings: bindingsOf('notifications') };
  const email: Concern = { queue: `${prefix}.notifications.email`, bindings: bindingsOf('email') };
  const sms: Concern = { queue: `${prefix}.notifications.sms`, bindings: bindingsOf('sms') };
  const webhooks: Concern = { queue: `${prefix}.webhooks`, bindings: bindingsOf('webhooks') };
  return { exchange: `${prefix}.events`, orders, auctions, notifications, email, sms, webhooks, concerns: [orders, auctions, notifications, email, sms, webhooks], retryDelaysMs };
}

export const retryQueue = (c: Concern, delayMs: number) => `${c.queue}.retry.${delayMs}ms`;
export const deadLetterQueue = (c: Concern) => `${c.queue}.dlq`;

/** `stampede.purchase.accepted.v1` is routed as `purchase.accepted.v1`. */
export const routingKeyOf = (type: string) => (type.startsWith('stampede.') ? type.slice('stampede.'.length) : type);

const QUORUM = { 'x-queue-type': 'quorum' };

export async function assertTopology(ch: Channel, t: Topology): Promise<void> {
  await ch.assertExchange(t.exchange, 'topic', { durable: true });
  for (const c of t.concerns) {
    await ch.assertQueue(c.queue, { durable: true, arguments: QUORUM });
    for (const key of c.bindings) await ch.bindQueue(c.queue, t.exchange, key);
    for (const delay of t.retryDelaysMs) {
      await ch.assertQueue(retryQueue(c, delay), {
        durable: true,
        arguments: {
          ...QUORUM,
          'x-message-ttl': delay,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': c.queue,
          // Quorum queues dead-letter at-least-once only with reject-publish overflow.
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      });
    }
    await ch.assertQueue(deadLetterQueue(c), { durable: true, arguments: QUORUM });
  }
}

/** Every queue of the topology, for the operators' view. */
export function allQueues(t: Topology): { concern: string; queue: string; kind: 'main' | 'retry' | 'dead-letter' }[] {
  return t.concerns.flatMap((c) => [
    { concern: c.queue, queue: c.queue, kind: 'main' as const },
    ...t.retryDelaysMs.map((d) => ({ concern: c.queue, queue: retryQueue(c, d), kind: 'retry' as const })),
    { concern: c.queue, queue: deadLetterQueue(c), kind: 'dead-letter' as const },
  ]);
}
