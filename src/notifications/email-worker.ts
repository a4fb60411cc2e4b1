/**
 * The e-mail worker: consumes the notifications' e-mail queue (see
 * BatchConsumer: manual acks, prefetch, retry tiers, dead letters) and
 * sends each requested e-mail once (src/notifications/emails.ts). Its queue
 * has its own retry tiers, so an SMTP server that is down delays e-mail
 * only, never the inbox.
 */
import { EVENTS } from '../events/catalogue.js';
import { compileSchema } from '../platform/http/validate.js';
import { checkedData } from './announcements.js';
import { BatchConsumer, PoisonMessageError, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import type { CloudEvent } from '../platform/messaging/events.js';
import type { Emails } from './emails.js';
import type { EmailKey } from './repository.js';

const requestData = compileSchema<EmailKey>(EVENTS.notificationEmail.schema);

/** The request for a notification's e-mail, under an id stable across redeliveries. */
export function emailRequestOf(key: EmailKey, time = new Date()): CloudEvent<EmailKey> {
  return {
    specversion: '1.0', id: `${key.eventId}:email:${key.recipientId}`, source: 'stampede:notifications', type: EVENTS.notificationEmail.type,
    time: time.toISOString(), subject: key.recipientId, datacontenttype: 'application/json', data: { eventId: key.eventId, recipientId: key.recipientId },
  };
}

export function parseEmailRequest(envelope: JsonObject): EmailKey {
  if (envelope.type !== EVENTS.notificationEmail.type) throw new PoisonMessageError(`unknown event type ${String(envelope.type)}`);
  return checkedData(requestData, envelope.data, 'an e-mail request');
}

export interface EmailWorkerOptions extends WorkerSettings {
  emails: Emails;
}

export class EmailWorker extends BatchConsumer<EmailKey> {
  constructor(private readonly deps: EmailWorkerOptions) {
    super({ ...deps, name: 'e-mail worker', what: 'an e-mail request', concern: deps.topology.email });
  }

  protected parse(envelope: JsonObject): EmailKey {
    return parseEmailRequest(envelope);
  }

  /** One by one: each e-mail is its own transaction, so one the server refuses leaves the others sent and recorded. */
  protected async settle(requests: EmailKey[]): Promise<void> {
    for (const key of requests) await this.deps.emails.send(key);
  }
}
