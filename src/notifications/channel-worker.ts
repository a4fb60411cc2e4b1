/**
 * The e-mail and SMS workers: each consumes its channel's queue (see
 * BatchConsumer: manual acks, prefetch, retry tiers, dead letters) and
 * sends each requested message once (src/notifications/emails.ts, sms.ts).
 * Each channel has its own queue and retry tiers, so a provider that is
 * down delays that channel only, never the inbox nor the other channel.
 *
 * A message told in the buyer's quiet hours is recorded with the time they
 * end (`notBefore`). A request that arrives earlier sends nothing: it is
 * published again to the longest of the queue's delay tiers that ends by
 * then (each returns it to the queue when its TTL passes), hop after hop,
 * and the last stretch, shorter than any tier, is waited out here; so the
 * message goes at the end of the quiet hours, and a worker that dies
 * meanwhile loses nothing (the request is in a queue, or unacked).
 */
import { EVENTS, type EventType } from '../events/catalogue.js';
import { inTransaction, type Pool, type PoolClient } from '../platform/db/pool.js';
import { compileSchema } from '../platform/http/validate.js';
import { checkedData } from './announcements.js';
import { BatchConsumer, PoisonMessageError, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import type { ConfirmChannel } from '../platform/messaging/amqp.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import { publisherOf } from '../platform/messaging/publisher.js';
import { retryQueue } from '../platform/messaging/topology.js';
import { recordSent, type Delivery, type DeliveryKey } from './repository.js';

const REQUESTS: Record<Delivery, { event: EventType; label: string }> = {
  email: { event: EVENTS.notificationEmail, label: 'e-mail' },
  sms: { event: EVENTS.notificationSms, label: 'SMS' },
};

const requestData = compileSchema<DeliveryKey>(EVENTS.notificationEmail.schema);

/** The request for a notification's e-mail or SMS, under an id stable across redeliveries. */
export function requestOf(delivery: Delivery, key: DeliveryKey, time = new Date()): CloudEvent<DeliveryKey> {
  return {
    specversion: '1.0', id: `${key.eventId}:${delivery}:${key.recipientId}`, source: 'stampede:notifications', type: REQUESTS[delivery].event.type,
    time: time.toISOString(), subject: key.recipientId, datacontenttype: 'application/json', data: { eventId: key.eventId, recipientId: key.recipientId },
  };
}

export function parseRequest(delivery: Delivery, envelope: JsonObject): DeliveryKey {
  const { event, label } = REQUESTS[delivery];
  if (envelope.type !== event.type) throw new PoisonMessageError(`unknown event type ${String(envelope.type)}`);
  return checkedData(requestData, envelope.data, `an ${label} request`);
}

/** What became of a request: sent now, found sent (or being sent), or to be asked again at the end of quiet hours. */
export type Sending = 'sent' | 'already' | { waitUntil: Date };

/**
 * Sends one recorded message unless it was sent: locks its row (undefined
 * when sent already, or locked by another transaction, which sends it),
 * hands it to the channel and records it sent in the same transaction. A
 * row whose quiet hours have not ended at `now` is left as it is.
 */
export async function sendOnce<R extends { notBefore: Date | null }>(
  pool: Pool, delivery: Delivery, key: DeliveryKey, now: number,
  lock: (tx: PoolClient, key: DeliveryKey) => Promise<R | undefined>, deliver: (row: R) => Promise<void>,
): Promise<Sending> {
  return inTransaction(pool, async (tx) => {
    const row = await lock(tx, key);
    if (!row) return 'already';
    if (row.notBefore && row.notBefore.getTime() > now) return { waitUntil: row.notBefore };
    await deliver(row);
    await recordSent(tx, delivery, key);
    return 'sent';
  });
}

/** What sends a channel's messages once. */
export interface Sender {
  send(key: DeliveryKey, now: number): Promise<Sending>;
}

export interface ChannelWorkerOptions extends WorkerSettings {
  delivery: Delivery;
  sender: Sender;
  /** The wall clock quiet hours are read by (tests shift it). */
  clock?: () => number;
}

export class ChannelWorker extends BatchConsumer<DeliveryKey> {
  constructor(private readonly deps: ChannelWorkerOptions) {
    const { label } = REQUESTS[deps.delivery];
    super({ ...deps, name: `${label} worker`, what: `an ${label} request`, concern: deps.topology[deps.delivery] });
  }

  /** What became of the requests since start: sent, found sent already, deferred to the end of quiet hours, failed (to be retried, or dead-lettered). */
  readonly deliveries = { sent: 0, already_sent: 0, deferred: 0, failed: 0 };

  get delivery(): Delivery {
    return this.deps.delivery;
  }

  protected parse(envelope: JsonObject): DeliveryKey {
    return parseRequest(this.deps.delivery, envelope);
  }

  /** One by one: each message is its own transaction, so one the provider refuses leaves the others sent and recorded. */
  protected async settle(requests: DeliveryKey[], pub: ConfirmChannel): Promise<void> {
    const clock = this.deps.clock ?? Date.now;
    for (const key of requests) {
      for (;;) {
        let sending: Sending;
        try {
          sending = await this.deps.sender.send(key, clock());
        } catch (err) {
          this.deliveries.failed++;
          throw err;
        }
        if (sending === 'sent') this.deliveries.sent++;
        else if (sending === 'already') this.deliveries.already_sent++;
        if (typeof sending === 'string') break;
        const waitMs = sending.waitUntil.getTime() - clock();
        const tier = this.deps.topology.retryDelaysMs.filter((d) => d <= waitMs).reduce((a, b) => Math.max(a, b), 0);
        if (tier > 0) {
          this.deliveries.deferred++;
          await this.askAgainIn(tier, key, pub);
          break;
        }
        await new Promise((r) => setTimeout(r, Math.max(waitMs, 0)));
      }
    }
  }

  /** The request again, through a delay tier (no attempt counted: it did not fail); confirmed before this one is acked. */
  private askAgainIn(delayMs: number, key: DeliveryKey, pub: ConfirmChannel): Promise<void> {
    const request = requestOf(this.deps.delivery, key);
    return publisherOf(pub).sendToQueue(retryQueue(this.deps.topology[this.deps.delivery], delayMs), Buffer.from(JSON.stringify(request)), {
      messageId: request.id, type: request.type, contentType: 'application/cloudevents+json',
    });
  }
}
