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

/**
 * A connection of its own subscribed to one pub/sub channel: `onMessage`
 * gets each message, and `onReconnected` is called each time the
 * connection is ready again after a loss (what was published meanwhile
 * was lost to it). `subscribe()` resolves once the subscription is in force.
 */
export function channelSubscriber(url: string, name: string, channel: string, onMessage: (message: string) => void, onReconnected: () => void) {
  const subscriber = createRedis(url, { name, autoPipelining: false });
  subscriber.on('message', (from: string, message: string) => {
    if (from === channel) onMessage(message);
  });
  let connectedBefore = false;
  subscriber.on('ready', () => {
    if (connectedBefore) onReconnected();
    connectedBefore = true;
  });
  return {
    subscribe: async (): Promise<void> => {
      await subscriber.subscribe(channel);
    },
    quit: async (): Promise<void> => {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
    /** Drops the connection (`reconnect`: as a network failure would, ioredis connecting again). */
    disconnect: (reconnect = false): void => subscriber.disconnect(reconnect),
  };
}
