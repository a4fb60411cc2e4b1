/**
 * Demo data for `npm start`: an open sale and three funded buyers, reused
 * when they already exist, with tokens and curl commands to try.
 */
import type { Config } from '../platform/config.js';
import type { Pool } from '../platform/db/pool.js';
import type { Redis } from 'ioredis';
import { createBuyerTokens } from '../platform/auth/tokens.js';
import { createBuyers, creditWallet } from '../buyers/buyers.js';
import { Sales } from '../sales/sales.js';
import { Auctions } from '../auctions/auctions.js';
import { rememberDemo } from './storefront.js';

export async function seedDemo(cfg: Config, pool: Pool, redis: Redis): Promise<string> {
  const names = ['Ada', 'Grace', 'Linus'];
  const ids: string[] = [];
  for (const name of names) {
    const email = `${name.toLowerCase()}@demo.stampede.dev`;
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM users WHERE lower(email) = $1', [email]);
    const id = rows[0]?.id ?? (await createBuyers(pool, [{ name, email }]))[0]!.id;
    // One credit per buyer ever: the ledger reference makes re-runs no-ops.
    await creditWallet(pool, id, 'EUR', 50_000, `credit:demo:${id}`);
    ids.push(id);
  }
  const operator = { role: 'operator' as const, userId: null };
  const now = Date.now();
  const day = { startsAt: new Date(now - 1000).toISOString(), endsAt: new Date(now + 24 * 3600_000).toISOString() };
  const sales = new Sales(pool, redis);
  const saleId = await reuseOrCreate(pool,
    `SELECT id FROM sales WHERE sku = 'DEMO-SNEAKER' AND status = 'open' AND ends_at > now() + interval '10 minutes' LIMIT 1`,
    (id) => sales.ensureLoaded(id),
    () => sales.create({ name: 'Demo drop: limited sneaker', sku: 'DEMO-SNEAKER', unitPrice: 12_900, currency: 'EUR', stock: 100, perBuyerLimit: 2, ...day }, operator));
  const auctions = new Auctions(pool, redis);
  const auctionId = await reuseOrCreate(pool,
    `SELECT id FROM auctions WHERE title = 'Demo lot: signed guitar' AND status = 'open' AND ends_at > now() + interval '10 minutes' LIMIT 1`,
    (id) => auctions.ensureLoaded(id),
    () => auctions.create({
      title: 'Demo lot: signed guitar', collection: 'Demo', currency: 'EUR', startPrice: 10_000, reservePrice: 20_000, buyNowPrice: 45_000, ...day,
      hardCloseAt: new Date(now + 25 * 3600_000).toISOString(), softCloseSeconds: 60,
      increment: { type: 'tiered', tiers: [{ from: 0, increment: 500 }, { from: 20_000, increment: 1_000 }] },
    }, operator));
  await rememberDemo(redis, { saleId, auctionId, buyers: ids.map((id, i) => ({ id, name: names[i]! })) });
  const tokens = createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, cfg.STAMPEDE_JWT_TTL_SECONDS);
  const base = `http://127.0.0.1:${cfg.STAMPEDE_HTTP_PORT}`;
  const t = ids.map((id) => tokens.issue(id));
  return [
    '',
    '=== Stampede demo ===',
    `sale ${saleId}: 100 units at 129.00 EUR, at most 2 per buyer`,
    `auction ${auctionId}: from 100.00 EUR (hidden reserve), buy now at 450.00 EUR, 60 s soft close`,
    ...ids.map((id, i) => `buyer ${names[i]} (${id}), wallet 500.00 EUR, token:\n  ${t[i]}`),
    `operator API key: ${cfg.STAMPEDE_OPERATOR_KEY || '(none: STAMPEDE_OPERATOR_KEY is empty)'}`,
    '',
    ...(cfg.STAMPEDE_STOREFRONT ? [`storefront: open ${base}/ in a browser (buy, bid and get notified as any demo buyer)`, ''] : []),
    'Try:',
    `  TOKEN=${t[0]}`,
    `  curl -s -X POST ${base}/v1/sales/${saleId}/purchases -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' -d '{"quantity":1}'`,
    `  curl -s ${base}/v1/purchases/<purchaseId> -H "Authorization: Bearer $TOKEN"`,
    `  curl -s ${base}/v1/wallet -H "Authorization: Bearer $TOKEN"`,
    `  curl -s ${base}/v1/sales/${saleId}`,
    `  curl -s -X POST ${base}/v1/auctions/${auctionId}/bids -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"amount":10000,"maxAmount":25000}'`,
    `  curl -s ${base}/v1/auctions/${auctionId}`,
    `  curl -s ${base}/v1/auctions/${auctionId}/bids`,
    `  curl -s ${base}/v1/ops/queues -H 'X-Api-Key: ${cfg.STAMPEDE_OPERATOR_KEY}'`,
    ...(cfg.STAMPEDE_METRICS ? [
      `  curl -s ${base}/metrics | grep ^stampede_        # Prometheus: the api's; relay, worker, notifier, scheduler on ports ${[
        cfg.STAMPEDE_RELAY_METRICS_PORT, cfg.STAMPEDE_WORKER_METRICS_PORT, cfg.STAMPEDE_NOTIFIER_METRICS_PORT, cfg.STAMPEDE_SCHEDULER_METRICS_PORT].join(', ')}`,
    ] : []),
    '',
  ].join('\n');
}

/** The demo's sale or auction from an earlier start (loaded into Redis again), or a new one. */
async function reuseOrCreate(pool: Pool, findSql: string, load: (id: string) => Promise<unknown>, create: () => Promise<{ id: string }>): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(findSql);
  const known = rows[0]?.id;
  if (known === undefined) return (await create()).id;
  await load(known);
  return known;
}
