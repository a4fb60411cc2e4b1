/**
 * Reconciliation: does Redis still agree with Postgres, and does every
 * wallet agree with its ledger? One run checks, in turn:
 *
 *   sales     each sale Redis knows: its counters against its orders
 *             (src/ops/reconcile-sales.ts);
 *   stuck     accepted purchases older than STAMPEDE_RECONCILE_STUCK_AFTER_MS
 *             that are neither settled nor failed (same file: they are the
 *             sales' pending purchases);
 *   auctions  each open auction, and each one Redis still holds: its live
 *             state against its event log (src/ops/reconcile-auctions.ts);
 *   wallets   each balance against the sum of its ledger entries.
 *
 * It repairs only what it can prove safe (each file says how) and reports
 * the rest loudly: a log line at error level per finding left unrepaired.
 * The report is stored in Postgres, so every api node serves the latest
 * (GET /v1/ops/reconciliation) and its metrics. One run at a time, across
 * every node and role (a Postgres advisory lock).
 */
import type { Pool, PoolClient } from '../platform/db/pool.js';
import { createRedis, type Redis, type RedisTarget } from '../platform/redis/client.js';
import { AppError } from '../platform/errors.js';
import type { Logger } from '../platform/log.js';
import { OUTBOX_REGISTRY } from '../platform/messaging/outbox.js';
import { saleKeys, saleOfOutbox } from '../sales/keys.js';
import { auctionOfOutbox } from '../auctions/keys.js';
import { findAuctions, openAuctionIds } from '../auctions/repository.js';
import { CHECKS, type CheckName, type CheckResult, type Finding } from './findings.js';
import { reconcileSale } from './reconcile-sales.js';
import { reconcileAuction } from './reconcile-auctions.js';
import { latestRun, storeRun, tryLockReconciliation, unlockReconciliation, walletsOffLedger } from './repository.js';

/** Most sales, and most auctions, one run looks at (the rest are counted as skipped). */
export const MAX_SUBJECTS = 10_000;
/** Most findings of one check a report keeps (all are counted, and logged). */
export const MAX_FINDINGS_KEPT = 200;

export type Trigger = 'cli' | 'schedule' | 'api';

export interface CheckReport {
  checked: number;
  /** Every finding, including those beyond `findings` (which keeps at most MAX_FINDINGS_KEPT). */
  found: number;
  repaired: number;
  findings: Finding[];
  skipped: { subject: string; why: string }[];
}

export interface ReconciliationReport {
  id: number;
  trigger: Trigger;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Findings of every check, repaired or not. */
  findings: number;
  repaired: number;
  /** Findings left as they were: what an operator must look at. */
  unrepaired: number;
  checks: Record<CheckName, CheckReport>;
}

export interface ReconciliationDeps {
  pool: Pool;
  redisTarget: RedisTarget;
  log: Logger;
  stuckAfterMs: number;
}

export class Reconciliation {
  /** Since start, for the metrics of the role that runs it: runs done, repairs made per check. */
  runs = 0;
  readonly repairs = new Map<CheckName, number>(CHECKS.map((c) => [c, 0]));

  constructor(private readonly deps: ReconciliationDeps) {}

  /** Runs every check, stores the report and returns it. CONFLICT when another run holds the lock. */
  async run(trigger: Trigger): Promise<ReconciliationReport> {
    const db = await this.deps.pool.connect();
    try {
      if (!(await tryLockReconciliation(db))) throw new AppError('CONFLICT', 'a reconciliation is running already; its report will be the latest');
      try {
        return await this.runLocked(db, trigger);
      } finally {
        await unlockReconciliation(db);
      }
    } finally {
      db.release();
    }
  }

  async latest(): Promise<ReconciliationReport | undefined> {
    const stored = await latestRun(this.deps.pool);
    return stored && ({ ...stored.report, id: stored.id } as unknown as ReconciliationReport);
  }

  private async runLocked(db: PoolClient, trigger: Trigger): Promise<ReconciliationReport> {
    const startedAt = new Date();
    // A connection of its own: the repairs WATCH keys, and a WATCH belongs to its connection.
    const redis = createRedis(this.deps.redisTarget, { autoPipelining: false, name: 'stampede-reconcile' });
    try {
      const outboxes = await redis.smembers(OUTBOX_REGISTRY);
      const sales = await this.checkSales(db, redis, outboxes);
      const auctions = await this.checkAuctions(db, redis, outboxes);
      const wallets = await this.checkWallets(db);
      const checks = { sales: sales.sales, stuck: sales.stuck, auctions, wallets };
      const finishedAt = new Date();
      const found = CHECKS.reduce((n, c) => n + checks[c].found, 0);
      const repaired = CHECKS.reduce((n, c) => n + checks[c].repaired, 0);
      const report: Omit<ReconciliationReport, 'id'> = {
        trigger, startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), durationMs: finishedAt.getTime() - startedAt.getTime(),
        findings: found, repaired, unrepaired: found - repaired, checks,
      };
      const id = await storeRun(db, { trigger, startedAt, finishedAt, findings: found, repaired, report: report as unknown as Record<string, unknown> });
      this.runs += 1;
      for (const c of CHECKS) this.repairs.set(c, this.repairs.get(c)! + checks[c].repaired);
      const summary = { runId: id, trigger, durationMs: report.durationMs, findings: found, repaired, unrepaired: found - repaired };
      if (found - repaired > 0) this.deps.log.error(summary, 'reconciliation: findings left unrepaired');
      else this.deps.log.info(summary, 'reconciliation done');
      return { id, ...report };
    } finally {
      await redis.quit().catch(() => redis.disconnect());
    }
  }

  private async checkSales(db: PoolClient, redis: Redis, outboxes: string[]): Promise<{ sales: CheckReport; stuck: CheckReport }> {
    // A sharded sale's shards 1.. (`<id>:<j>`) are that sale's: it is one subject.
    const ids = outboxes.map(saleOfOutbox).filter((id): id is string => id !== undefined && !id.includes(':')).sort();
    const sales = this.newCheck();
    const stuck = this.newCheck();
    for (const saleId of ids.slice(0, MAX_SUBJECTS)) {
      // Its counters live in several slots and move between them (src/sales/shards.ts): not compared with Postgres yet.
      if (Number((await redis.hget(saleKeys.sale(saleId), 'shards')) ?? 1) > 1) {
        sales.skipped.push({ subject: saleId, why: 'sharded: its counters are split across shards, which reconciliation does not compare yet' });
        continue;
      }
      const { findings, skipped } = await reconcileSale(db, redis, saleId, { stuckAfterMs: this.deps.stuckAfterMs });
      if (skipped) sales.skipped.push(skipped);
      else sales.checked += 1;
      for (const f of findings) this.record(f.check === 'stuck' ? stuck : sales, f);
    }
    stuck.checked = sales.checked;
    this.skipBeyondLimit(sales, ids);
    return { sales, stuck };
  }

  private async checkAuctions(db: PoolClient, redis: Redis, outboxes: string[]): Promise<CheckReport> {
    // Open ones (Redis may have lost them) and those Redis still holds (closed ones too: reads show their price and leader).
    const ids = [...new Set([...(await openAuctionIds(db)), ...outboxes.map(auctionOfOutbox).filter((id): id is string => id !== undefined)])].sort();
    const check = this.newCheck();
    for (const auction of await findAuctions(db, ids.slice(0, MAX_SUBJECTS))) {
      for (const f of await reconcileAuction(db, redis, auction)) this.record(check, f);
      check.checked += 1;
    }
    this.skipBeyondLimit(check, ids);
    return check;
  }

  /** No repair: which side is wrong is not knowable from the two alone, and a balance moves money. */
  private async checkWallets(db: PoolClient): Promise<CheckReport> {
    const check = this.newCheck();
    const { wallets, total, checked } = await walletsOffLedger(db, MAX_FINDINGS_KEPT);
    check.checked = checked;
    for (const w of wallets) {
      this.record(check, {
        check: 'wallets', subject: `${w.userId}/${w.currency}`, code: w.balance === null ? 'ledger_without_wallet' : 'balance_differs',
        message: w.balance === null
          ? `${w.userId} has ${w.entries} ledger entries in ${w.currency} adding up to ${w.ledger}, and no wallet`
          : `wallet ${w.userId}/${w.currency} holds ${w.balance}, its ${w.entries} ledger entries add up to ${w.ledger}`,
        details: { userId: w.userId, currency: w.currency, balance: w.balance, ledger: w.ledger, entries: w.entries, difference: (w.balance ?? 0) - w.ledger },
        repaired: false, action: 'none: money is never moved by reconciliation; find the entry or the update that is missing',
      });
    }
    // Beyond what the report keeps, counted (each was not logged one by one: the count is).
    check.found += total - wallets.length;
    if (total > wallets.length) this.deps.log.error({ check: 'wallets', more: total - wallets.length }, 'reconciliation: more wallets off their ledger than the report keeps');
    return check;
  }

  private newCheck(): CheckReport {
    return { checked: 0, found: 0, repaired: 0, findings: [], skipped: [] };
  }

  private record(check: CheckReport, f: Finding): void {
    check.found += 1;
    if (f.repaired) check.repaired += 1;
    if (check.findings.length < MAX_FINDINGS_KEPT) check.findings.push(f);
    const fields = { check: f.check, subject: f.subject, code: f.code, details: f.details, action: f.action };
    if (f.repaired) this.deps.log.warn(fields, `reconciliation repaired: ${f.message}`);
    else this.deps.log.error(fields, `reconciliation found: ${f.message}`);
  }

  private skipBeyondLimit(check: CheckReport, ids: string[]): void {
    if (ids.length > MAX_SUBJECTS) check.skipped.push({ subject: `${ids.length - MAX_SUBJECTS} more`, why: `beyond the ${MAX_SUBJECTS.toLocaleString('en')} one run looks at` });
  }
}

/** Runs reconciliation every `everyMs` (the scheduler role); 0: never. A run that fails is logged, and the next one comes as usual. */
export class ReconciliationSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly reconciliation: Reconciliation, private readonly everyMs: number, private readonly log: Logger) {}

  start(): void {
    if (this.everyMs === 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.reconciliation.run('schedule').catch((err: unknown) => {
        if (err instanceof AppError && err.code === 'CONFLICT') return; // another node's run: its report serves
        this.log.error({ err }, 'reconciliation: the scheduled run failed');
      }).finally(() => (this.running = undefined));
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}

/** The report as an operator reads it in a terminal. */
export function formatReport(r: ReconciliationReport): string {
  const lines = [
    `reconciliation #${r.id} (${r.trigger}) at ${r.startedAt}, ${r.durationMs} ms: ` +
      (r.findings === 0 ? 'nothing found' : `${r.findings} finding(s), ${r.repaired} repaired, ${r.unrepaired} left`),
  ];
  for (const name of CHECKS) {
    const c = r.checks[name];
    lines.push(`  ${name.padEnd(8)} ${c.checked} checked, ${c.found} found, ${c.repaired} repaired${c.skipped.length ? `, ${c.skipped.length} skipped` : ''}`);
    for (const f of c.findings) lines.push(`    ${f.repaired ? 'REPAIRED' : 'FOUND   '} ${f.code} ${f.subject}: ${f.message}`, `             ${f.action}`);
    for (const s of c.skipped) lines.push(`    skipped  ${s.subject}: ${s.why}`);
  }
  return lines.join('\n') + '\n';
}
