/**
 * The scheduler closes auctions when their (possibly extended) end passes and
 * runs the promoter. Its sorted sets are hints: the close and promote scripts
 * decide against Redis TIME, so a scheduler that is late, early or running
 * twice never closes too soon or closes twice. Claims use ZREM (only the
 * scheduler whose ZREM removed the entry acts), so several can run side by side.
 */
import type { Redis } from 'ioredis';
import { Outcome } from '../platform/redis/outcomes.js';
import type { Logger } from '../platform/log.js';
import { AUCTION_DEADLINES, AUCTION_PROMOTIONS, auctionKeys } from './keys.js';
import { closeAuction, promoteBid } from './scripts.js';
import { MAX_AUCTION_AMOUNT, nextPromotionAt, type PromoterPolicyName } from './rules.js';
import { promoterPolicies, type PromoterPolicy } from './promoter.js';
import type { Auctions } from './auctions.js';
import type { Bids } from './bids.js';

/** The most due closes, and due promotions, one tick takes on. */
const CLOSES_PER_TICK = 500;
const PROMOTIONS_PER_TICK = 100;

export interface SchedulerOptions {
  redis: Redis;
  auctions: Auctions;
  bids: Bids;
  log: Logger;
  tickMs: number;
  random?: () => number;
  /** Policies that replace the built-in ones of the same name. */
  policies?: Partial<Record<PromoterPolicyName, PromoterPolicy>>;
}

export class Scheduler {
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  closed = 0;
  promoted = 0;

  constructor(private readonly options: SchedulerOptions) {}

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick()
        .catch((err) => this.options.log.error({ err }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.options.tickMs);
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
    const { redis } = this.options;
    const due = await redis.zrangebyscore(AUCTION_DEADLINES, '-inf', now, 'LIMIT', 0, CLOSES_PER_TICK);
    for (const auctionId of due) await this.close(auctionId);
    const promotions = await redis.zrangebyscore(AUCTION_PROMOTIONS, '-inf', now, 'LIMIT', 0, PROMOTIONS_PER_TICK);
    for (const auctionId of promotions) {
      if ((await redis.zrem(AUCTION_PROMOTIONS, auctionId)) === 1) await this.promote(auctionId, now);
    }
  }

  private async close(auctionId: string): Promise<void> {
    const { redis, log } = this.options;
    const out = await closeAuction(redis, auctionId, 'time');
    if (out.code === Outcome.NotDue) {
      // Extended by a late bid: look again at the new end.
      await redis.zadd(AUCTION_DEADLINES, out.endsAt, auctionId);
      return;
    }
    await redis.zrem(AUCTION_DEADLINES, auctionId);
    if (out.code === Outcome.Applied) {
      this.closed++;
      log.info({ auctionId, price: out.price, reserveMet: out.reserveMet }, 'auction closed');
    }
  }

  private async promote(auctionId: string, now: number): Promise<void> {
    const { redis, auctions, bids, log } = this.options;
    if ((await redis.hget(auctionKeys.auction(auctionId), 'status')) !== 'open') return;
    const settings = await auctions.promoterOf(auctionId);
    if (!settings?.enabled) return;
    const random = this.options.random ?? Math.random;
    const policy = this.options.policies?.[settings.policy] ?? promoterPolicies[settings.policy];
    const standing = await bids.standingBids(auctionId);
    const lucky = standing.length > 0 ? policy(standing, random) : undefined;
    if (lucky) {
      const out = await promoteBid(redis, auctionId, lucky.bidId, MAX_AUCTION_AMOUNT);
      if (out.code === Outcome.Applied) {
        this.promoted++;
        log.info({ auctionId, bidId: lucky.bidId, added: out.added }, 'promoter doubled a bid');
      } else if (out.code === Outcome.Closed || out.code === Outcome.NotFound || out.code === Outcome.PromoterOff) {
        return;
      }
    }
    // Still open (or no bids yet): the next promotion is due at a random moment in the interval.
    await redis.zadd(AUCTION_PROMOTIONS, nextPromotionAt(settings, now, random), auctionId);
  }
}
