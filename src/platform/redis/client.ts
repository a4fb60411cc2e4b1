import { Redis } from 'ioredis';
import { preloadLibrary } from './functions.js';

export type { Redis };

/**
 * A Redis client with every decision script defined. Auto-pipelining batches
 * the commands of concurrent requests into one round trip.
 */
export function createRedis(url: string, opts: { autoPipelining?: boolean; name?: string } = {}): Redis {
  const redis = new Redis(url, {
    enableAutoPipelining: opts.autoPipelining ?? true,
    maxRetriesPerRequest: 3,
    connectionName: opts.name ?? 'stampede',
    lazyConnect: false,
  });
  // Connection errors surface as failed commands and readiness; the client reconnects by itself.
  redis.on('error', () => {});
  preloadLibrary(redis);
  return redis;
}

/**
 * Loads a record's live state into Redis unless Redis already has it (its
 * key exists): a Redis that was flushed or replaced gets it back from
 * Postgres on first use. False when the record does not exist.
 */
export async function ensureLive<T>(redis: Redis, key: string, find: () => Promise<T | undefined>, load: (record: T) => Promise<void>): Promise<boolean> {
  if ((await redis.exists(key)) === 1) return true;
  const record = await find();
  if (record === undefined) return false;
  await load(record);
  return true;
}
