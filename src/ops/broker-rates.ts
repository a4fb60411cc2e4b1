/**
 * Messages per second into and out of each queue, as RabbitMQ's management
 * API measures them (AMQP itself tells only a queue's depth and consumers).
 * Without the management plugin the operators' view shows depths only.
 */
import type { Logger } from '../platform/log.js';
import { amqpNodes } from '../platform/messaging/amqp.js';

export interface QueueRates {
  /** Published into the queue, per second. */
  in: number;
  /** Delivered to consumers (or fetched), per second. */
  out: number;
  /** Acknowledged by consumers, per second. */
  acked: number;
}

export interface BrokerRates {
  /** Rates by queue name; undefined when the management API cannot be reached. */
  read(): Promise<Map<string, QueueRates> | undefined>;
}

interface ManagementQueue {
  name: string;
  message_stats?: {
    publish_details?: { rate: number };
    deliver_get_details?: { rate: number };
    ack_details?: { rate: number };
  };
}

/**
 * The management API's address: `url` itself, or (when empty) the broker's
 * host on port 15672 with the AMQP URL's credentials (a cluster's first
 * node: every node's management API shows every queue); `off` turns it off.
 */
export function managementUrlOf(url: string, amqpUrl: string): URL | undefined {
  if (url === 'off') return undefined;
  if (url !== '') return new URL(url);
  const amqp = new URL(amqpNodes(amqpUrl)[0]!);
  const derived = new URL(`http://${amqp.hostname}:15672`);
  derived.username = amqp.username || 'guest';
  derived.password = amqp.password || 'guest';
  // The AMQP URL's path is the vhost ('' and '/' both name the default one).
  derived.pathname = `/api/queues/${encodeURIComponent(decodeURIComponent(amqp.pathname.slice(1)) || '/')}`;
  return derived;
}

export function brokerRates(url: URL | undefined, prefix: string, log: Logger, timeoutMs = 1_000): BrokerRates {
  if (!url) return { read: async () => undefined };
  // fetch refuses URLs with credentials: they go in the Authorization header.
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  const target = new URL(url.pathname === '/' ? '/api/queues' : url.pathname, url.origin);
  target.searchParams.set('columns', 'name,message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate');
  let failing = false;
  return {
    async read() {
      try {
        const res = await fetch(target, { headers: { authorization: auth }, signal: AbortSignal.timeout(timeoutMs) });
        if (!res.ok) throw new Error(`management API answered ${res.status}`);
        const queues = (await res.json()) as ManagementQueue[];
        if (failing) log.info('broker rates: the management API answers again');
        failing = false;
        return new Map(queues.filter((q) => q.name.startsWith(`${prefix}.`)).map((q) => [q.name, {
          in: q.message_stats?.publish_details?.rate ?? 0,
          out: q.message_stats?.deliver_get_details?.rate ?? 0,
          acked: q.message_stats?.ack_details?.rate ?? 0,
        }]));
      } catch (err) {
        if (!failing) log.warn({ err, url: target.origin }, 'broker rates: the RabbitMQ management API cannot be read; queue rates are not shown');
        failing = true;
        return undefined;
      }
    },
  };
}
