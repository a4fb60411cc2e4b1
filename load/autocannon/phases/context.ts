/**
 * What every phase of `npm run bench` shares: its settings (the BENCH_*
 * variables), the environment it runs Stampede in, the services and fixtures
 * set up for the run, and what the run has found so far.
 */
import { loadConfig } from '../../../src/platform/config.js';
import { createLogger } from '../../../src/platform/log.js';
import type { Pool } from '../../../src/platform/db/pool.js';
import type { Redis } from '../../../src/platform/redis/client.js';
import type { Connection } from '../../../src/platform/messaging/amqp.js';
import { benchEnv, cpuProfileFlags } from '../processes.js';
import { scenarios } from '../scenarios.js';
import type { Phase } from '../results.js';

export const settings = {
  apiPort: Number(process.env.BENCH_API_PORT ?? 8090),
  helloPort: Number(process.env.BENCH_HELLO_PORT ?? 8091),
  buyers: Number(process.env.BENCH_BUYERS ?? scenarios.flashSale.buyers),
  connections: Number(process.env.BENCH_CONNECTIONS ?? scenarios.connections),
  /** BENCH_DURATION_SCALE multiplies every duration-bound phase's seconds. */
  durationScale: Number(process.env.BENCH_DURATION_SCALE ?? 1),
  /** BENCH_CPU_PROF=1 writes a V8 CPU profile of the api to load/results/profiles/. */
  apiNodeFlags: cpuProfileFlags(Boolean(process.env.BENCH_CPU_PROF)),
};

/** A scenario's duration in seconds, scaled by BENCH_DURATION_SCALE. */
export const scaled = (durationSeconds: number): number => durationSeconds * settings.durationScale;

export const env = benchEnv(settings.apiPort);
export const cfg = loadConfig(env);
export const log = createLogger('info', 'bench');

/** The services the bench drives and the fixtures it seeded (setup.ts). */
export interface Bench {
  pool: Pool;
  redis: Redis;
  amqp: Connection;
  buyerTokens: string[];
  /** The sales of the accept path, stocked never to sell out. */
  acceptSaleIds: string[];
  /** The sale of the flash sale and the sold-out storm. */
  flashSaleId: string;
  /** Every sale, accept sales first, with the per-buyer limit its invariants are checked against. */
  sales: { id: string; perBuyerLimit: number }[];
  seedSeconds: number;
}

/** Every phase measured so far, in the order the report shows them, and every invariant found broken. */
export interface Findings {
  phases: Phase[];
  violations: string[];
}

