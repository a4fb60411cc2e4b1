/**
 * The api's memory under WebSocket floods (issue 16, item 7): a real
 * `stampede api` process, then rounds of real `ws /v1/live` clients (each
 * subscribes to auction topics; one in ten stops reading, so uWS buffers
 * for it up to maxBackpressure) while updates are published on the live
 * channel, then every client leaves (half with a close frame, half cut).
 * After each round, and after an idle spell at the end, the api's RSS, V8
 * heap and external memory are read from its /metrics, with its own count of
 * connections and subscriptions. Prints one JSON line per sample.
 *
 *     node dist/load/autocannon/live-soak.js            # SOAK_ROUNDS=8 SOAK_CLIENTS=2000
 *     MALLOC_ARENA_MAX=2 node dist/load/autocannon/live-soak.js
 *     SOAK_SEMI_SPACE_MB=16 node dist/load/autocannon/live-soak.js
 *
 * Runs against the bench's database and Redis (BENCH_DATABASE_URL,
 * BENCH_REDIS_URL); SOAK_AMQP_PREFIX names the broker prefix.
 */
import WebSocket from 'ws';
import { benchEnv, startApi } from './processes.js';
import { createRedis } from '../../src/platform/redis/client.js';
import { LIVE_CHANNEL } from '../../src/live/keys.js';
import { newAuctionId } from '../../src/platform/ids.js';

const ROUNDS = Number(process.env.SOAK_ROUNDS ?? 8);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 2000);
const IDLE_MS = Number(process.env.SOAK_IDLE_MS ?? 20_000);
const PORT = Number(process.env.SOAK_PORT ?? 18_090);
const url = `http://127.0.0.1:${PORT}`;
const env: NodeJS.ProcessEnv = { ...benchEnv(PORT), STAMPEDE_AMQP_PREFIX: process.env.SOAK_AMQP_PREFIX ?? 'stampede-bench' };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function gauges(): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'))?.[1] ?? NaN);
  const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
  return {
    rssMB: mb(read('process_resident_memory_bytes')),
    heapUsedMB: mb(read('nodejs_heap_size_used_bytes')),
    heapTotalMB: mb(read('nodejs_heap_size_total_bytes')),
    externalMB: mb(read('nodejs_external_memory_bytes')),
    newSpaceMB: mb(Number(text.match(/^nodejs_heap_space_size_total_bytes\{[^}]*space="new"[^}]*\} (\S+)$/m)?.[1] ?? NaN)),
    oldSpaceMB: mb(Number(text.match(/^nodejs_heap_space_size_total_bytes\{[^}]*space="old"[^}]*\} (\S+)$/m)?.[1] ?? NaN)),
    wsConnections: Number(text.match(/^stampede_live_connections\{[^}]*transport="ws"[^}]*\} (\S+)$/m)?.[1] ?? NaN),
    subscriptions: read('stampede_live_subscriptions'),
  };
}

const auctions = Array.from({ length: 100 }, () => newAuctionId());

function open(i: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/live`, { perMessageDeflate: false });
    let answered = 0;
    ws.once('error', reject);
    ws.once('open', () => {
      for (let k = 0; k < 3; k++) ws.send(JSON.stringify({ op: 'subscribe', topic: `auction/${auctions[(i * 7 + k * 13) % auctions.length]}` }));
      ws.send('{"op":"subscribe","topic":'); // a broken frame: answered with an error
    });
    ws.on('message', () => {
      answered += 1;
      if (answered === 4) {
        // One client in ten stops reading: uWS holds what it cannot send, up to maxBackpressure.
        if (i % 10 === 0) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        resolve(ws);
      }
    });
  });
}

async function round(n: number, redis: ReturnType<typeof createRedis>): Promise<void> {
  const clients: WebSocket[] = [];
  for (let i = 0; i < CLIENTS; i += 200) clients.push(...(await Promise.all(Array.from({ length: Math.min(200, CLIENTS - i) }, (_, k) => open(n * CLIENTS + i + k)))));
  // Updates of about 2 KB to every auction, 40 times each.
  const data = JSON.stringify({ price: 1000, pad: 'x'.repeat(2000) });
  for (let k = 0; k < 40; k++) {
    await Promise.all(auctions.map((id) => redis.publish(LIVE_CHANNEL, `auction/${id} ${data.replace('1000', String(1000 + k))}`)));
    await sleep(25);
  }
  clients.forEach((ws, i) => (i % 2 === 0 ? ws.close(1000) : ws.terminate()));
  for (let waited = 0; waited < 30_000; waited += 200) {
    if ((await gauges()).wsConnections === 0) break;
    await sleep(200);
  }
}

// SOAK_SEMI_SPACE_MB overrides the roles' --max-semi-space-size (the later flag wins).
const semi = process.env.SOAK_SEMI_SPACE_MB;
const api = await startApi(env, PORT, semi ? [`--max-semi-space-size=${semi}`] : []);
const redis = createRedis(env.STAMPEDE_REDIS_URL!, { name: 'live-soak' });
try {
  await sleep(2000);
  console.log(JSON.stringify({ at: 'start', arenaMax: process.env.MALLOC_ARENA_MAX ?? 'default', semiSpaceMB: semi ?? '64 (roles)', ...(await gauges()) }));
  for (let n = 1; n <= ROUNDS; n++) {
    await round(n, redis);
    console.log(JSON.stringify({ at: `after round ${n} (${CLIENTS} clients)`, ...(await gauges()) }));
  }
  await sleep(IDLE_MS);
  console.log(JSON.stringify({ at: `idle ${IDLE_MS / 1000}s`, ...(await gauges()) }));
} finally {
  await redis.quit();
  api.kill('SIGTERM');
}
