/**
 * What a purchase costs Redis, by the script alone (no HTTP, no api): its
 * commands, the bytes its effects add to the append-only file, Redis's CPU
 * and the function's own time, per accepted purchase. Calls the script
 * wrappers straight, in waves of WAVE purchases of one sale by distinct
 * buyers, as one call each (`single`) and, where the build has it, as one
 * reservePurchases call per wave (`batched`):
 *
 *   node dist/load/autocannon/purchase-writes.js     # PURCHASES=20000 WAVE=10
 *
 * Runs on the bench's Redis (BENCH_REDIS_URL), on sales of its own that it
 * deletes again; run it under the bench lock (the AOF and CPU are the whole
 * server's).
 */
import { createRedis } from '../../src/platform/redis/client.js';
import { newPurchaseId, newSaleId, newUserId } from '../../src/platform/ids.js';
import * as scripts from '../../src/sales/scripts.js';
import { saleKeys } from '../../src/sales/keys.js';
import { benchEnv } from './processes.js';

const PURCHASES = Number(process.env.PURCHASES ?? 20_000);
const WAVE = Number(process.env.WAVE ?? 10);
const redis = createRedis(benchEnv(0).STAMPEDE_REDIS_URL!);

const info = async (section: string) => Object.fromEntries(((await redis.info(section)) ?? '').split('\r\n').filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]));
const fcallUsec = async () => Number(/cmdstat_fcall:calls=\d+,usec=(\d+)/.exec((await redis.info('commandstats')) ?? '')?.[1] ?? 0);
const cpuSeconds = async () => { const c = await info('cpu'); return Number(c.used_cpu_user) + Number(c.used_cpu_sys); };
const commands = async () => Object.fromEntries([...((await redis.info('commandstats')) ?? '').matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));

type Decide = (s: scripts.SaleTerms, requests: scripts.ReserveRequest[]) => Promise<unknown>;
const single: Decide = (_s, requests) => Promise.all(requests.map((r) => scripts.reservePurchase(redis, r)));
const batched: Decide | undefined = 'reservePurchases' in scripts
  ? (s, requests) => (scripts as unknown as { reservePurchases: (r: typeof redis, id: string, q: scripts.ReserveRequest[]) => Promise<unknown> }).reservePurchases(redis, s.id, requests)
  : undefined;

async function measure(name: string, decide: Decide): Promise<void> {
  const now = Date.now();
  const sale: scripts.SaleTerms = { id: newSaleId(), status: 'open', startsAt: now - 1000, endsAt: now + 3600_000, perBuyerLimit: 1, unitPrice: 100, currency: 'EUR', stock: PURCHASES };
  await scripts.loadSale(redis, sale, 0);
  const request = (): scripts.ReserveRequest => ({ saleId: sale.id, buyerId: newUserId(), quantity: 1, purchaseId: newPurchaseId(sale.id), rateMax: 10, rateWindowMs: 1000, idempotencyTtlMs: 60_000 });
  await decide(sale, [request()]); // the library loaded
  await redis.config('RESETSTAT');
  const aof0 = Number((await info('persistence')).aof_current_size ?? 0);
  const cpu0 = await cpuSeconds();
  for (let done = 0; done < PURCHASES - 1; done += WAVE) await decide(sale, Array.from({ length: Math.min(WAVE, PURCHASES - 1 - done) }, request));
  const n = PURCHASES - 1;
  const aof = Number((await info('persistence')).aof_current_size ?? 0) - aof0;
  const cpu = (await cpuSeconds()) - cpu0;
  const fn = await fcallUsec();
  const cmds = await commands();
  const live = await scripts.readLiveSale(redis, sale.id);
  const inner = Object.entries(cmds).filter(([c]) => c !== 'fcall' && c !== 'config' && c !== 'info').map(([c, calls]) => `${c} ${(calls / n).toFixed(2)}`).join(', ');
  console.log(`${name}: ${n} purchases in waves of ${WAVE} (${live?.reserved} reserved); per purchase: AOF ${(aof / n).toFixed(0)} bytes, Redis CPU ${((cpu * 1e6) / n).toFixed(1)} µs, ` +
    `function ${(fn / n).toFixed(1)} µs; FCALLs ${(cmds.fcall ?? 0) / n} per purchase; commands per purchase: ${inner}`);
  // Leave the bench's Redis as it was.
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${saleKeys.sale(sale.id).replace(/[{}]/g, '\\$&')}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

await measure('single', single);
if (batched) await measure('batched', batched);
await redis.quit();
