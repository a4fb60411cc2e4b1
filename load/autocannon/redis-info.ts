/**
 * What the load tools read from Redis's INFO: its pid, its append-only-file
 * rewrites, and what each command cost.
 */
import type { Redis } from 'ioredis';

/** The Redis server's pid, to count its CPU with the processes a phase measures. */
export const redisServerPid = async (redis: Redis): Promise<number> => Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);

const persistence = async (redis: Redis): Promise<Record<string, string>> =>
  Object.fromEntries(((await redis.info('persistence')) ?? '').split('\r\n').filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]));

/** How many AOF rewrites Redis has finished so far (see quietRedis). */
export const aofRewrites = async (redis: Redis): Promise<number> => Number((await persistence(redis)).aof_rewrites ?? 0);

/**
 * Rewrites Redis's append-only file now and waits for the rewrite to end.
 * Redis rewrites it once it has doubled since the last rewrite, in a forked
 * child that takes a core for seconds, and the bench writes enough to
 * trigger one in the middle of a phase, where it takes that core from the
 * phase measured. Like the VACUUM after seeding, this moves that work out of
 * the measured windows; the bench still reports any rewrite that falls
 * inside one.
 */
export async function quietRedis(redis: Redis, timeoutMs = 120_000): Promise<void> {
  const [, aof] = (await redis.config('GET', 'appendonly')) as string[];
  if (aof !== 'yes') return;
  await redis.bgrewriteaof().catch(() => undefined); // already running: wait for that one
  const until = Date.now() + timeoutMs;
  for (;;) {
    const p = await persistence(redis);
    if (p.aof_rewrite_in_progress === '0' && p.aof_rewrite_scheduled === '0') return;
    if (Date.now() > until) throw new Error('Redis did not finish rewriting its AOF in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface CommandCost {
  command: string;
  calls: number;
  /** Microseconds Redis spent in the command per unit of work (a request, an order). */
  usPerUnit: number;
}

/** Redis's costliest commands since the last CONFIG RESETSTAT, per unit of work, costliest first. */
export async function commandCosts(redis: Redis, units: number, most: number): Promise<CommandCost[]> {
  const stats = ((await redis.info('commandstats')) ?? '').split('\n').flatMap((l) => {
    const m = /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(l);
    return m ? [{ command: m[1]!, calls: Number(m[2]), usec: Number(m[3]) }] : [];
  });
  return stats.sort((x, y) => y.usec - x.usec).slice(0, most).map(({ command, calls, usec }) => ({ command, calls, usPerUnit: usec / units }));
}
