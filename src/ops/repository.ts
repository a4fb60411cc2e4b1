/** All of the operators' SQL: the dead-letter archive (table dead_letters), reconciliation's reports (reconciliation_runs) and its wallet check. */
import type { Pool, PoolClient } from '../platform/db/pool.js';

type Db = Pool | PoolClient;

/** A row of `dead_letters`. */
interface DeadLetterRow {
  id: string;
  queue: string;
  message_id: string | null;
  type: string | null;
  content_type: string | null;
  body: Buffer;
  headers: Record<string, unknown>;
  last_error: string | null;
  dead_lettered_at: Date;
  archived_at: Date;
  replayed_at: Date | null;
}

export interface DeadLetterRecord {
  id: number;
  queue: string;
  messageId: string | null;
  type: string | null;
  contentType: string | null;
  body: Buffer;
  headers: Record<string, unknown>;
  lastError: string | null;
  deadLetteredAt: Date;
  archivedAt: Date;
  replayedAt: Date | null;
}

export type NewDeadLetter = Omit<DeadLetterRecord, 'id' | 'archivedAt' | 'replayedAt'> & { fingerprint: string };

const COLUMNS = 'id, queue, message_id, type, content_type, body, headers, last_error, dead_lettered_at, archived_at, replayed_at';
const recordOf = (r: DeadLetterRow): DeadLetterRecord => ({
  id: Number(r.id), queue: r.queue, messageId: r.message_id, type: r.type, contentType: r.content_type, body: r.body, headers: r.headers,
  lastError: r.last_error, deadLetteredAt: r.dead_lettered_at, archivedAt: r.archived_at, replayedAt: r.replayed_at,
});

/** Archives a dead letter; one already archived (the same fingerprint) is left as it is. */
export async function archiveDeadLetter(db: Db, d: NewDeadLetter): Promise<void> {
  await db.query(
    `INSERT INTO dead_letters (queue, fingerprint, message_id, type, content_type, body, headers, last_error, dead_lettered_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (fingerprint) DO NOTHING`,
    [d.queue, d.fingerprint, d.messageId, d.type, d.contentType, d.body, JSON.stringify(d.headers), d.lastError, d.deadLetteredAt],
  );
}

/** A queue's dead letters, newest first, after the cursor `before` (an id); `waiting` only those not replayed. */
export async function deadLettersOf(db: Db, queue: string, limit: number, before: number | undefined, waiting: boolean): Promise<DeadLetterRecord[]> {
  const { rows } = await db.query<DeadLetterRow>(
    `SELECT ${COLUMNS} FROM dead_letters WHERE queue = $1 AND ($2::bigint IS NULL OR id < $2) AND (NOT $3 OR replayed_at IS NULL)
      ORDER BY id DESC LIMIT $4`,
    [queue, before ?? null, waiting, limit],
  );
  return rows.map(recordOf);
}

export async function findDeadLetter(db: Db, queue: string, id: number): Promise<DeadLetterRecord | undefined> {
  const { rows } = await db.query<DeadLetterRow>(`SELECT ${COLUMNS} FROM dead_letters WHERE queue = $1 AND id = $2`, [queue, id]);
  return rows[0] && recordOf(rows[0]);
}

/** Locks waiting dead letters of a queue (oldest first; one when `id` is given), skipping those another replay holds. */
export async function lockWaiting(tx: PoolClient, queue: string, limit: number, id?: number): Promise<DeadLetterRecord[]> {
  const { rows } = await tx.query<DeadLetterRow>(
    `SELECT ${COLUMNS} FROM dead_letters WHERE queue = $1 AND replayed_at IS NULL AND ($2::bigint IS NULL OR id = $2)
      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED`,
    [queue, id ?? null, limit],
  );
  return rows.map(recordOf);
}

export async function recordReplayed(tx: PoolClient, ids: number[]): Promise<void> {
  await tx.query('UPDATE dead_letters SET replayed_at = now() WHERE id = ANY($1::bigint[])', [ids]);
}

/** Deletes a queue's waiting dead letters (at most those with ids up to `upTo`, what the operator saw); how many. */
export async function purgeWaiting(db: Db, queue: string, upTo: number | undefined): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM dead_letters WHERE queue = $1 AND replayed_at IS NULL AND ($2::bigint IS NULL OR id <= $2)', [queue, upTo ?? null]);
  return rowCount ?? 0;
}

/** Per queue: dead letters waiting, replayed, and the time the oldest waiting one was dead-lettered. */
export async function deadLetterCounts(db: Db): Promise<{ queue: string; waiting: number; replayed: number; oldestWaiting: Date | null }[]> {
  const { rows } = await db.query<{ queue: string; waiting: number; replayed: number; oldest: Date | null }>(
    `SELECT queue, count(*) FILTER (WHERE replayed_at IS NULL)::int AS waiting, count(replayed_at)::int AS replayed,
            min(dead_lettered_at) FILTER (WHERE replayed_at IS NULL) AS oldest
       FROM dead_letters GROUP BY queue ORDER BY queue`,
  );
  return rows.map((r) => ({ queue: r.queue, waiting: r.waiting, replayed: r.replayed, oldestWaiting: r.oldest }));
}

// ------------------------------------------------------------ reconciliation

/** The advisory lock one reconciliation holds while it runs (any node, any role): two never run at once. */
const RECONCILIATION_LOCK = 0x5354_4d50_5243; // "STMPRC"

/** True when this session took the lock; false when another holds it. */
export async function tryLockReconciliation(client: PoolClient): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [RECONCILIATION_LOCK]);
  return rows[0]!.locked;
}

export async function unlockReconciliation(client: PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1)', [RECONCILIATION_LOCK]);
}

/** A wallet whose balance is not the sum of its ledger entries (either side may be missing). */
export interface WalletOffLedger {
  userId: string;
  currency: string;
  /** null: entries without a wallet row. */
  balance: number | null;
  ledger: number;
  entries: number;
}

/**
 * Wallets whose balance differs from the sum of their ledger entries, at
 * most `limit` (in key order), and how many there are. One statement, so
 * one snapshot: every writer changes a balance and writes its entry in one
 * transaction, and a snapshot sees both or neither.
 */
export async function walletsOffLedger(db: Db, limit: number): Promise<{ wallets: WalletOffLedger[]; total: number; checked: number }> {
  const { rows } = await db.query<{ user_id: string; currency: string; balance: number | null; ledger: number; entries: number; total: number }>(
    `WITH l AS (SELECT user_id, currency, sum(amount)::bigint AS total, count(*)::int AS entries FROM ledger_entries GROUP BY user_id, currency)
     SELECT coalesce(w.user_id, l.user_id) AS user_id, coalesce(w.currency, l.currency) AS currency, w.balance,
            coalesce(l.total, 0)::bigint AS ledger, coalesce(l.entries, 0) AS entries, (count(*) OVER ())::int AS total
       FROM wallets w FULL JOIN l ON l.user_id = w.user_id AND l.currency = w.currency
      WHERE coalesce(w.balance, 0) <> coalesce(l.total, 0)
      ORDER BY 1, 2 LIMIT $1`,
    [limit],
  );
  const { rows: [count] } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM wallets');
  return {
    wallets: rows.map((r) => ({ userId: r.user_id, currency: r.currency, balance: r.balance === null ? null : Number(r.balance), ledger: Number(r.ledger), entries: r.entries })),
    total: rows[0]?.total ?? 0, checked: count!.n,
  };
}

/** A stored report, as `Reconciliation` made it. */
export interface StoredRun {
  id: number;
  report: Record<string, unknown>;
}

/** Most reports kept: older ones are deleted as a new one is stored. */
export const KEPT_RUNS = 500;

export async function storeRun(db: Db, run: { trigger: string; startedAt: Date; finishedAt: Date; findings: number; repaired: number; report: Record<string, unknown> }): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO reconciliation_runs (trigger, started_at, finished_at, findings, repaired, report) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [run.trigger, run.startedAt, run.finishedAt, run.findings, run.repaired, JSON.stringify(run.report)],
  );
  const id = Number(rows[0]!.id);
  await db.query('DELETE FROM reconciliation_runs WHERE id <= $1', [id - KEPT_RUNS]);
  return id;
}

export async function latestRun(db: Db): Promise<StoredRun | undefined> {
  const { rows } = await db.query<{ id: string; report: Record<string, unknown> }>('SELECT id, report FROM reconciliation_runs ORDER BY id DESC LIMIT 1');
  return rows[0] && { id: Number(rows[0].id), report: rows[0].report };
}
