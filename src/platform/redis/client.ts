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
