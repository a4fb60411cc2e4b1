/**
 * Bulk writes with COPY ... FROM STDIN (text format). COPY skips the planner
 * and the executor's per-row work that INSERT pays, which is why settlement
 * and the seed use it; a row that breaks a unique key still aborts the whole
 * COPY, so it keeps INSERT's guarantees.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import copy from 'pg-copy-streams';
import type { PoolClient } from './pool.js';

const TSV_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value as COPY's text format reads it: null as \N, and backslash, tab and line breaks escaped. */
export function tsv(v: string | null): string {
  if (v === null) return '\\N';
  return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (ch) => TSV_ESCAPES[ch]!) : v;
}

/**
 * Streams rows (COPY text format: tab-separated, one line each, values
 * through tsv()) into the table the statement names, on the caller's client
 * (inside its transaction, if it has one). `rows` is one text, or chunks of
 * it produced as the stream asks for them.
 */
export async function copyInto(client: PoolClient, sql: string, rows: string | Iterable<string> | AsyncIterable<string>): Promise<void> {
  await pipeline(Readable.from(typeof rows === 'string' ? [rows] : rows), client.query(copy.from(sql)));
}
