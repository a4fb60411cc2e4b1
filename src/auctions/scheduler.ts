/**
 * The scheduler closes auctions when their (possibly extended) end passes and
 * runs the promoter. Its sorted sets are hints: the close and promote scripts
 * decide against Redis TIME, so a scheduler that is late, early or running
 * twice never closes too soon or closes twice. Claims use ZREM (only the
 * scheduler whose ZREM removed the entry acts), so several can run side by side.
 */
import { Outcome } from '../platform/redis/outcomes.js';
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/log.js';
import { AUCTION_DEADLINES, AUCTION_PROMOTIONS, auctionKeys } from './keys.js';
import { closeAuction, promoteBid, type StoredBid } from './scripts.js';
import { nextPromotionAt, MAX_AUCTION_AMOUNT, type Auctions, type PromoterPolicyName } from './auctions.js';

/** Picks the lucky bid among the standing ones (or none). */
export type PromoterPolicy = (bids: StoredBid[], random: () => number) => StoredBid | undefined;

export const promoterPolicies: Record<PromoterPolicyName, PromoterPolicy> = {
  /** Every standing bid is equally likely. */
  uniform: (bids, random) => bids[Math.floor(random() * bids.length)],
  /** The later a bid was placed, the likelier: weight = its rank by sequence (1 for the oldest). */
  recency: (bids, random) => {
    const sorted = [...bids].sort((a, b) => a.seq - b.seq);
    const total = (sorted.length * (sorted.length + 1)) / 2;
    let pick = random() * total;
    for (let i = 0; i < sorted.length; i++) {
      pick -= i + 1;
      if (pick < 0) return sorted[i];
    }
    return sorted[sorted.length - 1];
  },
};

export interface SchedulerOptions {
  redis: Redis;
  auctions: Auctions;
  log: Logger;
  tickMs: number;
  random?: () => number;
  policies?: Partial<Record<PromoterPolicyName, PromoterPolicy>>;
}

export class Scheduler {
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  closed = 0;
  promoted = 0;

  constructor(private readonly o: SchedulerOptions) {}

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick()
        .catch((err) => this.o.log.error({ err }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.o.tickMs);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
  }

  /** One pass: close what is due, promote what is due. */
  async tick(now = Date.now()): Promise<void> {
    const due = await this.o.redis.zrangebyscore(AUCTION_DEADLINES, '-inf', now, 'LIMIT', 0, 500);
    for (const id of due) await this.close(id);
    const promotions = await this.o.redis.zrangebyscore(AUCTION_PROMOTIONS, '-inf', now, 'LIMIT', 0, 100);
    for (const id of promotions) {
      if ((await this.o.redis.zrem(AUCTION_PROMOTIONS, id)) === 1) await this.promote(id, now);
    }
  }

  private async close(id: string): Promise<void> {
    const out = await closeAuction(this.o.redis, id, 'time');
    if (out.code === Outcome.NotDue) {
      // Extended by a late bid: look again at the new end.
      await this.o.redis.zadd(AUCTION_DEADLINES, out.endsAt, id);
      return;
    }
    await this.o.redis.zrem(AUCTION_DEADLINES, id);
    if (out.code === Outcome.Applied) {
      this.closed++;
      this.o.log.info({ auctionId: id, price: out.price, reserveMet: out.reserveMet }, 'auction closed');
    }
  }

  private async promote(id: string, now: number): Promise<void> {
    if ((await this.o.redis.hget(auctionKeys.auction(id), 'status')) !== 'open') return;
    const settings = await this.o.auctions.promoterOf(id);
    if (!settings?.enabled) return;
    const random = this.o.random ?? Math.random;
    const policy = this.o.policies?.[settings.policy] ?? promoterPolicies[settings.policy];
    const bids = await this.o.auctions.standingBids(id);
    const lucky = bids.length > 0 ? policy(bids, random) : undefined;
    if (lucky) {
      const out = await promoteBid(this.o.redis, id, lucky.bidId, MAX_AUCTION_AMOUNT);
      if (out.code === Outcome.Applied) {
        this.promoted++;
        this.o.log.info({ auctionId: id, bidId: lucky.bidId, added: out.added }, 'promoter doubled a bid');
      } else if (out.code === Outcome.Closed || out.code === Outcome.NotFound || out.code === Outcome.PromoterOff) {
        return;
      }
    }
    // Still open (or no bids yet): the next promotion is due at a random moment in the interval.
    await this.o.redis.zadd(AUCTION_PROMOTIONS, nextPromotionAt(settings, now, random), id);
  }
}
