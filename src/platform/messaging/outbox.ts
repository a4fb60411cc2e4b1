/**
 * The outboxes: each sale and auction appends its accepted decisions to a
 * Redis Stream of its own (in its hash slot), in the same script call that
 * decides them. The relay drains every stream it finds in the registry.
 */
import type { Redis } from 'ioredis';
import { runScript } from '../redis/functions.js';

/** The set of outbox streams the relay drains (one per sale and auction). */
export const OUTBOX_REGISTRY = 'stampede:outboxes';
/** The relay's consumer group on every outbox stream. */
export const RELAY_GROUP = 'relay';

/** Drops the entries the relay group has acknowledged, and nothing else (lua/outbox/trimOutbox-1.lua). */
export async function trimOutbox(redis: Redis, stream: string): Promise<number> {
  const reply = (await runScript(redis, 'trimOutbox', [stream], [RELAY_GROUP])) as (string | number)[];
  return Number(reply[0]);
}
