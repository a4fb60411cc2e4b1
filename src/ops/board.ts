/**
 * The operators' live board: one snapshot of the open sales and auctions,
 * the queues, the outboxes, the dead letters and each role's health, built
 * once per interval by each api node for everyone watching it (nothing is
 * read while nobody watches). Rates are differences between consecutive
 * snapshots: decisions from every api node's tally (src/platform/redis/tally.ts),
 * units taken from the sale's Redis counters, bids from the auction's count,
 * queue rates from RabbitMQ's management API.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/log.js';
import { Outcome } from '../platform/redis/outcomes.js';
import { OutcomeTally } from '../platform/redis/tally.js';
import type { Sales } from '../sales/sales.js';
import { saleKeys } from '../sales/keys.js';
import type { Auctions } from '../auctions/auctions.js';
import { auctionKeys } from '../auctions/keys.js';
import type { OpsView, OutboxStat, QueueStat } from './queues.js';
import type { DeadLetters } from './dead-letters.js';
import type { BrokerRates } from './broker-rates.js';
import { roleHealth, type RoleHealth } from './heartbeats.js';
import type { ReconciliationReport } from './reconciliation.js';

/** The most sales and auctions one board shows: the open ones that started last. */
export const BOARD_ITEMS = 50;
/** The latest reconciliation report is read again at most this often (it changes every few minutes). */
const RECONCILIATION_READ_MS = 5_000;
/** Rates over less time than this are too noisy: the previous ones are shown again. */
const MIN_RATE_WINDOW_MS = 500;

type ByOutcome = Record<string, number>;

export interface BoardSale {
  id: string;
  name: string;
  currency: string;
  unitPrice: number;
  status: string;
  startsAt: string;
  endsAt: string;
  stock: number;
  available: number;
  reserved: number;
  sold: number;
  /** Purchase decisions so far, by outcome (every api node's). */
  decisions: ByOutcome;
  /** The same, per second over the last interval. */
  perSecond: ByOutcome;
  /** Units taken per second (reserved or sold) over the last interval. */
  unitsPerSecond: number;
  /** At that rate, seconds until no unit is left (null: not selling, or sold out). */
  soldOutInSeconds: number | null;
}

export interface BoardAuction {
  id: string;
  title: string;
  currency: string;
  status: string;
  price: number | null;
  nextMinimumBid: number;
  bidCount: number;
  bidsPerSecond: number;
  /** Bid decisions so far, by outcome (every api node's). */
  decisions: ByOutcome;
  leader: string | null;
  endsAt: string;
  /** How far soft closes moved the end past the one scheduled. */
  extendedSeconds: number;
}

export interface BoardQueue extends QueueStat {
  /** Messages per second in and out (RabbitMQ's management API); null when it cannot be read. */
  inPerSecond: number | null;
  outPerSecond: number | null;
}

export interface BoardSnapshot {
  at: string;
  sales: BoardSale[];
  auctions: BoardAuction[];
  queues: BoardQueue[];
  outboxes: OutboxStat[];
  outboxBacklog: number;
  deadLetters: { total: number; queues: { queue: string; waiting: number; unarchived: number; oldestWaiting: string | null }[] };
  roles: RoleHealth[];
  /** The latest reconciliation run, in short (GET /v1/ops/reconciliation has its findings); null before the first. */
  reconciliation: ReconciliationSummary | null;
  /** Parts that could not be read this time, and why (the rest is shown). */
  problems: string[];
}

export interface ReconciliationSummary {
  id: number;
  trigger: string;
  finishedAt: string;
  durationMs: number;
  findings: number;
  repaired: number;
  unrepaired: number;
  checks: Record<string, { checked: number; found: number; repaired: number; skipped: number }>;
}

export interface BoardDeps {
  redis: Redis;
  sales: Sales;
  auctions: Auctions;
  ops: OpsView;
  deadLetters: DeadLetters;
  brokerRates: BrokerRates;
  reconciliation: { latest(): Promise<ReconciliationReport | undefined> };
  log: Logger;
  everyMs: number;
}

const outcomeName = (code: number): string => Outcome[code] ?? String(code);
const byOutcome = (counts: Map<number, number>): ByOutcome => Object.fromEntries([...counts].map(([code, n]) => [outcomeName(code), n]));

interface Previous {
  at: number;
  sales: Map<string, { taken: number; decisions: Map<number, number>; perSecond: ByOutcome; unitsPerSecond: number }>;
  auctions: Map<string, { bidCount: number; bidsPerSecond: number }>;
}

type Watcher = (json: string) => void;

export class OpsBoard {
  private previous: Previous = { at: 0, sales: new Map(), auctions: new Map() };
  private readonly watchers = new Set<Watcher>();
  private timer: NodeJS.Timeout | undefined;
  private building = false;
  private failing = false;
  private reconciled: { readAt: number; summary: ReconciliationSummary | null } = { readAt: 0, summary: null };

  constructor(private readonly d: BoardDeps) {}

  private async reconciliation(): Promise<ReconciliationSummary | null> {
    if (Date.now() - this.reconciled.readAt < RECONCILIATION_READ_MS) return this.reconciled.summary;
    const r = await this.d.reconciliation.latest();
    const summary = r ? {
      id: r.id, trigger: r.trigger, finishedAt: r.finishedAt, durationMs: r.durationMs, findings: r.findings, repaired: r.repaired, unrepaired: r.unrepaired,
      checks: Object.fromEntries(Object.entries(r.checks).map(([name, c]) => [name, { checked: c.checked, found: c.found, repaired: c.repaired, skipped: c.skipped.length }])),
    } : null;
    this.reconciled = { readAt: Date.now(), summary };
    return summary;
  }

  /** Sends `watcher` a snapshot (JSON) every interval, the first at once, until the returned function is called. */
  watch(watcher: Watcher): () => void {
    this.watchers.add(watcher);
    this.timer ??= setInterval(() => void this.broadcast(), this.d.everyMs);
    void this.snapshot().then((s) => this.watchers.has(watcher) && watcher(JSON.stringify(s)), () => undefined);
    return () => {
      this.watchers.delete(watcher);
      if (this.watchers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  get watching(): number {
    return this.watchers.size;
  }

  private async broadcast(): Promise<void> {
    if (this.building) return; // the last one is still being read: skip a beat rather than pile up
    this.building = true;
    try {
      const json = JSON.stringify(await this.snapshot());
      for (const w of this.watchers) w(json);
      if (this.failing) this.d.log.info('ops board: snapshots again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.d.log.error({ err }, 'ops board: could not build a snapshot');
      this.failing = true;
    } finally {
      this.building = false;
    }
  }

  async snapshot(): Promise<BoardSnapshot> {
    const problems: string[] = [];
    const part = async <T>(name: string, read: () => Promise<T>, none: T): Promise<T> => {
      try {
        return await read();
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`);
        return none;
      }
    };
    const [sales, auctions, broker, rates, roles, reconciliation] = await Promise.all([
      part('sales', () => this.d.sales.recentOpen(BOARD_ITEMS), []),
      part('auctions', () => this.d.auctions.recentWithSchedule(BOARD_ITEMS), []),
      part('queues', () => this.d.ops.queues(), { queues: [], deadLetters: 0, outboxes: [], outboxBacklog: 0 }),
      this.d.brokerRates.read(),
      part('roles', () => roleHealth(this.d.redis), []),
      part('reconciliation', () => this.reconciliation(), this.reconciled.summary),
    ]);
    const [saleTallies, auctionTallies, deadLetters] = await Promise.all([
      part('sale decisions', () => OutcomeTally.read(this.d.redis, sales.map((s) => saleKeys.outcomes(s.id))), []),
      part('bid decisions', () => OutcomeTally.read(this.d.redis, auctions.map((a) => auctionKeys.outcomes(a.view.id))), []),
      part('dead letters', () => this.d.deadLetters.overview(broker.queues), []),
    ]);
    if (!rates && broker.queues.length > 0) problems.push('queue rates: the RabbitMQ management API cannot be read');

    const now = Date.now();
    const dt = (now - this.previous.at) / 1000;
    const fresh = this.previous.at > 0 && dt * 1000 >= MIN_RATE_WINDOW_MS;
    const next: Previous = { at: fresh || this.previous.at === 0 ? now : this.previous.at, sales: new Map(), auctions: new Map() };

    const boardSales = sales.map((sale, i): BoardSale => {
      const live = sale.live ?? { stock: sale.stock, available: sale.stock, reserved: 0, sold: 0 };
      const decisions = saleTallies[i] ?? new Map<number, number>();
      const taken = live.stock - live.available;
      const before = this.previous.sales.get(sale.id);
      let perSecond: ByOutcome = before?.perSecond ?? {};
      let unitsPerSecond = before?.unitsPerSecond ?? 0;
      if (fresh) {
        perSecond = {};
        for (const [code, n] of decisions) perSecond[outcomeName(code)] = Math.max(0, n - (before?.decisions.get(code) ?? 0)) / dt;
        unitsPerSecond = before ? Math.max(0, taken - before.taken) / dt : 0;
      }
      next.sales.set(sale.id, fresh || !before ? { taken, decisions, perSecond, unitsPerSecond } : before);
      return {
        id: sale.id, name: sale.name, currency: sale.currency, unitPrice: sale.unitPrice, status: sale.status, startsAt: sale.startsAt, endsAt: sale.endsAt,
        stock: live.stock, available: live.available, reserved: live.reserved, sold: live.sold,
        decisions: byOutcome(decisions), perSecond, unitsPerSecond,
        soldOutInSeconds: live.available > 0 && unitsPerSecond > 0 ? live.available / unitsPerSecond : null,
      };
    });
    const boardAuctions = auctions.map(({ view, scheduledEndsAt }, i): BoardAuction => {
      const before = this.previous.auctions.get(view.id);
      let bidsPerSecond = before?.bidsPerSecond ?? 0;
      if (fresh) bidsPerSecond = before ? Math.max(0, view.bidCount - before.bidCount) / dt : 0;
      next.auctions.set(view.id, fresh || !before ? { bidCount: view.bidCount, bidsPerSecond } : before);
      return {
        id: view.id, title: view.title, currency: view.currency, status: view.status, price: view.currentPrice, nextMinimumBid: view.nextMinimumBid,
        bidCount: view.bidCount, bidsPerSecond, decisions: byOutcome(auctionTallies[i] ?? new Map()), leader: view.leader, endsAt: view.endsAt,
        extendedSeconds: Math.max(0, Math.round((Date.parse(view.endsAt) - scheduledEndsAt) / 1000)),
      };
    });
    this.previous = next;
    return {
      at: new Date(now).toISOString(),
      sales: boardSales,
      auctions: boardAuctions,
      queues: broker.queues.map((q) => ({ ...q, inPerSecond: rates ? rates.get(q.queue)?.in ?? 0 : null, outPerSecond: rates ? rates.get(q.queue)?.out ?? 0 : null })),
      outboxes: broker.outboxes,
      outboxBacklog: broker.outboxBacklog,
      deadLetters: {
        total: deadLetters.reduce((n, d) => n + d.waiting + d.unarchived, 0),
        queues: deadLetters.map((d) => ({ queue: d.queue, waiting: d.waiting, unarchived: d.unarchived, oldestWaiting: d.oldestWaiting })),
      },
      roles,
      reconciliation,
      problems,
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.watchers.clear();
  }
}
