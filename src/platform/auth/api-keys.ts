/**
 * Operator and seller API keys, stored as SHA-256 hashes, each with a public
 * id (`key_…`) operators list and revoke it by. Lookups are cached briefly in
 * memory so an operator dashboard polling the api does not cost a query per
 * request. A revocation is published on API_KEY_REVOKED_CHANNEL and every api
 * node evicts the key at once; the cache lifetime (STAMPEDE_API_KEY_CACHE_MS)
 * bounds how long a node whose subscription missed it can still accept it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { inTransaction, type Pool } from '../db/pool.js';
import { AppError } from '../errors.js';
import { newApiKeyId } from '../ids.js';

export interface Principal {
  role: 'operator' | 'seller';
  userId: string | null;
}

/** What operators see of a key: never the key, never its hash. */
export interface ApiKeyView {
  id: string;
  role: Principal['role'];
  userId: string | null;
  label: string;
  /** The first 8 hex digits of the key's SHA-256, to tell keys apart (`printf %s "$KEY" | sha256sum | cut -c1-8`). */
  fingerprint: string;
  createdAt: string;
  revokedAt: string | null;
}

/** Pub/sub channel: a key was revoked (message: the hex SHA-256 of the key). */
export const API_KEY_REVOKED_CHANNEL = 'stampede:api-key-revoked';
/** Most cached lookups per node (unknown keys included); past it the cache starts afresh. */
const MAX_CACHED = 10_000;

export const hashApiKey = (key: string) => createHash('sha256').update(key).digest();

export function newApiKey(role: Principal['role']): string {
  return `stk_${role === 'operator' ? 'op' : 'sl'}_${randomBytes(24).toString('base64url')}`;
}

interface KeyRow {
  id: string;
  role: Principal['role'];
  user_id: string | null;
  label: string;
  fingerprint: string;
  created_at: Date;
  revoked_at: Date | null;
}

const VIEW_COLUMNS = `id, role, user_id, label, encode(substring(key_hash FROM 1 FOR 4), 'hex') AS fingerprint, created_at, revoked_at`;

const viewOf = (r: KeyRow): ApiKeyView => ({
  id: r.id, role: r.role, userId: r.user_id, label: r.label, fingerprint: r.fingerprint,
  createdAt: r.created_at.toISOString(), revokedAt: r.revoked_at?.toISOString() ?? null,
});

export class ApiKeys {
  /** By the key's hex SHA-256, so a revocation (which names the hash) can evict it. */
  private cache = new Map<string, { at: number; principal: Principal | null }>();
  /** Bumped by every eviction: a lookup that read Postgres before one does not cache what it read. */
  private evictions = 0;

  constructor(private readonly pool: Pool, private readonly cacheMs = 1_000) {}

  async lookup(key: string): Promise<Principal | null> {
    const hash = hashApiKey(key);
    const hex = hash.toString('hex');
    const hit = this.cache.get(hex);
    if (hit && Date.now() - hit.at < this.cacheMs) return hit.principal;
    const epoch = this.evictions;
    const { rows } = await this.pool.query<{ role: Principal['role']; user_id: string | null }>(
      'SELECT role, user_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [hash],
    );
    const principal = rows[0] ? { role: rows[0].role, userId: rows[0].user_id } : null;
    if (epoch === this.evictions && this.cacheMs > 0) {
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(hex, { at: Date.now(), principal });
    }
    return principal;
  }

  /** Forgets one key (a revocation broadcast names its hex SHA-256). */
  evict(hashHex: string): void {
    this.evictions++;
    this.cache.delete(hashHex);
  }

  /** Forgets every cached lookup (the revocations missed while the subscription was down are unknowable). */
  forgetCached(): void {
    this.evictions++;
    this.cache.clear();
  }

  /** Stores a key (hashed); idempotent for the same key, which keeps its id and, once revoked, stays revoked. */
  async store(key: string, role: Principal['role'], userId: string | null, label: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO api_keys (id, key_hash, role, user_id, label) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_hash) DO NOTHING',
      [newApiKeyId(), hashApiKey(key), role, userId, label],
    );
  }

  /** Revokes a key known by its value (one that must not work: production's refusal of the development key); its hex SHA-256 if it was active. */
  async revokeKnown(key: string): Promise<string | undefined> {
    const { rowCount } = await this.pool.query('UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL', [hashApiKey(key)]);
    return rowCount ? hashApiKey(key).toString('hex') : undefined;
  }

  /** Makes a new key and stores it; the key itself is in the answer only. */
  async issue(role: Principal['role'], userId: string | null, label: string): Promise<ApiKeyView & { apiKey: string }> {
    const apiKey = newApiKey(role);
    const { rows } = await this.pool.query<KeyRow>(
      `INSERT INTO api_keys (id, key_hash, role, user_id, label) VALUES ($1, $2, $3, $4, $5) RETURNING ${VIEW_COLUMNS}`,
      [newApiKeyId(), hashApiKey(apiKey), role, userId, label],
    );
    return { ...viewOf(rows[0]!), apiKey };
  }

  /**
   * Every key, revoked ones too, oldest first; `after` is the id the previous
   * page ended with. With `sellerId`, only that seller's keys (and a cursor
   * must be one of them).
   */
  async list(limit: number, after: string | undefined, sellerId?: string): Promise<{ items: ApiKeyView[]; next: string | null }> {
    const owner = sellerId ?? null;
    // A seller's list may only page from one of its own keys (another's id would page from its place in the whole list).
    if (after !== undefined && owner !== null) {
      const { rowCount } = await this.pool.query(`SELECT 1 FROM api_keys WHERE id = $1 AND role = 'seller' AND user_id = $2`, [after, owner]);
      if (rowCount === 0) throw AppError.invalid('query:after', 'is invalid', 'after is not a cursor this list gave');
    }
    const { rows } = after === undefined
      ? await this.pool.query<KeyRow>(
        `SELECT ${VIEW_COLUMNS} FROM api_keys WHERE ($2::text IS NULL OR (role = 'seller' AND user_id = $2)) ORDER BY created_at, id LIMIT $1`,
        [limit + 1, owner],
      )
      : await this.pool.query<KeyRow>(
        `SELECT ${VIEW_COLUMNS} FROM api_keys
         WHERE ($3::text IS NULL OR (role = 'seller' AND user_id = $3))
           AND (created_at, id) > (SELECT created_at, id FROM api_keys WHERE id = $2) ORDER BY created_at, id LIMIT $1`,
        [limit + 1, after, owner],
      );
    // An empty page after a cursor: the end of the list, or a cursor this list never gave.
    if (after !== undefined && rows.length === 0) {
      const { rowCount } = await this.pool.query(
        `SELECT 1 FROM api_keys WHERE id = $1 AND ($2::text IS NULL OR (role = 'seller' AND user_id = $2))`, [after, owner],
      );
      if (rowCount === 0) throw AppError.invalid('query:after', 'is invalid', 'after is not a cursor this list gave');
    }
    // One more than the page: whether it exists says whether there is a next page.
    const page = rows.slice(0, limit);
    return { items: page.map(viewOf), next: rows.length > limit ? page[page.length - 1]!.id : null };
  }

  /**
   * Revokes a key (again: no change, its first revocation time stays) and
   * returns its hex SHA-256 for the broadcast. The last active operator key
   * is refused (409), so nobody locks every operator out: the active
   * operator keys are locked first, so two revocations racing cannot both
   * see the other's key as the one left.
   */
  async revoke(id: string): Promise<{ hashHex: string; key: ApiKeyView }> {
    return inTransaction(this.pool, async (tx) => {
      const { rows } = await tx.query<KeyRow & { key_hash: Buffer }>(`SELECT ${VIEW_COLUMNS}, key_hash FROM api_keys WHERE id = $1`, [id]);
      const row = rows[0];
      if (!row) throw new AppError('NOT_FOUND', 'no such API key');
      if (row.revoked_at === null && row.role === 'operator') {
        const { rows: active } = await tx.query<{ id: string }>(`SELECT id FROM api_keys WHERE role = 'operator' AND revoked_at IS NULL FOR UPDATE`);
        if (!active.some((k) => k.id !== id)) {
          throw new AppError('CONFLICT', 'this is the last active operator key: create another operator key first', { keyId: id });
        }
      }
      const { rows: revoked } = await tx.query<KeyRow>(
        `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${VIEW_COLUMNS}`,
        [id],
      );
      return { hashHex: row.key_hash.toString('hex'), key: viewOf(revoked[0]!) };
    });
  }
}

/** Tells every api node to forget a revoked key (they subscribe to API_KEY_REVOKED_CHANNEL). */
export async function announceRevocation(redis: Redis, hashHex: string): Promise<void> {
  await redis.publish(API_KEY_REVOKED_CHANNEL, hashHex);
}
