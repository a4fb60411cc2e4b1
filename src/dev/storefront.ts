/**
 * The demo storefront (`GET /`, web/store/): a buyer's page for the demo
 * drop and the demo auction that `npm start` seeds. The page uses only the
 * public API and the live channels; the one thing it gets that a real shop
 * would not is `GET /v1/demo`, the demo's sale, auction and buyers with a
 * fresh token each, so a newcomer can act as any of them (a picker). That
 * hands out buyers' tokens to whoever asks, so neither is ever served in
 * production (STAMPEDE_STOREFRONT, refused there by the configuration).
 *
 * The demo is what the seed last wrote to Redis (`stampede:demo`): the api
 * reads it on each request, so a restart of `npm start` that seeds anew is
 * seen without restarting the api, and a test can point the page at a sale
 * and auction of its own.
 */
import type { Redis } from 'ioredis';
import { AppError } from '../platform/errors.js';
import type { BuyerTokens } from '../platform/auth/tokens.js';
import type { HttpServer } from '../platform/http/server.js';
import { serveFile } from '../platform/http/static.js';
import { idSchema, strictObject, type RouteDoc } from '../platform/http/doc.js';
import { AUCTION_ID, SALE_ID, USER_ID } from '../platform/ids.js';

/** Outside the hash-tagged keys of the products: read by the api, written by the seed, nothing else. */
export const DEMO_KEY = 'stampede:demo';

export interface Demo {
  saleId: string;
  auctionId: string;
  buyers: { id: string; name: string }[];
}

/** Makes `demo` the one the storefront shows. */
export async function rememberDemo(redis: Redis, demo: Demo): Promise<void> {
  await redis.set(DEMO_KEY, JSON.stringify(demo));
}

export async function readDemo(redis: Redis): Promise<Demo | undefined> {
  const raw = await redis.get(DEMO_KEY);
  return raw === null ? undefined : (JSON.parse(raw) as Demo);
}

const PAGE = { tags: ['demo'] };
const DEMO_DOC: RouteDoc = {
  summary: 'The demo\'s sale, auction and buyers, each with a fresh token',
  description: 'Only outside production (STAMPEDE_STOREFRONT): it hands out buyers\' tokens to whoever asks. 404 until `npm start` has seeded the demo.',
  tags: ['demo'], refusals: ['NOT_FOUND'],
  responses: {
    200: {
      description: 'The demo.',
      schema: strictObject({
        saleId: idSchema(SALE_ID), auctionId: idSchema(AUCTION_ID),
        buyers: { type: 'array', items: strictObject({ id: idSchema(USER_ID), name: { type: 'string' }, token: { type: 'string', description: 'A bearer token for this buyer.' } }) },
      }),
    },
  },
};

/** The page, its script and style, and the demo it acts in. */
export function registerStorefront(http: HttpServer, d: { redis: Redis; tokens: BuyerTokens }): void {
  // The page talks to its own origin only (HTTP, WebSocket, SSE over fetch).
  const csp = { 'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" };
  serveFile(http, '/', 'web/store/index.html', csp, { ...PAGE, summary: 'The demo storefront (a page)' });
  serveFile(http, '/store.js', 'web/store/store.js', {}, { ...PAGE, summary: 'The storefront\'s script' });
  serveFile(http, '/store.css', 'web/store/store.css', {}, { ...PAGE, summary: 'The storefront\'s style' });
  http.route('get', '/v1/demo', async () => {
    const demo = await readDemo(d.redis);
    if (!demo) throw new AppError('NOT_FOUND', 'no demo data: `npm start` seeds it (src/dev/demo.ts)');
    return {
      status: 200,
      body: { saleId: demo.saleId, auctionId: demo.auctionId, buyers: demo.buyers.map((b) => ({ ...b, token: d.tokens.issue(b.id) })) },
      headers: { 'cache-control': 'no-store' },
    };
  }, { doc: DEMO_DOC });
}
