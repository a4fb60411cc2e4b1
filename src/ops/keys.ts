/**
 * Operator keys, for the api (`/v1/ops/keys`) and the CLI (`stampede apikey`)
 * alike: create one (shown once), list them, revoke one. A revocation is
 * told to every api node as it commits, so a revoked key stops working on
 * all of them at once, not when their caches expire.
 *
 * A seller manages its own keys the same way (`/v1/sellers/{id}/keys`, with
 * one of its keys; an operator for any seller): the same keys, the same
 * revocation broadcast, scoped to the seller. Another seller's keys, or a
 * seller other than the caller, are answered as absent.
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

  /** The seller's keys, revoked ones too, oldest first (`by`: the seller itself, or an operator). */
  async listForSeller(sellerId: string, by: Principal, limit: number, after: string | undefined): Promise<{ items: ApiKeyView[]; next: string | null }> {
    await this.requireSeller(sellerId, by);
    return this.apiKeys.list(limit, after, sellerId);
  }

  /** A new key of the seller, shown this once. */
  async createForSeller(sellerId: string, by: Principal, label: string): Promise<ApiKeyView & { apiKey: string }> {
    await this.requireSeller(sellerId, by);
    return this.apiKeys.issue('seller', sellerId, label);
  }

  /** Revokes one of the seller's keys (the one the seller calls with too) on every api node; another's key is 404. */
  async revokeForSeller(sellerId: string, by: Principal, keyId: string): Promise<ApiKeyView> {
    await this.requireSeller(sellerId, by);
    const { rowCount } = await this.pool.query(`SELECT 1 FROM api_keys WHERE id = $1 AND role = 'seller' AND user_id = $2`, [keyId, sellerId]);
    if (rowCount === 0) throw new AppError('NOT_FOUND', 'no such API key');
    return this.revoke(keyId);
  }

  /** The seller exists and the caller may act for it; a seller asking about another seller is told it does not exist. */
  private async requireSeller(sellerId: string, by: Principal): Promise<void> {
    if (by.role === 'seller' && by.userId !== sellerId) throw new AppError('NOT_FOUND', 'no such seller');
    const { rowCount } = await this.pool.query(`SELECT 1 FROM users WHERE id = $1 AND kind = 'seller' AND deleted_at IS NULL`, [sellerId]);
    if (rowCount === 0) throw new AppError('NOT_FOUND', 'no such seller');
  }

  /** Revokes a key and tells every api node; revoking one already revoked tells them again, harmlessly. */
  async revoke(id: string): Promise<ApiKeyView> {
    const { hashHex, key } = await this.apiKeys.revoke(id);
    this.apiKeys.evict(hashHex);
    await announceRevocation(this.redis, hashHex);
    return key;
  }
}
