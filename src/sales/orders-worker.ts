/**
 * The orders worker: consumes `stampede.orders` (see BatchConsumer: manual
 * acks, prefetch, batches, retry tiers, dead letters), settles what arrived
 * together in one Postgres transaction, then applies each outcome to the
 * sale's live state in Redis (exactly once, by settlePurchases calls per
 * sale) before the messages are acked.
 */
import type { Redis } from 'ioredis';
import type { Pool } from '../platform/db/pool.js';
import { settleOrders } from './settlement.js';
import { settlePurchases, type Settlement } from './scripts.js';
import { PURCHASE_EVENT_TYPES, type PurchaseEvent } from './events.js';
import { SALE_ID, USER_ID, saleOfPurchase } from '../platform/ids.js';
import { BatchConsumer, PoisonMessageError, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';

export { PoisonMessageError };

export interface OrdersWorkerOptions extends WorkerSettings {
  redis: Redis;
  pool: Pool;
}

export function parsePurchaseEvent(envelope: JsonObject): PurchaseEvent {
  const ev = envelope as { id?: unknown; type?: unknown; time?: unknown; data?: unknown };
  const d = ev.data as Record<string, unknown> | null | undefined;
  // Money is only ever moved by well-formed events: a negative price or a
  // quantity of zero would mint or hide money, so they never reach Postgres.
  const ok =
    typeof ev.id === 'string' && ev.id !== '' && typeof ev.time === 'string' && Number.isFinite(Date.parse(ev.time)) &&
    d !== null && typeof d === 'object' && !Array.isArray(d) &&
    // Ids in their own formats, the purchase's in its sale: a malformed id is
    // this event's fault alone, dead-lettered alone, not a failure of the
    // batch (and every other event of its message) in Postgres.
    typeof d.saleId === 'string' && SALE_ID.test(d.saleId) && typeof d.purchaseId === 'string' && saleOfPurchase(d.purchaseId) === d.saleId &&
    typeof d.buyerId === 'string' && USER_ID.test(d.buyerId) &&
    Number.isSafeInteger(d.quantity) && (d.quantity as number) > 0 &&
    Number.isSafeInteger(d.unitPrice) && (d.unitPrice as number) >= 0 &&
    Number.isSafeInteger((d.quantity as number) * (d.unitPrice as number)) &&
    typeof d.currency === 'string' && /^[A-Z]{3}$/.test(d.currency) &&
    Number.isSafeInteger(d.acceptedAt) && (d.acceptedAt as number) > 0;
  if (!ok) throw new PoisonMessageError('message is not a purchase event');
  const time = Date.parse(ev.time as string);
  if (ev.type === PURCHASE_EVENT_TYPES.accepted) return { eventId: ev.id as string, type: 'accepted', time, data: d as never };
  if (ev.type === PURCHASE_EVENT_TYPES.cancel_requested) return { eventId: ev.id as string, type: 'cancel_requested', time, data: d as never };
  throw new PoisonMessageError(`unknown event type ${String(ev.type)}`);
}

export class OrdersWorker extends BatchConsumer<PurchaseEvent> {
  constructor(private readonly deps: OrdersWorkerOptions) {
    super({ ...deps, name: 'orders worker', what: 'a purchase event', concern: deps.topology.orders });
  }

  protected parse(envelope: JsonObject): PurchaseEvent {
    return parsePurchaseEvent(envelope);
  }

  protected async settle(events: PurchaseEvent[]): Promise<void> {
    const results = await settleOrders(this.deps.pool, events);
    // Postgres has committed; now the live state follows, one script call per
    // sale, in the batch's order. A crash here is repaired by redelivery: the
    // stored status is applied again, once.
    const bySale = new Map<string, Settlement[]>();
    for (const r of results) {
      let list = bySale.get(r.saleId);
      if (!list) bySale.set(r.saleId, (list = []));
      list.push({ purchaseId: r.purchaseId, status: r.status, reason: r.reason, settledAt: r.settledAt });
    }
    await Promise.all(
      [...bySale].map(async ([saleId, settlements]) => {
        const outcomes = await settlePurchases(this.deps.redis, saleId, settlements);
        outcomes.forEach((o, i) => {
          if (o.code < 0) this.deps.log.error({ saleId, purchaseId: settlements[i]!.purchaseId }, 'settled purchase unknown to Redis');
        });
      }),
    );
  }
}
