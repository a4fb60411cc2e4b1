/**
 * The RabbitMQ topology, declared in one place and re-asserted on every
 * (re)connect: one durable topic exchange; per concern a quorum queue, one
 * delay queue per retry tier (dead-lettering back into the queue when its
 * TTL passes) and a `.dlq` an operator can inspect and replay.
 */
import type { Channel } from 'amqplib';

export const EXCHANGE = 'stampede.events';

export interface Concern {
  queue: string;
  bindings: string[];
}

export const ORDERS: Concern = {
  queue: 'stampede.orders',
  bindings: ['purchase.accepted.v1', 'purchase.cancel_requested.v1'],
};

export const CONCERNS: Concern[] = [ORDERS];

export const retryQueue = (c: Concern, delayMs: number) => `${c.queue}.retry.${delayMs}ms`;
export const deadLetterQueue = (c: Concern) => `${c.queue}.dlq`;

/** `stampede.purchase.accepted.v1` is routed as `purchase.accepted.v1`. */
export const routingKeyOf = (type: string) => (type.startsWith('stampede.') ? type.slice('stampede.'.length) : type);

const QUORUM = { 'x-queue-type': 'quorum' };

export async function assertTopology(ch: Channel, retryDelaysMs: number[]): Promise<void> {
  await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
  for (const c of CONCERNS) {
    await ch.assertQueue(c.queue, { durable: true, arguments: QUORUM });
    for (const key of c.bindings) await ch.bindQueue(c.queue, EXCHANGE, key);
    for (const delay of retryDelaysMs) {
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
export function allQueues(retryDelaysMs: number[]): { concern: string; queue: string; kind: 'main' | 'retry' | 'dead-letter' }[] {
  return CONCERNS.flatMap((c) => [
    { concern: c.queue, queue: c.queue, kind: 'main' as const },
    ...retryDelaysMs.map((d) => ({ concern: c.queue, queue: retryQueue(c, d), kind: 'retry' as const })),
    { concern: c.queue, queue: deadLetterQueue(c), kind: 'dead-letter' as const },
  ]);
}
