/**
 * Typed wrapper of the notification scripts (lua/notification), the only
 * caller of them: builds KEYS in the order the script's header lists.
 */
import type { Redis } from 'ioredis';
import { runScript } from '../platform/redis/functions.js';
import { NOTIFICATION_SENDS_DUE, NOTIFICATIONS_OUTBOX } from './keys.js';

/** Claims up to `max` due sends and appends their due events to the notifications' outbox (lua/notification/claimDueSends-2.lua). */
export async function claimDueSends(redis: Redis, max: number): Promise<string[]> {
  return (await runScript(redis, 'claimDueSends', [NOTIFICATION_SENDS_DUE, NOTIFICATIONS_OUTBOX], [max])) as string[];
}
