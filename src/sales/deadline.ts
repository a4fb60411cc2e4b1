/**
 * The reservation deadline (invariant 7): a purchase accepted and neither
 * settled nor failed STAMPEDE_RESERVATION_DEADLINE_MS after its acceptance is
 * given up, whatever held it (an event the relay never published, a message
 * parked in the dead letters, a worker that could not fail it). The
 * scheduler sweeps every sale's in-flight purchases (one per buyer, the
 * `inflight` hash) every STAMPEDE_RESERVATION_SWEEP_MS and asks Redis to
 * expire those past the deadline (lua/sale/expirePurchase-2.lua, which
 * checks it again on Redis' clock). The expiry travels like any purchase
 * event, through the outbox to the orders worker, which fails the purchase
 * (RESERVATION_EXPIRED), puts its stock back on sale and tells its buyer —
 * unless its settlement committed first: the order row decides, once
 * (src/sales/settlement.ts).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/log.js';
import { OUTBOX_REGISTRY } from '../platform/messaging/outbox.js';
import { Outcome } from '../platform/redis/outcomes.js';
import { Every } from '../platform/time.js';
import { saleKeys, saleOfOutbox } from './keys.js';
import { completeTransfersFrom } from './shards.js';
import { expirePurchase } from './scripts.js';

/** In-flight markers read per HSCAN step of one sale. */
const SCAN_COUNT = 500;

export interface ReservationDeadlineOptions {
  redis: Redis;
  log: Logger;
  deadlineMs: number;
  everyMs: number;
}

export class ReservationDeadline {
  private readonly schedule: Every;
  /** Purchases given up since start (for operators and tests). */
  expired = 0;

  constructor(private readonly options: ReservationDeadlineOptions) {
    this.schedule = new Every(options.everyMs, () => this.sweep(), (err) => options.log.error({ err }, 'reservation deadline sweep failed'));
  }

  start(): void {
    this.schedule.start();
  }

  stop(): Promise<void> {
    return this.schedule.stop();
  }

  /** Expires every in-flight purchase past the deadline; returns how many it expired. */
  async sweep(): Promise<number> {
    const { redis } = this.options;
    let expired = 0;
    for (const stream of await redis.smembers(OUTBOX_REGISTRY)) {
      const saleId = saleOfOutbox(stream);
      if (saleId === undefined) continue;
      // A sharded sale's transfers left half done (a mover that died) arrive now (src/sales/shards.ts).
      const arrived = await completeTransfersFrom(redis, saleId).catch((err) => {
        this.options.log.error({ err, saleId }, 'shard transfers: could not complete the transfers in transit');
        return 0;
      });
      if (arrived > 0) this.options.log.warn({ saleId, arrived }, 'completed stock transfers between shards that were left half done');
      // One sale that cannot be swept (a damaged record) holds back no other.
      expired += await this.sweepSale(saleId).catch((err) => {
        this.options.log.error({ err, saleId }, 'reservation deadline: could not sweep a sale');
        return 0;
      });
    }
    this.expired += expired;
    return expired;
  }

  private async sweepSale(saleId: string): Promise<number> {
    const { redis, log, deadlineMs } = this.options;
    let expired = 0;
    let cursor = '0';
    do {
      const [next, flat] = await redis.hscan(saleKeys.inflight(saleId), cursor, 'COUNT', SCAN_COUNT);
      cursor = next;
      const purchaseIds = flat.filter((_, i) => i % 2 === 1);
      if (purchaseIds.length === 0) continue;
      const p = redis.pipeline();
      for (const id of purchaseIds) p.hget(saleKeys.purchase(saleId, id), 'createdAt');
      const createdAt = ((await p.exec()) ?? []).map(([, v]) => Number(v ?? NaN));
      // This host's clock only picks the candidates; the script decides on Redis' own.
      const due = purchaseIds.filter((_, i) => createdAt[i]! + deadlineMs <= Date.now());
      for (const purchaseId of due) {
        const out = await expirePurchase(redis, saleId, purchaseId, deadlineMs);
        if (out.code !== Outcome.Applied) continue;
        expired++;
        log.warn({ saleId, purchaseId, deadlineMs }, 'purchase passed its reservation deadline unsettled; its expiry is on its way to settlement');
      }
    } while (cursor !== '0');
    return expired;
  }
}
