/**
 * Each running role says it is alive: every `everyMs` it writes one field of
 * a Redis hash (who it is, since when, where its metrics are, and when it
 * last beat). The operators' view reads the hash: a role whose last beat is
 * older than three beats is shown as silent; one silent for longer than
 * FORGET_AFTER_MS (a process that died without saying so) is forgotten. A
 * role that stops cleanly removes its own field.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/log.js';

export const ROLES_KEY = 'stampede:ops:roles';
const FORGET_AFTER_MS = 5 * 60_000;
/** A role is healthy while its last beat is at most this many beats old. */
const MISSED_BEATS = 3;

export interface RoleBeat {
  role: string;
  instance: string;
  host: string;
  pid: number;
  startedAt: number;
  beatAt: number;
  everyMs: number;
  metricsUrl?: string;
}

export interface RoleHealth extends RoleBeat {
  /** Milliseconds since its last beat, as this node's clock sees it. */
  silentMs: number;
  healthy: boolean;
}

export class Heartbeat {
  private readonly beat: RoleBeat;
  private readonly timer: NodeJS.Timeout;
  private failing = false;

  constructor(private readonly redis: Redis, role: string, everyMs: number, private readonly log: Logger, metricsUrl?: string) {
    const host = hostname();
    this.beat = { role, instance: `${role}@${host}:${process.pid}`, host, pid: process.pid, startedAt: Date.now(), beatAt: 0, everyMs, ...(metricsUrl ? { metricsUrl } : {}) };
    this.timer = setInterval(() => void this.send(), everyMs);
    this.timer.unref();
    void this.send();
  }

  private async send(): Promise<void> {
    try {
      await this.redis.hset(ROLES_KEY, this.beat.instance, JSON.stringify({ ...this.beat, beatAt: Date.now() }));
      if (this.failing) this.log.info('heartbeat: beating again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, 'heartbeat: could not write; operators will see this role as silent');
      this.failing = true;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.hdel(ROLES_KEY, this.beat.instance).catch(() => undefined);
  }
}

/** Every role that beat recently, by role and instance. */
export async function roleHealth(redis: Redis, now = Date.now()): Promise<RoleHealth[]> {
  const raw = await redis.hgetall(ROLES_KEY);
  const forgotten: string[] = [];
  const roles: RoleHealth[] = [];
  for (const [instance, json] of Object.entries(raw)) {
    let beat: RoleBeat;
    try {
      beat = JSON.parse(json) as RoleBeat;
    } catch {
      forgotten.push(instance);
      continue;
    }
    const silentMs = Math.max(0, now - beat.beatAt);
    if (silentMs > FORGET_AFTER_MS) forgotten.push(instance);
    else roles.push({ ...beat, silentMs, healthy: silentMs <= MISSED_BEATS * beat.everyMs });
  }
  if (forgotten.length > 0) await redis.hdel(ROLES_KEY, ...forgotten);
  return roles.sort((a, b) => a.role.localeCompare(b.role) || a.instance.localeCompare(b.instance));
}
