/**
 * Operator and seller API keys, stored as SHA-256 hashes. Lookups are cached
 * briefly in memory so an operator dashboard polling the api does not cost a
 * query per request; a revoked key stops working within the cache lifetime.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from '../db/pool.js';

export interface Principal {
  role: 'operator' | 'seller';
  userId: string | null;
}

const CACHE_MS = 5_000;

export const hashApiKey = (key: string) => createHash('sha256').update(key).digest();

export function newApiKey(role: 'operator' | 'seller'): string {
  return `stk_${role === 'operator' ? 'op' : 'sl'}_${randomBytes(24).toString('base64url')}`;
}

export class ApiKeys {
  private cache = new Map<string, { at: number; principal: Principal | null }>();
  constructor(private readonly pool: Pool) {}

  async lookup(key: string): Promise<Principal | null> {
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.principal;
    const { rows } = await this.pool.query<{ role: Principal['role']; user_id: string | null }>(
      'SELECT role, user_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [hashApiKey(key)],
    );
    const principal = rows[0] ? { role: rows[0].role, userId: rows[0].user_id } : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: Date.now(), principal });
    return principal;
  }

  /** Stores a key (hashed); idempotent for the same key. */
  async store(key: string, role: Principal['role'], userId: string | null, label: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO api_keys (key_hash, role, user_id, label) VALUES ($1, $2, $3, $4) ON CONFLICT (key_hash) DO NOTHING',
      [hashApiKey(key), role, userId, label],
    );
  }
}
