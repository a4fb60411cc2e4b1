/**
 * Redis clients: one node (STAMPEDE_REDIS_URL) or a Redis Cluster
 * (STAMPEDE_REDIS_CLUSTER_NODES), with the same code paths above this module.
 *
 * The cluster client (ioredis `Cluster`) is typed as `Redis`: both have the
 * same command API, and every key a command takes carries its sale's or
 * auction's hash tag, so the cluster client routes each command (FCALL
 * included, by its KEYS) to the master of its slot. The few things that do
 * differ on a cluster go through the helpers here: the function library is
 * loaded on every master (functions.ts), a batch of commands over several
 * slots is sent per command (`batch`, below: a pipeline may not span
 * slots), a key scan or a flush visits every master (`masters`). Reads go
 * to masters only (`scaleReads: 'master'`): a decision must see its own
 * writes. Plain PUBLISH and SUBSCRIBE work on a cluster as they are (Redis
 * forwards every message over the cluster bus to every node), which is what
 * the api nodes' channels need: each of them is global (every api node wants
 * every message), so a sharded channel would put all of it on one shard anyway.
 */
import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import { preloadLibrary } from './functions.js';

export type { Redis };

/** Where Redis is: the config's two settings (a config object is one), or a single node's URL. */
export type RedisTarget = string | { STAMPEDE_REDIS_URL: string; STAMPEDE_REDIS_CLUSTER_NODES: string[] };

interface ClientOptions { autoPipelining?: boolean; name?: string }

/**
 * A Redis client of the target: the cluster client when cluster nodes are
 * configured (the URL then gives only the credentials), else one node's.
 * Auto-pipelining batches the commands of concurrent requests into one
 * round trip (per node, on a cluster). The decision scripts' library is
 * loaded before the first call.
 */
export function createRedis(target: RedisTarget, opts: ClientOptions = {}): Redis {
  const url = typeof target === 'string' ? target : target.STAMPEDE_REDIS_URL;
  const nodes = typeof target === 'string' ? [] : target.STAMPEDE_REDIS_CLUSTER_NODES;
  const common = { maxRetriesPerRequest: 3, connectionName: opts.name ?? 'stampede' };
  let redis: Redis;
  if (nodes.length > 0) {
    const u = new URL(url);
    const cluster = new Cluster(nodes.map(seedOf), {
      enableAutoPipelining: opts.autoPipelining ?? true,
      scaleReads: 'master',
      lazyConnect: false,
      redisOptions: { ...common, username: decodeURIComponent(u.username) || undefined, password: decodeURIComponent(u.password) || undefined },
    });
    redis = cluster as unknown as Redis;
  } else {
    redis = new Redis(url, { ...common, enableAutoPipelining: opts.autoPipelining ?? true, lazyConnect: false });
  }
  // Connection errors surface as failed commands and readiness; the client reconnects by itself.
  redis.on('error', () => {});
  preloadLibrary(redis);
  return redis;
}

function seedOf(node: string): { host: string; port: number } {
  const i = node.lastIndexOf(':');
  return { host: node.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(node.slice(i + 1)) };
}

/** True for a cluster client. */
export const isCluster = (redis: Redis): boolean => redis.isCluster;

/**
 * The client of each master (the client itself on one node). On a cluster,
 * waits until the client knows the cluster's slots.
 */
export async function masters(redis: Redis): Promise<Redis[]> {
  if (!redis.isCluster) return [redis];
  const cluster = redis as unknown as Cluster;
  if (cluster.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      // Quit or quitting (a cluster client quit while it connected stays 'disconnecting' and never answers).
      if (['disconnecting', 'close', 'end'].includes(cluster.status)) return reject(new Error('Connection is closed.'));
      const closing = ['disconnecting', 'close', 'end'];
      const settle = (err?: Error) => {
        cluster.off('ready', ready);
        for (const status of closing) cluster.off(status, ended);
        if (err) reject(err);
        else resolve();
      };
      const ready = () => settle();
      const ended = () => settle(new Error('Connection is closed.'));
      cluster.once('ready', ready);
      for (const status of closing) cluster.once(status, ended);
    });
  }
  return cluster.nodes('master');
}

/**
 * One command per item, sent together; the replies come back in item order
 * as a pipeline's `exec()` gives them (`[error, reply]`). On one node it is
 * one pipeline. On a cluster a pipeline may not span slots (ioredis refuses
 * it), so each command goes on its own: with auto-pipelining on, the client
 * still batches them into one round trip per master.
 */
export async function batch<T>(redis: Redis, items: readonly T[], command: (c: ChainableCommander, item: T) => unknown): Promise<[Error | null, unknown][]> {
  if (items.length === 0) return [];
  if (!redis.isCluster) {
    const p = redis.pipeline();
    for (const item of items) command(p, item);
    return ((await p.exec()) ?? []) as [Error | null, unknown][];
  }
  // The client's command methods return a promise of the reply where a pipeline's return the pipeline.
  const direct = redis as unknown as ChainableCommander;
  return Promise.all(
    items.map((item) =>
      (command(direct, item) as Promise<unknown>).then(
        (reply): [Error | null, unknown] => [null, reply],
        (err: Error): [Error | null, unknown] => [err, null],
      ),
    ),
  );
}

/** Every key matching `pattern`, on every master (SCAN visits one node only). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of await masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
  }
  return found;
}

/**
 * Ends the client's WATCH. UNWATCH names no key, so a cluster client would
 * send it to any node, not the one that holds the WATCH (left in force, it
 * would fail a later transaction of that connection): on a cluster it goes
 * to every master.
 */
export async function unwatch(redis: Redis): Promise<void> {
  for (const node of await masters(redis)) await node.unwatch();
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
export function channelSubscriber(target: RedisTarget, name: string, channel: string, onMessage: (message: string) => void, onReconnected: () => void) {
  const subscriber = createRedis(target, { name, autoPipelining: false });
  subscriber.on('message', (from: string, message: string) => {
    if (from === channel) onMessage(message);
  });
  let connectedBefore = false;
  if (!subscriber.isCluster) {
    subscriber.on('ready', () => {
      if (connectedBefore) onReconnected();
      connectedBefore = true;
    });
  }
  return {
    subscribe: async (): Promise<void> => {
      await subscriber.subscribe(channel);
      if (subscriber.isCluster && !connectedBefore) {
        connectedBefore = true;
        followClusterSubscriptions(subscriber as unknown as Cluster, onReconnected);
      }
    },
    quit: async (): Promise<void> => {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
    /** Drops the connection (`reconnect`: as a network failure would, ioredis connecting again). */
    disconnect: (reconnect = false): void => subscriber.disconnect(reconnect),
  };
}

/** The part of ioredis's Cluster that holds its pub/sub connection (not in its typings). */
interface ClusterWithSubscriber { subscriber?: { getInstance(): Redis | null } }

/**
 * Calls `onReconnected` each time a cluster client's subscriptions are on a
 * new connection. ioredis's Cluster subscribes on a connection of its own to
 * one node; when that connection ends (the node lost, the socket cut, the
 * client reconnecting) it picks a node and subscribes again on a new one,
 * and the Cluster itself emits nothing (its 'ready' fires only when the
 * whole client reconnects). So each new subscriber connection is followed:
 * its 'ready' is a reconnection, and what was published meanwhile was lost.
 */
function followClusterSubscriptions(cluster: Cluster, onReconnected: () => void): void {
  const holder = (cluster as unknown as ClusterWithSubscriber).subscriber;
  if (!holder) throw new Error('ioredis Cluster without its subscriber: the channel subscriber cannot see reconnections');
  const followed = new WeakSet<Redis>();
  const follow = (conn: Redis, isNew: boolean) => {
    followed.add(conn);
    if (isNew) {
      if (conn.status === 'ready') onReconnected();
      else conn.once('ready', onReconnected);
    }
    // ioredis picks the next connection in its own 'end' handler (none while no node is known: then on '+node').
    conn.once('end', () => setImmediate(next));
  };
  const next = () => {
    if (['end', 'close', 'disconnecting'].includes(cluster.status)) return;
    const fresh = holder.getInstance();
    if (fresh === null) return void cluster.once('+node', () => setImmediate(next));
    if (!followed.has(fresh)) follow(fresh, true);
  };
  // The whole client reconnected: ioredis subscribes again on a new connection as it gets ready.
  cluster.on('ready', () => setImmediate(next));
  const first = holder.getInstance();
  if (first) follow(first, false);
}
