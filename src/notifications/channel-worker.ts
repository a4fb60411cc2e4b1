/**
 * The e-mail and SMS workers: each consumes its channel's queue (see
 * BatchConsumer: manual acks, prefetch, retry tiers, dead letters) and
 * sends each requested message once (src/notifications/emails.ts, sms.ts).
 * Each channel has its own queue and retry tiers, so a provider that is
 * down delays that channel only, never the inbox nor the other channel.
 */
import { EVENTS, type EventType } from '../events/catalogue.js';
import { inTransaction, type Pool, type PoolClient } from '../platform/db/pool.js';
import { compileSchema } from '../platform/http/validate.js';
import { checkedData } from './announcements.js';
import { BatchConsumer, PoisonMessageError, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import type { CloudEvent } from '../platform/messaging/events.js';
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

/**
 * Sends one recorded message unless it was sent: locks its row (undefined
 * when sent already, or locked by another transaction, which sends it),
 * hands it to the channel and records it sent in the same transaction.
 */
export async function sendOnce<R>(
  pool: Pool, delivery: Delivery, key: DeliveryKey, lock: (tx: PoolClient, key: DeliveryKey) => Promise<R | undefined>, deliver: (row: R) => Promise<void>,
): Promise<'sent' | 'already'> {
  return inTransaction(pool, async (tx) => {
    const row = await lock(tx, key);
    if (!row) return 'already';
    await deliver(row);
    await recordSent(tx, delivery, key);
    return 'sent';
  });
}

/** What sends a channel's messages once. */
export interface Sender {
  send(key: DeliveryKey): Promise<'sent' | 'already'>;
}

export interface ChannelWorkerOptions extends WorkerSettings {
  delivery: Delivery;
  sender: Sender;
}

export class ChannelWorker extends BatchConsumer<DeliveryKey> {
  constructor(private readonly deps: ChannelWorkerOptions) {
    const { label } = REQUESTS[deps.delivery];
    super({ ...deps, name: `${label} worker`, what: `an ${label} request`, concern: deps.topology[deps.delivery] });
  }

  protected parse(envelope: JsonObject): DeliveryKey {
    return parseRequest(this.deps.delivery, envelope);
  }

  /** One by one: each message is its own transaction, so one the provider refuses leaves the others sent and recorded. */
  protected async settle(requests: DeliveryKey[]): Promise<void> {
    for (const key of requests) await this.deps.sender.send(key);
  }
}
