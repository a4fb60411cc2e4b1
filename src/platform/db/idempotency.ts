/**
 * Idempotency for operator and seller POSTs: the first request with a key
 * claims it, runs, and stores its answer; the same key and body replays that
 * answer; the same key with another body is a 422; a concurrent twin gets 409
 * while the first is still running.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
import type { Pool } from './pool.js';

export interface StoredAnswer {
  status: number;
  body: unknown;
}

export const requestHash = (body: unknown) => createHash('sha256').update(JSON.stringify(body ?? null)).digest('hex');

export async function withIdempotency(
  pool: Pool,
  scope: string,
  key: string,
  body: unknown,
  run: () => Promise<StoredAnswer>,
  /** What is stored for replays, when it must differ from the first answer (secrets shown once). */
  stored: (answer: StoredAnswer) => StoredAnswer = (a) => a,
): Promise<StoredAnswer & { replayed: boolean }> {
  const hash = requestHash(body);
  const claim = await pool.query(
    'INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
    [scope, key, hash],
  );
  if (claim.rowCount === 0) {
    const { rows } = await pool.query<{ request_hash: string; status: number | null; response: unknown }>(
      'SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2',
      [scope, key],
    );
    const row = rows[0];
    // No row: the first request failed and released the key between our claim and this read; a retry claims it.
    if (!row) throw new AppError('IDEMPOTENCY_IN_PROGRESS', undefined, undefined, { 'Retry-After': '1' });
    if (row.request_hash !== hash) throw new AppError('IDEMPOTENCY_KEY_REUSED');
    if (row.status === null) throw new AppError('IDEMPOTENCY_IN_PROGRESS', undefined, undefined, { 'Retry-After': '1' });
    return { status: row.status, body: row.response, replayed: true };
  }
  try {
    const answer = await run();
    const keep = stored(answer);
    await pool.query('UPDATE idempotency_keys SET status = $3, response = $4 WHERE scope = $1 AND key = $2', [
      scope, key, keep.status, JSON.stringify(keep.body),
    ]);
    return { ...answer, replayed: false };
  } catch (err) {
    // Nothing was created: release the key so a corrected retry can use it.
    await pool.query('DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2', [scope, key]).catch(() => {});
    throw err;
  }
}
