/**
 * Auctions: terms in Postgres (the record), live state in Redis (the
 * decision point, see lua/auction), history in the auction_events log. This
 * use case creates, reads and cancels auctions. An auction missing from
 * Redis is loaded again from Postgres on first use; one whose bids Redis
 * lost is rebuilt from the log (`stampede rebuild auction <id>`, rebuild.ts).
 * Bids are bids.ts's.
 */
import { randomBytes } from 'node:crypto';
import { ensureLive, type Redis } from '../platform/redis/client.js';
import { AppError } from '../platform/errors.js';
import { newAuctionId } from '../platform/ids.js';
import type { Pool } from '../platform/db/pool.js';
import type { Principal } from '../platform/auth/api-keys.js';
import { Outcome, refusalOf } from '../platform/redis/outcomes.js';
import { OUTBOX_REGISTRY } from '../platform/messaging/outbox.js';
import { AUCTION_DEADLINES, AUCTION_PROMOTIONS, auctionKeys } from './keys.js';
import { closeAuction, loadAuction, readLiveAuction, type AuctionTerms, type LiveAuction } from './scripts.js';
import { checkTerms, encodeRule, handleOf, incrementOf, nextPromotionAt, type NewAuction, type PromoterSettings } from './rules.js';
import {
  cancelAuction, findAuction, insertAuction, openAuctionIds, openAuctions, openAuctionsAfter, promoterOf, recentOpenAuctions, recordAnnounced, type AuctionRecord,
} from './repository.js';
import type { AuctionCreatedData } from './events.js';

/** What anyone may see of an auction: its public terms as recorded, and its state as Redis decides it. */
export interface AuctionView extends Pick<AuctionRecord, 'id' | 'sellerId' | 'title' | 'collection' | 'currency' | 'startPrice' | 'buyNowPrice' | 'increment'> {
  softCloseSeconds: number;
  startsAt: string;
  endsAt: string;
  hardCloseAt: string;
  status: 'scheduled' | 'open' | 'closing' | 'closed' | 'cancelled';
  currentPrice: number | null;
  nextMinimumBid: number;
  bidCount: number;
  leader: string | null;
  reserveMet: boolean;
  promoter: boolean;
  result: { outcome: 'sold' | 'unsold'; winner: string | null; finalPrice: number | null } | null;
}

/** An auction as Postgres records it and as Redis holds it live (undefined: Redis does not know it). */
export interface CurrentAuction {
  auction: AuctionRecord;
  live: LiveAuction | undefined;
}

/** The answer to an auction nobody may see: unknown, or another seller's. */
export const unknownAuction = (): AppError => refusalOf('auction', { code: Outcome.NotFound });

/** The terms the scripts decide with. */
export function termsOf(auction: AuctionRecord): AuctionTerms {
  return {
    id: auction.id, status: auction.status, startsAt: auction.startsAt.getTime(), endsAt: auction.endsAt.getTime(), hardCloseAt: auction.hardCloseAt.getTime(),
    softCloseMs: auction.softCloseMs, currency: auction.currency, startPrice: auction.startPrice, reservePrice: auction.reservePrice,
    buyNowPrice: auction.buyNowPrice, rule: encodeRule(auction.increment), salt: auction.handleSalt, promoter: auction.promoter?.enabled === true,
  };
}

function viewOf({ auction, live }: CurrentAuction): AuctionView {
  const now = Date.now();
  const endsAt = live?.endsAt ?? auction.endsAt.getTime();
  const liveStatus = live?.status ?? auction.status;
  const status: AuctionView['status'] =
    liveStatus === 'cancelled' ? 'cancelled'
      : liveStatus === 'closed' ? 'closed'
        : now < auction.startsAt.getTime() ? 'scheduled'
          : now >= endsAt ? 'closing'
            : 'open';
  const price = live?.price ?? null;
  return {
    id: auction.id, sellerId: auction.sellerId, title: auction.title, collection: auction.collection, currency: auction.currency,
    startPrice: auction.startPrice, buyNowPrice: auction.buyNowPrice, increment: auction.increment, softCloseSeconds: auction.softCloseMs / 1000,
    startsAt: auction.startsAt.toISOString(), endsAt: new Date(endsAt).toISOString(), hardCloseAt: auction.hardCloseAt.toISOString(), status,
    currentPrice: price, nextMinimumBid: price === null ? auction.startPrice : price + incrementOf(auction.increment, price),
    bidCount: live?.bidCount ?? 0, leader: live?.leader ? handleOf(auction.handleSalt, live.leader) : null,
    reserveMet: price !== null && price >= auction.reservePrice, promoter: auction.promoter?.enabled === true,
    result: auction.outcome
      ? { outcome: auction.outcome, winner: auction.winnerId ? handleOf(auction.handleSalt, auction.winnerId) : null, finalPrice: auction.finalPrice }
      : null,
  };
}

export class Auctions {
  constructor(
    private readonly pool: Pool,
    private readonly redis: Redis,
  ) {}

  async create(terms: NewAuction, by: Principal): Promise<AuctionView> {
    const checked = checkTerms(terms);
    const auction = await insertAuction(this.pool, {
      id: newAuctionId(), sellerId: by.role === 'seller' ? by.userId : null, title: terms.title, collection: terms.collection ?? null,
      currency: terms.currency, startPrice: terms.startPrice, reservePrice: checked.reservePrice, buyNowPrice: terms.buyNowPrice ?? null,
      increment: terms.increment, softCloseMs: terms.softCloseSeconds * 1000, startsAt: checked.startsAt, endsAt: checked.endsAt,
      hardCloseAt: checked.hardCloseAt, promoter: terms.promoter ?? null, handleSalt: randomBytes(12).toString('hex'),
    });
    await this.load(auction);
    return viewOf({ auction, live: await readLiveAuction(this.redis, auction.id) });
  }

  async get(auctionId: string): Promise<AuctionView> {
    const current = await this.find(auctionId);
    if (!current) throw unknownAuction();
    return viewOf(current);
  }

  /** The auction's public state in the shape live updates carry (see publishLive in auctionBook.lua). */
  async liveSnapshot(auctionId: string): Promise<object | undefined> {
    const current = await this.find(auctionId);
    if (!current) return undefined;
    const view = viewOf(current);
    return {
      auctionId, price: view.currentPrice, nextMinimum: view.nextMinimumBid, leader: view.leader, endsAt: Date.parse(view.endsAt), bidCount: view.bidCount,
      status: view.status === 'cancelled' || view.status === 'closed' ? view.status : 'open', reserveMet: view.reserveMet,
    };
  }

  async listOpen(limit: number, after: string | undefined): Promise<{ items: AuctionView[]; next: string | null }> {
    const found = await openAuctionsAfter(this.pool, after, limit + 1);
    const page = found.slice(0, limit);
    const lives = await Promise.all(page.map((auction) => this.live(auction)));
    const items = page.map((auction, i) => viewOf({ auction, live: lives[i] })).filter((view) => view.status !== 'closed' && view.status !== 'cancelled');
    return { items, next: found.length > limit ? page[page.length - 1]!.id : null };
  }

  async cancel(auctionId: string, by: Principal): Promise<AuctionView> {
    const auction = await findAuction(this.pool, auctionId);
    if (!auction || (by.role === 'seller' && auction.sellerId !== by.userId)) throw unknownAuction();
    await this.live(auction);
    const out = await closeAuction(this.redis, auctionId, 'cancel');
    if (out.code === Outcome.AlreadyApplied && out.status !== 'cancelled') throw new AppError('AUCTION_CLOSED', 'a closed auction cannot be cancelled');
    const cancelled = await cancelAuction(this.pool, auctionId);
    await this.redis.zrem(AUCTION_DEADLINES, auctionId);
    return viewOf({ auction: cancelled ?? auction, live: await readLiveAuction(this.redis, auctionId) });
  }

  /** The auction's promoter settings (null: it has none). */
  promoterOf(auctionId: string): Promise<PromoterSettings | null> {
    return promoterOf(this.pool, auctionId);
  }

  /** The `limit` open auctions that started last, as buyers see them, each with the end it was scheduled for (a soft close moves `endsAt` past it). */
  async recentWithSchedule(limit: number): Promise<{ view: AuctionView; scheduledEndsAt: number }[]> {
    const page = await recentOpenAuctions(this.pool, limit);
    const lives = await Promise.all(page.map((auction) => this.live(auction)));
    return page
      .map((auction, i) => ({ view: viewOf({ auction, live: lives[i] }), scheduledEndsAt: auction.endsAt.getTime() }))
      .filter(({ view }) => view.status !== 'closed' && view.status !== 'cancelled');
  }

  /** The ids of the open auctions. */
  openIds(): Promise<string[]> {
    return openAuctionIds(this.pool);
  }

  /** The auction as recorded and as live (an open one Redis lost is loaded again); undefined when it does not exist. */
  async find(auctionId: string): Promise<CurrentAuction | undefined> {
    const auction = await findAuction(this.pool, auctionId);
    return auction && { auction, live: await this.live(auction) };
  }

  /** Loads an auction into Redis if Redis does not know it. Returns false when it does not exist. */
  ensureLoaded(auctionId: string): Promise<boolean> {
    return ensureLive(this.redis, auctionKeys.auction(auctionId), () => findAuction(this.pool, auctionId), (auction) => this.load(auction));
  }

  /** Loads every open auction (api and scheduler start-up). */
  async loadOpen(): Promise<number> {
    const open = await openAuctions(this.pool);
    for (const auction of open) await this.load(auction);
    return open.length;
  }

  private async live(auction: AuctionRecord): Promise<LiveAuction | undefined> {
    const live = await readLiveAuction(this.redis, auction.id);
    if (live || auction.status !== 'open') return live;
    await this.load(auction);
    return readLiveAuction(this.redis, auction.id);
  }

  /**
   * Loads the auction into Redis (unless it is there). An open auction of a
   * collection not announced yet is loaded with its auction.created event,
   * which the script writes in its outbox with the live state, only if it
   * creates that; once Postgres records it announced, no reload (loadOpen
   * on start, first use) writes it again. A create that died between its
   * insert and this load is announced by the next load; one that died
   * before recording it announced finds the state there and writes nothing,
   * or (Redis lost it) writes the event again under the same id, which the
   * fan-out tells once.
   */
  private async load(auction: AuctionRecord): Promise<void> {
    const terms = termsOf(auction);
    const unannounced = auction.announcedAt === null && auction.status === 'open';
    await loadAuction(this.redis, terms, unannounced && auction.collection ? createdEventOf(auction) : undefined);
    // Three global keys, so three slots on a cluster: separate commands (each is idempotent; a load that dies midway is redone whole).
    const writes: Promise<unknown>[] = [this.redis.sadd(OUTBOX_REGISTRY, auctionKeys.outbox(auction.id))];
    if (auction.status === 'open') {
      // The deadline is a hint: the close script decides, and reports an extended end.
      writes.push(this.redis.zadd(AUCTION_DEADLINES, 'NX', terms.endsAt, auction.id));
      if (terms.promoter && auction.promoter) {
        writes.push(this.redis.zadd(AUCTION_PROMOTIONS, 'NX', nextPromotionAt(auction.promoter, Math.max(Date.now(), terms.startsAt)), auction.id));
      }
    }
    await Promise.all(writes);
    if (unannounced) await recordAnnounced(this.pool, auction.id);
  }
}

/** auction.created's data (the collection's followers are told it). */
const createdEventOf = (a: AuctionRecord): AuctionCreatedData => ({
  auctionId: a.id, collection: a.collection!, title: a.title, currency: a.currency, startPrice: a.startPrice, startsAt: a.startsAt.getTime(), endsAt: a.endsAt.getTime(),
});
