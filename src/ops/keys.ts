/**
 * Operator keys, for the api (`/v1/ops/keys`) and the CLI (`stampede apikey`)
 * alike: create one (shown once), list them, revoke one. A revocation is
 * told to every api node as it commits, so a revoked key stops working on
 * all of them at once, not when their caches expire.
 */
import type { Redis } from 'ioredis';
import type { Pool } from '../platform/db/pool.js';
import { AppError } from '../platform/errors.js';
import { announceRevocation, type ApiKeys, type ApiKeyView, type Principal } from '../platform/auth/api-keys.js';

/** A key's label, as operators write it (what the key is for). */
export const MAX_LABEL = 200;

export interface NewKey {
  role: Principal['role'];
  /** Sellers only: the seller the key acts as. */
  userId?: string;
  label: string;
}

export class OperatorKeys {
  constructor(private readonly pool: Pool, private readonly redis: Redis, private readonly apiKeys: ApiKeys) {}

  async create(k: NewKey): Promise<ApiKeyView & { apiKey: string }> {
    if (k.role === 'operator' && k.userId !== undefined) throw AppError.invalid('/userId', 'must be absent for an operator key', 'an operator key acts for no user');
    if (k.role === 'seller') {
      if (k.userId === undefined) throw AppError.invalid('/userId', 'is required for a seller key', 'a seller key needs the seller it acts as');
      const { rowCount } = await this.pool.query(`SELECT 1 FROM users WHERE id = $1 AND kind = 'seller' AND deleted_at IS NULL`, [k.userId]);
      if (rowCount === 0) throw AppError.invalid('/userId', 'is not a seller', `${k.userId} is not a seller`);
    }
    return this.apiKeys.issue(k.role, k.userId ?? null, k.label);
  }

  list(limit: number, after: string | undefined): Promise<{ items: ApiKeyView[]; next: string | null }> {
    return this.apiKeys.list(limit, after);
  }

  /** Revokes a key and tells every api node; revoking one already revoked tells them again, harmlessly. */
  async revoke(id: string): Promise<ApiKeyView> {
    const { hashHex, key } = await this.apiKeys.revoke(id);
    this.apiKeys.evict(hashHex);
    await announceRevocation(this.redis, hashHex);
    return key;
  }
}
