/**
 * The orders worker: consumes `stampede.orders` (see BatchConsumer: manual
 * acks, prefetch, batches, retry tiers, dead letters), settles what arrived
 * together in one Postgres transaction, then applies each outcome to the
 * sale's live state in Redis (exactly once, by settlePurchases calls per
 * sale) and announces it to its buyer (purchase.confirmed, failed,
 * cancelled: announcements.ts) with publisher confirms; only then are the
 * messages acked. A crash in between redelivers the events, which settle
 * nothing again and announce the same results with the same ids.
 */
import type { Redis } from 'ioredis';
import type { Pool } from '../platform/db/pool.js';
import { settleOrders, type SettlementResult } from './settlement.js';
import { readPurchase, settlePurchases, type Settlement } from './scripts.js';
import { saleKeys } from './keys.js';
import { announceIfSoldOut, liveKeyOfPurchase } from './shards.js';
import { PURCHASE_EVENT_TYPES, type PurchaseEvent } from './events.js';
import { purchaseAnnouncementOf, refundAnnouncementOf } from './announcements.js';
import { SALE_ID, USER_ID, saleOfPurchase } from '../platform/ids.js';
import { BatchConsumer, PoisonMessageError, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import type { ConfirmChannel } from '../platform/messaging/amqp.js';
import { ANNOUNCEMENTS_PER_MESSAGE, publisherOf } from '../platform/messaging/publisher.js';

export interface OrdersWorkerOptions extends WorkerSettings {
  redis: Redis;
  pool: Pool;
  /** Told each purchase's seconds from its acceptance (Redis TIME, in its event) to its settlement (metrics). */
  observeSettled?: (seconds: number) => void;
}

/** Checks a purchase event's envelope and payload field by field; throws PoisonMessageError for anything else. */
function parsePurchaseEvent(envelope: JsonObject): PurchaseEvent {
  const { id, type, time } = envelope;
  const data = envelope.data as Record<string, unknown> | null | undefined;
  // Money is only ever moved by well-formed events: a negative price or a
  // quantity of zero would mint or hide money, so they never reach Postgres.
  const ok =
    typeof id === 'string' && id !== '' && typeof time === 'string' && Number.isFinite(Date.parse(time)) &&
    data !== null && typeof data === 'object' && !Array.isArray(data) &&
    // Ids in their own formats, the purchase's in its sale: a malformed id is
    // this event's fault alone, dead-lettered alone, not a failure of the
    // batch (and every other event of its message) in Postgres.
    typeof data.saleId === 'string' && SALE_ID.test(data.saleId) && typeof data.purchaseId === 'string' && saleOfPurchase(data.purchaseId) === data.saleId &&
    typeof data.buyerId === 'string' && USER_ID.test(data.buyerId) &&
    Number.isSafeInteger(data.quantity) && (data.quantity as number) > 0 &&
    Number.isSafeInteger(data.unitPrice) && (data.unitPrice as number) >= 0 &&
    Number.isSafeInteger((data.quantity as number) * (data.unitPrice as number)) &&
    typeof data.currency === 'string' && /^[A-Z]{3}$/.test(data.currency) &&
    Number.isSafeInteger(data.acceptedAt) && (data.acceptedAt as number) > 0;
  if (!ok) throw new PoisonMessageError('message is not a purchase event');
  // The checks above are what settlement reads of the payload (a cancellation's requestedAt is carried, not read).
  if (type === PURCHASE_EVENT_TYPES.accepted) return { eventId: id, type: 'accepted', time: Date.parse(time), data: data as never };
  if (type === PURCHASE_EVENT_TYPES.cancel_requested) return { eventId: id, type: 'cancel_requested', time: Date.parse(time), data: data as never };
  if (type === PURCHASE_EVENT_TYPES.expired) {
    if (!Number.isSafeInteger(data.expiredAt)) throw new PoisonMessageError('an expiry without its expiredAt');
    return { eventId: id, type: 'expired', time: Date.parse(time), data: data as never, reason: 'RESERVATION_EXPIRED' };
  }
  throw new PoisonMessageError(`unknown event type ${String(type)}`);
}

export class OrdersWorker extends BatchConsumer<PurchaseEvent> {
  constructor(private readonly deps: OrdersWorkerOptions) {
    super({ ...deps, name: 'orders worker', what: 'a purchase event', concern: deps.topology.orders });
  }

  protected parse(envelope: JsonObject): PurchaseEvent {
    return parsePurchaseEvent(envelope);
  }

  /**
   * Postgres has committed; now the live state follows, one script call per
   * sale, in the batch's order. A crash here is repaired by redelivery: the
   * stored status is applied again, once.
   */
  private async applyToLiveState(results: SettlementResult[]): Promise<void> {
    // By the keys each purchase lives under: its sale's, or its shard's for a sharded sale.
    const byKeys = new Map<string, Settlement[]>();
    const confirmedIn = new Set<string>();
    for (const result of results) {
      const key = liveKeyOfPurchase(result.purchaseId) ?? result.saleId;
      let list = byKeys.get(key);
      if (!list) byKeys.set(key, (list = []));
      list.push({ purchaseId: result.purchaseId, status: result.status, reason: result.reason, settledAt: result.settledAt });
      if (result.status === 'confirmed') confirmedIn.add(result.saleId);
    }
    await Promise.all(
      [...byKeys].map(async ([key, settlements]) => {
        const outcomes = await settlePurchases(this.deps.redis, key, settlements);
        outcomes.forEach((outcome, i) => {
          if (outcome.code < 0) this.deps.log.error({ saleId: key, purchaseId: settlements[i]!.purchaseId }, 'settled purchase unknown to Redis');
        });
      }),
    );
    // A sharded sale sold out when all its shards have: announced once, on shard 0 (src/sales/shards.ts).
    for (const saleId of confirmedIn) {
      const shards = Number((await this.deps.redis.hget(saleKeys.sale(saleId), 'shards')) ?? 1);
      if (shards > 1) await announceIfSoldOut(this.deps.redis, saleId, shards);
    }
  }

  /** Purchase results since start, by the order's status (a redelivered event counts again). */
  readonly results = new Map<string, number>();

  private count(events: PurchaseEvent[], results: SettlementResult[]): void {
    for (const r of results) this.results.set(r.status, (this.results.get(r.status) ?? 0) + 1);
    const observe = this.deps.observeSettled;
    if (!observe) return;
    const acceptedAt = new Map(events.filter((e) => e.type === 'accepted').map((e) => [e.eventId, e.data.acceptedAt]));
    for (const r of results) {
      const at = acceptedAt.get(r.eventId);
      if (at !== undefined && r.status !== 'cancelled') observe(Math.max(0, r.settledAt - at) / 1000);
    }
  }

  /**
   * A dead-lettered message's events are settled one by one: one event that
   * cannot be settled must not hold back the others of its batch. An accepted
   * purchase that cannot be settled even alone, and that Redis holds pending
   * as the event says (an event that names no purchase Redis accepted moved
   * no stock: it stays in the dead letters for an operator), fails
   * (UNSETTLEABLE), settled like any event: its stock goes back on sale and
   * its buyer is told, once (replaying the dead letter later finds its order
   * and changes nothing). When even that fails (Postgres away), the
   * reservation deadline fails it later (src/sales/deadline.ts).
   */
  protected override async onDeadLettered(events: PurchaseEvent[], channel: ConfirmChannel): Promise<void> {
    for (const e of events) {
      try {
        await this.settle([e], channel);
        continue;
      } catch (err) {
        if (e.type !== 'accepted') {
          this.deps.log.error({ err, eventId: e.eventId, purchaseId: e.data.purchaseId }, 'dead-lettered purchase event could not be settled alone');
          continue;
        }
      }
      const live = await readPurchase(this.deps.redis, liveKeyOfPurchase(e.data.purchaseId) ?? e.data.saleId, e.data.purchaseId).catch(() => undefined);
      if (live?.status !== 'pending' || live.buyerId !== e.data.buyerId || live.quantity !== e.data.quantity) continue;
      const now = Date.now();
      const expiry: PurchaseEvent = { eventId: `${e.data.purchaseId}:unsettleable`, type: 'expired', time: now, data: { ...e.data, expiredAt: now }, reason: 'UNSETTLEABLE' };
      try {
        await this.settle([expiry], channel);
        this.deps.log.error({ purchaseId: e.data.purchaseId, saleId: e.data.saleId }, 'dead-lettered purchase failed (UNSETTLEABLE); its stock is back on sale');
      } catch (err) {
        this.deps.log.error({ err, purchaseId: e.data.purchaseId }, 'dead-lettered purchase could not be failed; its reservation deadline will fail it');
      }
    }
  }

  protected async settle(events: PurchaseEvent[], channel: ConfirmChannel): Promise<void> {
    const results = await settleOrders(this.deps.pool, events);
    this.count(events, results);
    await this.applyToLiveState(results);
    // One announcement per purchase and outcome: a batch naming a purchase twice (a redelivery beside it) tells it once.
    const announcements = new Map([...results.map((r) => purchaseAnnouncementOf(r)), ...results.flatMap(refundAnnouncementOf)].map((a) => [a.id, a]));
    await publisherOf(channel).publishEventBatches(this.deps.topology.exchange, [...announcements.values()], ANNOUNCEMENTS_PER_MESSAGE);
  }
}
