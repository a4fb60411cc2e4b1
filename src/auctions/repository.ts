/**
 * All of the auctions' SQL: their terms and outcome (`auctions`), their log
 * (`auction_events`), the settlement's offers (`auction_offers`), and what
 * settling a close reads and writes of wallets, ledger and users. One row
 * type per table; what leaves this module is a record in the domain's names,
 * its bigint columns converted to numbers here (amounts are bounded by
 * MAX_AUCTION_AMOUNT, exact in doubles).
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import type { AuctionLogEvent, LoggedAuctionEventType } from './events.js';
import type { IncrementRule, PromoterSettings } from './rules.js';

/** A pool, or the client of a transaction. */
export type Db = Pool | PoolClient;

/** A bigint column as pg hands it over: text, unless the pool's INT8 parser (src/platform/db/pool.ts) made it a number. */
type Int8 = string | number;
const numberOf = (value: Int8): number => Number(value);
const numberOrNull = (value: Int8 | null): number | null => (value === null ? null : Number(value));

// --- auctions -----------------------------------------------------------------

export type AuctionStatus = 'open' | 'closed' | 'cancelled';

interface AuctionRow {
  id: string;
  seller_id: string | null;
  title: string;
  collection: string | null;
  currency: string;
  start_price: Int8;
  reserve_price: Int8;
  buy_now_price: Int8 | null;
  increment_rule: IncrementRule;
  soft_close_ms: number;
  starts_at: Date;
  ends_at: Date;
  hard_close_at: Date;
  promoter: PromoterSettings | null;
  handle_salt: string;
  status: AuctionStatus;
  closed_at: Date | null;
  outcome: 'sold' | 'unsold' | null;
  winner_id: string | null;
  final_price: Int8 | null;
  house_bonus: Int8 | null;
  settled_at: Date | null;
  announced_at: Date | null;
}

const AUCTION_COLUMNS = `id, seller_id, title, collection, currency, start_price, reserve_price, buy_now_price, increment_rule,
  soft_close_ms, starts_at, ends_at, hard_close_at, promoter, handle_salt, status, closed_at, outcome, winner_id, final_price, house_bonus, settled_at, announced_at`;

/** An auction as Postgres records it: its terms, and its outcome once settled. */
export interface AuctionRecord {
  id: string;
  sellerId: string | null;
  title: string;
  collection: string | null;
  currency: string;
  startPrice: number;
  reservePrice: number;
  buyNowPrice: number | null;
  increment: IncrementRule;
  softCloseMs: number;
  startsAt: Date;
  endsAt: Date;
  hardCloseAt: Date;
  promoter: PromoterSettings | null;
  /** Salt of the anonymous bidder handles; never shown. */
  handleSalt: string;
  status: AuctionStatus;
  closedAt: Date | null;
  /** Set by settlement: null until the close is settled. */
  outcome: 'sold' | 'unsold' | null;
  winnerId: string | null;
  finalPrice: number | null;
  /** What the house paid of the final price (promoter doublings). */
  houseBonus: number | null;
  /** When its close was settled (null: not yet). */
  settledAt: Date | null;
  /** When its auction.created event was written with its first load into Redis (null: not yet). */
  announcedAt: Date | null;
}

function auctionOf(row: AuctionRow): AuctionRecord {
  return {
    id: row.id, sellerId: row.seller_id, title: row.title, collection: row.collection, currency: row.currency, startPrice: numberOf(row.start_price),
    reservePrice: numberOf(row.reserve_price), buyNowPrice: numberOrNull(row.buy_now_price), increment: row.increment_rule, softCloseMs: row.soft_close_ms,
    startsAt: row.starts_at, endsAt: row.ends_at, hardCloseAt: row.hard_close_at, promoter: row.promoter, handleSalt: row.handle_salt, status: row.status,
    closedAt: row.closed_at, outcome: row.outcome, winnerId: row.winner_id, finalPrice: numberOrNull(row.final_price), houseBonus: numberOrNull(row.house_bonus),
    settledAt: row.settled_at, announcedAt: row.announced_at,
  };
}

async function queryAuctions(db: Db, sql: string, values: unknown[]): Promise<AuctionRecord[]> {
  const { rows } = await db.query<AuctionRow>(sql, values);
  return rows.map(auctionOf);
}

/** A new auction's terms, as it is inserted (open, not settled). */
export type NewAuctionRecord = Pick<AuctionRecord,
  'id' | 'sellerId' | 'title' | 'collection' | 'currency' | 'startPrice' | 'reservePrice' | 'buyNowPrice' | 'increment' | 'softCloseMs' | 'startsAt' | 'endsAt'
  | 'hardCloseAt' | 'promoter' | 'handleSalt'>;

export async function insertAuction(db: Db, auction: NewAuctionRecord): Promise<AuctionRecord> {
  const [inserted] = await queryAuctions(
    db,
    `INSERT INTO auctions (id, seller_id, title, collection, currency, start_price, reserve_price, buy_now_price, increment_rule,
       soft_close_ms, starts_at, ends_at, hard_close_at, promoter, handle_salt)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING ${AUCTION_COLUMNS}`,
    [auction.id, auction.sellerId, auction.title, auction.collection, auction.currency, auction.startPrice, auction.reservePrice, auction.buyNowPrice,
      JSON.stringify(auction.increment), auction.softCloseMs, auction.startsAt, auction.endsAt, auction.hardCloseAt,
      auction.promoter ? JSON.stringify(auction.promoter) : null, auction.handleSalt],
  );
  return inserted!;
}

/** Records that the auction's auction.created event is written (in its outbox). */
export async function recordAnnounced(db: Db, auctionId: string): Promise<void> {
  await db.query('UPDATE auctions SET announced_at = now() WHERE id = $1 AND announced_at IS NULL', [auctionId]);
}

export async function findAuction(db: Db, auctionId: string): Promise<AuctionRecord | undefined> {
  const [auction] = await queryAuctions(db, `SELECT ${AUCTION_COLUMNS} FROM auctions WHERE id = $1`, [auctionId]);
  return auction;
}

/** Open auctions by id, after `after` (a page of at most `limit`). */
export function openAuctionsAfter(db: Db, after: string | undefined, limit: number): Promise<AuctionRecord[]> {
  return queryAuctions(db, `SELECT ${AUCTION_COLUMNS} FROM auctions WHERE status = 'open' AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $1`, [limit, after ?? null]);
}

/** The `limit` open auctions that started last (the operators' board). */
export function recentOpenAuctions(db: Db, limit: number): Promise<AuctionRecord[]> {
  return queryAuctions(db, `SELECT ${AUCTION_COLUMNS} FROM auctions WHERE status = 'open' AND starts_at <= now() ORDER BY starts_at DESC, id DESC LIMIT $1`, [limit]);
}

export function openAuctions(db: Db): Promise<AuctionRecord[]> {
  return queryAuctions(db, `SELECT ${AUCTION_COLUMNS} FROM auctions WHERE status = 'open'`, []);
}

/** The auctions among these ids that exist. */
export function findAuctions(db: Db, auctionIds: string[]): Promise<AuctionRecord[]> {
  return queryAuctions(db, `SELECT ${AUCTION_COLUMNS} FROM auctions WHERE id = ANY($1::text[]) ORDER BY id`, [auctionIds]);
}

export async function openAuctionIds(db: Db): Promise<string[]> {
  const { rows } = await db.query<Pick<AuctionRow, 'id'>>(`SELECT id FROM auctions WHERE status = 'open'`);
  return rows.map((row) => row.id);
}

export async function promoterOf(db: Db, auctionId: string): Promise<PromoterSettings | null> {
  const { rows } = await db.query<Pick<AuctionRow, 'promoter'>>('SELECT promoter FROM auctions WHERE id = $1', [auctionId]);
  return rows[0]?.promoter ?? null;
}

/** Marks an auction that is not closed cancelled (an operator's or seller's request); undefined when it is closed. */
export async function cancelAuction(db: Db, auctionId: string): Promise<AuctionRecord | undefined> {
  const [cancelled] = await queryAuctions(
    db,
    `UPDATE auctions SET status = 'cancelled', closed_at = coalesce(closed_at, now()) WHERE id = $1 AND status <> 'closed' RETURNING ${AUCTION_COLUMNS}`,
    [auctionId],
  );
  return cancelled;
}

/**
 * Locks the auctions (in id order, so two batches never deadlock). FOR
 * UPDATE, not a weaker lock: it also waits for (and is waited for by) the
 * key-share lock another batch's log insert takes on the same auction, so a
 * late bid of a settling auction is seen by one side or the other.
 */
export function lockAuctions(tx: PoolClient, auctionIds: string[]): Promise<AuctionRecord[]> {
  return queryAuctions(tx, `SELECT ${AUCTION_COLUMNS} FROM auctions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`, [auctionIds]);
}

/** Records a settled close; false when another settlement got there first. */
export async function recordOutcome(
  tx: PoolClient,
  auctionId: string,
  outcome: { closedAt: number; winnerId: string | null; finalPrice: number | null; houseBonus: number | null },
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE auctions SET status = 'closed', closed_at = to_timestamp($2 / 1000.0), outcome = $3, winner_id = $4, final_price = $5,
            house_bonus = $6, settled_at = now()
      WHERE id = $1 AND outcome IS NULL`,
    [auctionId, outcome.closedAt, outcome.winnerId ? 'sold' : 'unsold', outcome.winnerId, outcome.finalPrice, outcome.houseBonus],
  );
  return rowCount === 1;
}

/** Records a cancellation the log reports, unless the auction was settled or is no longer open. */
export async function recordCancellation(tx: PoolClient, auctionId: string, cancelledAt: number): Promise<void> {
  await tx.query(
    `UPDATE auctions SET status = 'cancelled', closed_at = to_timestamp($2 / 1000.0) WHERE id = $1 AND status = 'open' AND outcome IS NULL`,
    [auctionId, cancelledAt],
  );
}

// --- auction_events -------------------------------------------------------

interface AuctionEventRow {
  event_id: string;
  auction_id: string;
  seq: number;
  type: LoggedAuctionEventType;
  bid_id: string | null;
  buyer_id: string | null;
  payload: Record<string, unknown>;
  occurred_at: Date;
  recorded_at: Date;
}

/** An event of the log, as a rebuild replays it. */
export type LoggedEvent = Pick<AuctionEventRow, 'seq' | 'type' | 'payload'>;

const bidOf = (event: AuctionLogEvent): string | null =>
  event.type === 'bid_placed' || event.type === 'bid_retracted' || event.type === 'bid_doubled' ? event.data.bidId
    : event.type === 'extended' ? event.data.byBid : null;
const buyerOf = (event: AuctionLogEvent): string | null =>
  event.type === 'bid_placed' || event.type === 'bid_retracted' || event.type === 'bid_doubled' ? event.data.buyerId : null;

/** Appends the events to the log; returns the ids written now (not already there). */
export async function appendToLog(tx: PoolClient, events: AuctionLogEvent[]): Promise<Set<string>> {
  const { rows } = await tx.query<Pick<AuctionEventRow, 'event_id'>>(
    `INSERT INTO auction_events (event_id, auction_id, seq, type, bid_id, buyer_id, payload, occurred_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::timestamptz[])
     ON CONFLICT DO NOTHING
     RETURNING event_id`,
    [
      events.map((e) => e.eventId), events.map((e) => e.auctionId), events.map((e) => e.seq), events.map((e) => e.type),
      events.map(bidOf), events.map(buyerOf), events.map((e) => JSON.stringify(e.data)), events.map((e) => new Date(e.time)),
    ],
  );
  return new Set(rows.map((row) => row.event_id));
}

/** The auction's log in seq order. */
export async function loggedEvents(db: Db, auctionId: string): Promise<LoggedEvent[]> {
  const { rows } = await db.query<LoggedEvent>('SELECT seq, type, payload FROM auction_events WHERE auction_id = $1 ORDER BY seq', [auctionId]);
  return rows;
}

/**
 * Everyone who bid on the auction, as far as the log knows: who placed a
 * bid, and who the close offered the lot to (which holds even when bids
 * are still on their way to the log).
 */
export async function biddersOf(db: Db, auctionId: string): Promise<string[]> {
  const { rows } = await db.query<{ buyer_id: string }>(
    `SELECT buyer_id FROM auction_events WHERE auction_id = $1 AND type = 'bid_placed' AND buyer_id IS NOT NULL
     UNION
     SELECT o ->> 'buyerId' FROM auction_events e, jsonb_array_elements(e.payload -> 'offers') AS o WHERE e.auction_id = $1 AND e.type = 'closed'
     ORDER BY 1`,
    [auctionId],
  );
  return rows.map((row) => row.buyer_id);
}

// --- auction_offers -------------------------------------------------------

interface AuctionOfferRow {
  auction_id: string;
  rank: number;
  buyer_id: string;
  bid_id: string;
  price: Int8;
  bonus: Int8;
  result: 'paid' | 'cannot_pay';
  decided_at: Date;
}

/** One bidder offered the lot at settlement, in rank order, and whether they paid. */
export interface OfferAttempt {
  rank: number;
  buyerId: string;
  bidId: string;
  price: number;
  bonus: number;
  result: 'paid' | 'cannot_pay';
}

export async function insertOffers(tx: PoolClient, auctionId: string, attempts: OfferAttempt[]): Promise<void> {
  await tx.query(
    `INSERT INTO auction_offers (auction_id, rank, buyer_id, bid_id, price, bonus, result)
     SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])`,
    [auctionId, attempts.map((a) => a.rank), attempts.map((a) => a.buyerId), attempts.map((a) => a.bidId), attempts.map((a) => a.price),
      attempts.map((a) => a.bonus), attempts.map((a) => a.result)],
  );
}

export async function offersOf(db: Db, auctionId: string): Promise<OfferAttempt[]> {
  const { rows } = await db.query<Omit<AuctionOfferRow, 'auction_id' | 'decided_at'>>(
    'SELECT rank, buyer_id, bid_id, price, bonus, result FROM auction_offers WHERE auction_id = $1 ORDER BY rank',
    [auctionId],
  );
  return rows.map((row) => ({
    rank: row.rank, buyerId: row.buyer_id, bidId: row.bid_id, price: numberOf(row.price), bonus: numberOf(row.bonus), result: row.result,
  }));
}

// --- wallets, ledger and users, as settling a close touches them ------------

interface WalletRow {
  user_id: string;
  currency: string;
  balance: Int8;
  updated_at: Date;
}

export interface WalletKey {
  userId: string;
  currency: string;
}

/** Locks the wallets that exist among `keys` (in key order, so two batches never deadlock); returns their balances. */
export async function lockWallets(tx: PoolClient, keys: WalletKey[]): Promise<(WalletKey & { balance: number })[]> {
  if (keys.length === 0) return [];
  const { rows } = await tx.query<Pick<WalletRow, 'user_id' | 'currency' | 'balance'>>(
    `SELECT w.user_id, w.currency, w.balance FROM wallets w
       JOIN unnest($1::text[], $2::text[]) AS k(user_id, currency) ON w.user_id = k.user_id AND w.currency = k.currency
      ORDER BY w.user_id, w.currency FOR UPDATE OF w`,
    [keys.map((key) => key.userId), keys.map((key) => key.currency)],
  );
  return rows.map((row) => ({ userId: row.user_id, currency: row.currency, balance: numberOf(row.balance) }));
}

/** Takes `amount` from the wallet; its CHECK (balance >= 0) is the last word, whatever the caller computed. */
export async function debitWallet(tx: PoolClient, wallet: WalletKey, amount: number): Promise<void> {
  await tx.query('UPDATE wallets SET balance = balance - $3, updated_at = now() WHERE user_id = $1 AND currency = $2', [wallet.userId, wallet.currency, amount]);
}

export interface LedgerEntry {
  ref: string;
  amount: number;
  kind: 'auction' | 'promotion';
}

/** Writes the user's ledger entries, each once (keyed by ref); returns how many were new. */
export async function insertLedgerEntries(tx: PoolClient, wallet: WalletKey, entries: LedgerEntry[]): Promise<number> {
  const { rowCount } = await tx.query(
    `INSERT INTO ledger_entries (ref, user_id, currency, amount, kind)
     SELECT r, $2, $3, a, k FROM unnest($1::text[], $4::bigint[], $5::text[]) AS t(r, a, k)
     ON CONFLICT (ref) DO NOTHING`,
    [entries.map((entry) => entry.ref), wallet.userId, wallet.currency, entries.map((entry) => entry.amount), entries.map((entry) => entry.kind)],
  );
  return rowCount ?? 0;
}

/** The users among `userIds` that are not deleted. */
export async function liveUsers(tx: PoolClient, userIds: string[]): Promise<Set<string>> {
  const { rows } = await tx.query<{ id: string }>('SELECT id FROM users WHERE id = ANY($1::text[]) AND deleted_at IS NULL', [userIds]);
  return new Set(rows.map((row) => row.id));
}
