/**
 * Load-test fixtures: N buyers with funded wallets (bulk COPY into Postgres,
 * each credit a ledger entry like any other), a sale, and a tokens file the
 * load tools read (`userId token` per line). Every run creates new buyers
 * and a new sale, so it can be re-run at will.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import type { Pool } from '../platform/db/pool.js';
import { copyInto } from '../platform/db/copy.js';
import { newUserId } from '../platform/ids.js';
import { createBuyerTokens } from '../platform/auth/tokens.js';
import { Sales, type NewSale, type SaleView } from '../sales/sales.js';

export interface SeedOptions {
  buyers: number;
  currency: string;
  /** Minor units credited to every buyer. */
  funds: number;
  sale?: Partial<NewSale>;
  /** Where the tokens go; nothing is written when undefined. */
  tokensFile?: string;
  jwtSecret: string;
  tokenTtlSeconds: number;
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface SeedResult {
  sale: SaleView;
  buyerIds: string[];
  tokensFile?: string;
}

const CHUNK = 50_000;

async function copyRows(pool: Pool, sql: string, count: number, row: (i: number) => string, progress: (done: number) => void, from = 0): Promise<void> {
  const client = await pool.connect();
  try {
    let i = from;
    await copyInto(client, sql, (function* () {
      while (i < count) {
        const end = Math.min(count, i + CHUNK);
        let text = '';
        for (; i < end; i++) text += row(i);
        progress(i);
        yield text;
      }
    })());
  } finally {
    client.release();
  }
}

export async function seed(pool: Pool, redis: Redis, o: SeedOptions): Promise<SeedResult> {
  const progress = o.onProgress ?? (() => {});
  const ids = Array.from({ length: o.buyers }, () => newUserId());
  const tag = Date.now().toString(36);
  // Tokens only need the ids: sign them while Postgres takes the rows.
  const tokensWritten = o.tokensFile ? writeTokens(ids, o.tokensFile, o, progress) : Promise.resolve();
  await copyRows(pool, 'COPY users (id, kind, name) FROM STDIN', ids.length, (i) => `${ids[i]}\tbuyer\tload buyer ${tag}-${i}\n`, (d) => progress('buyers', d, ids.length));
  // Wallets, their ledger entries and the tokens only need the users: do them side by side.
  const [sale] = await Promise.all([
    new Sales(pool, redis).create(
      {
        name: 'Load test drop', sku: 'LOAD-1', unitPrice: 100, currency: o.currency, stock: 100, perBuyerLimit: 1,
        startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 6 * 3600_000).toISOString(), ...o.sale,
      },
      { role: 'operator', userId: null },
    ),
    // The ledger is the heaviest table (three indexes):
    // two COPY streams let Postgres use two backends for it.
    ...[0, 1].map((half) => {
      const mid = Math.ceil(ids.length / 2);
      return copyRows(
        pool,
        'COPY ledger_entries (ref, user_id, currency, amount, kind) FROM STDIN',
        half === 0 ? mid : ids.length,
        (i) => `credit:seed:${ids[i]}\t${ids[i]}\t${o.currency}\t${o.funds}\tcredit\n`,
        (d) => progress(`ledger ${half + 1}/2`, half === 0 ? d : d - mid, half === 0 ? mid : ids.length - mid),
        half === 0 ? 0 : mid,
      );
    }),
    copyRows(pool, 'COPY wallets (user_id, currency, balance) FROM STDIN', ids.length, (i) => `${ids[i]}\t${o.currency}\t${o.funds}\n`, (d) => progress('wallets', d, ids.length)),
    tokensWritten,
  ]);
  return { sale, buyerIds: ids, tokensFile: o.tokensFile };
}

async function writeTokens(ids: string[], file: string, o: SeedOptions, progress: (phase: string, done: number, total: number) => void): Promise<void> {
  const tokens = createBuyerTokens(o.jwtSecret, o.tokenTtlSeconds);
  const out = createWriteStream(file);
  for (let i = 0; i < ids.length; i += CHUNK) {
    let text = '';
    const end = Math.min(ids.length, i + CHUNK);
    for (let k = i; k < end; k++) text += `${ids[k]} ${tokens.issue(ids[k]!)}\n`;
    if (!out.write(text)) await once(out, 'drain');
    progress('tokens', end, ids.length);
    // Let the COPY streams run between chunks.
    await new Promise((r) => setImmediate(r));
  }
  out.end();
  await once(out, 'finish');
}
