/**
 * The webhooks worker's first half: it consumes the webhooks queue (every
 * public event, BatchConsumer: manual acks, retry tiers, dead letters) and
 * makes, in one transaction per batch, one message per (event, endpoint)
 * that subscribes to it: the event's seller's endpoints and the operators'
 * (a disabled endpoint's made failed and unsent, for `recover` to send).
 * The message's id and body are fixed then; a redelivered event finds its
 * messages made and makes none (webhook_deliveries is unique on event and
 * endpoint). Sending is the dispatcher's (dispatcher.ts), woken once the
 * batch is committed.
 */
import { publicEventOf, type EventType } from '../events/catalogue.js';
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { newWebhookMessageId } from '../platform/ids.js';
import { compileSchema, type Validator } from '../platform/http/validate.js';
import { BatchConsumer, PoisonMessageError, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import { insertDeliveries, sellersOf, subscribersOf, type NewDelivery } from './repository.js';

export interface PublicEvent {
  id: string;
  source: string;
  time: string;
  subject?: string;
  event: EventType & { publicName: string };
  data: JsonObject;
}

/** The type a webhook carries: `stampede.<public name>.v<version>` (`stampede.bid.placed.v1`). */
export const webhookTypeOf = (e: EventType & { publicName: string }) => `stampede.${e.publicName}.v${e.version}`;

/** The body every attempt of a message sends: the event as a CloudEvent, under its public type, with its schema's address. */
export function webhookBodyOf(e: PublicEvent, publicUrl: string): string {
  return JSON.stringify({
    specversion: '1.0', id: e.id, source: e.source, type: webhookTypeOf(e.event), time: e.time, ...(e.subject ? { subject: e.subject } : {}),
    datacontenttype: 'application/json', dataschema: `${publicUrl}/v1/event-types/${e.event.publicName}`, data: e.data,
  });
}

const validators = new Map<string, Validator<JsonObject>>();
const validatorOf = (e: EventType): Validator<JsonObject> => {
  let v = validators.get(e.type);
  if (!v) validators.set(e.type, (v = compileSchema<JsonObject>(e.schema)));
  return v;
};

export function parsePublicEvent(envelope: JsonObject): PublicEvent {
  const event = typeof envelope.type === 'string' ? publicEventOf(envelope.type) : undefined;
  if (!event) throw new PoisonMessageError(`not a public event type: ${String(envelope.type)}`);
  const { id, source, time, subject, data } = envelope;
  if (typeof id !== 'string' || id === '' || id.length > 200) throw new PoisonMessageError('the event has no id');
  if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) throw new PoisonMessageError('the event has no time');
  if (!validatorOf(event)(data)) throw new PoisonMessageError(`${event.type} data does not match its schema`);
  return { id, source: typeof source === 'string' ? source : 'stampede', time, subject: typeof subject === 'string' ? subject : undefined, event, data: data as JsonObject };
}

export interface FanOutOptions extends WorkerSettings {
  pool: Pool;
  publicUrl: string;
  /** Called once a batch made new messages (the dispatcher sends them at once). */
  made?: (count: number) => void;
}

export class WebhookFanOut extends BatchConsumer<PublicEvent> {
  /** Messages made since start (a redelivered event makes none). */
  made = 0;

  constructor(private readonly o: FanOutOptions) {
    super({ ...o, name: 'webhooks worker', what: 'a public event', concern: o.topology.webhooks });
  }

  protected parse(envelope: JsonObject): PublicEvent {
    return parsePublicEvent(envelope);
  }

  protected async settle(events: PublicEvent[]): Promise<void> {
    const saleIds = new Set<string>();
    const auctionIds = new Set<string>();
    for (const e of events) {
      if (typeof e.data.saleId === 'string') saleIds.add(e.data.saleId);
      if (typeof e.data.auctionId === 'string') auctionIds.add(e.data.auctionId);
    }
    const made = await inTransaction(this.o.pool, async (tx) => {
      const sellers = await sellersOf(tx, [...saleIds], [...auctionIds]);
      const sellerOf = (e: PublicEvent) => sellers.get(String(e.data.saleId ?? e.data.auctionId ?? '')) ?? '';
      const byId = new Map(events.map((e) => [e.id, e]));
      const pairs = await subscribersOf(tx, [...byId.values()].map((e) => ({ eventId: e.id, publicName: e.event.publicName, sellerId: sellerOf(e) })));
      const deliveries: NewDelivery[] = pairs.map(({ eventId, endpointId, enabled }) => {
        const e = byId.get(eventId)!;
        return { id: newWebhookMessageId(), endpointId, eventId, eventType: e.event.publicName, body: webhookBodyOf(e, this.o.publicUrl), acceptedAt: new Date(e.time), send: enabled };
      });
      return (await insertDeliveries(tx, deliveries)).length;
    });
    this.made += made;
    if (made > 0) this.o.made?.(made);
  }
}
