/** Every SQL statement of the webhooks product: endpoints, their deliveries and each delivery's attempts. */
import type { Pool, PoolClient } from '../platform/db/pool.js';

type Db = Pool | PoolClient;

export interface EndpointRecord {
  id: string;
  ownerId: string | null;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  disabledReason: 'gone' | 'failing' | 'owner' | null;
  disabledAt: Date | null;
  failingSince: Date | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface EndpointRow {
  id: string;
  owner_id: string | null;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  disabled_reason: EndpointRecord['disabledReason'];
  disabled_at: Date | null;
  failing_since: Date | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const ENDPOINT_COLUMNS = 'id, owner_id, url, description, events, enabled, disabled_reason, disabled_at, failing_since, previous_secret_expires_at, created_at, updated_at';

const endpointOf = (r: EndpointRow): EndpointRecord => ({
  id: r.id, ownerId: r.owner_id, url: r.url, description: r.description, events: r.events, enabled: r.enabled, disabledReason: r.disabled_reason,
  disabledAt: r.disabled_at, failingSince: r.failing_since, previousSecretExpiresAt: r.previous_secret_expires_at, createdAt: r.created_at, updatedAt: r.updated_at,
});

/** Whose endpoints a caller sees: one owner's (a seller), or every one (undefined: an operator). */
export type Scope = { ownerId: string | null } | undefined;

/** `AND owner_id = $n` for a seller's scope; nothing for an operator's. */
function scoped(scope: Scope, params: unknown[]): string {
  if (!scope) return '';
  params.push(scope.ownerId);
  return ` AND owner_id IS NOT DISTINCT FROM $${params.length}`;
}

export async function insertEndpoint(db: Db, e: { id: string; ownerId: string | null; url: string; description: string; events: string[]; secret: string }): Promise<EndpointRecord> {
  const { rows } = await db.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, owner_id, url, description, events, secret) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${ENDPOINT_COLUMNS}`,
    [e.id, e.ownerId, e.url, e.description, e.events, e.secret],
  );
  return endpointOf(rows[0]!);
}

export async function findEndpoint(db: Db, id: string, scope: Scope): Promise<EndpointRecord | undefined> {
  const params: unknown[] = [id];
  const { rows } = await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1${scoped(scope, params)}`, params);
  return rows[0] && endpointOf(rows[0]);
}

export async function endpointsPage(db: Db, scope: Scope, limit: number, after: string | undefined): Promise<EndpointRecord[]> {
  const params: unknown[] = [limit, after ?? ''];
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id > $2${scoped(scope, params)} ORDER BY id LIMIT $1`, params,
  );
  return rows.map(endpointOf);
}

export interface EndpointChange {
  url?: string;
  events?: string[];
  description?: string;
  enabled?: boolean;
}

/** Applies a change; enabling clears why it was disabled and its failing streak, disabling records it as the owner's. */
export async function updateEndpoint(db: Db, id: string, scope: Scope, c: EndpointChange): Promise<EndpointRecord | undefined> {
  const params: unknown[] = [id, c.url ?? null, c.events ?? null, c.description ?? null, c.enabled ?? null];
  const { rows } = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints SET
       url = COALESCE($2, url), events = COALESCE($3, events), description = COALESCE($4, description),
       enabled = COALESCE($5, enabled),
       disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason WHEN $5 THEN NULL WHEN enabled THEN 'owner' ELSE disabled_reason END,
       disabled_at = CASE WHEN $5 IS NULL THEN disabled_at WHEN $5 THEN NULL WHEN enabled THEN now() ELSE disabled_at END,
       failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
       updated_at = now()
     WHERE id = $1${scoped(scope, params)} RETURNING ${ENDPOINT_COLUMNS}`,
    params,
  );
  return rows[0] && endpointOf(rows[0]);
}

export async function deleteEndpoint(db: Db, id: string, scope: Scope): Promise<boolean> {
  const params: unknown[] = [id];
  const { rowCount } = await db.query(`DELETE FROM webhook_endpoints WHERE id = $1${scoped(scope, params)}`, params);
  return (rowCount ?? 0) > 0;
}

/** A new secret; the current one becomes the previous, signing too for `overlapMs`. */
export async function rotateSecret(db: Db, id: string, scope: Scope, secret: string, overlapMs: number): Promise<EndpointRecord | undefined> {
  const params: unknown[] = [id, secret, overlapMs];
  const { rows } = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints SET previous_secret = secret, secret = $2,
       previous_secret_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
     WHERE id = $1${scoped(scope, params)} RETURNING ${ENDPOINT_COLUMNS}`,
    params,
  );
  return rows[0] && endpointOf(rows[0]);
}

// --- fan-out ------------------------------------------------------------------

/** The seller of each sale and auction named (absent: none, or an operator's). */
export async function sellersOf(db: Db, saleIds: string[], auctionIds: string[]): Promise<Map<string, string>> {
  const { rows } = await db.query<{ id: string; seller_id: string }>(
    `SELECT id, seller_id FROM sales WHERE id = ANY($1::text[]) AND seller_id IS NOT NULL
     UNION ALL SELECT id, seller_id FROM auctions WHERE id = ANY($2::text[]) AND seller_id IS NOT NULL`,
    [saleIds, auctionIds],
  );
  return new Map(rows.map((r) => [r.id, r.seller_id]));
}

export interface EventToFanOut {
  eventId: string;
  publicName: string;
  /** The seller whose event it is ('' : nobody's but the operators'). */
  sellerId: string;
}

/**
 * The endpoints each event goes to: its seller's that subscribe to it, and
 * every operator endpoint that does, enabled or not (a disabled one gets
 * its message made, not sent: `recover` sends it once the endpoint is back).
 */
export async function subscribersOf(db: Db, events: EventToFanOut[]): Promise<{ eventId: string; endpointId: string; enabled: boolean }[]> {
  const { rows } = await db.query<{ event_id: string; endpoint_id: string; enabled: boolean }>(
    `SELECT ev.event_id, e.id AS endpoint_id, e.enabled
     FROM unnest($1::text[], $2::text[], $3::text[]) AS ev (event_id, public_name, seller_id)
     JOIN webhook_endpoints e ON ev.public_name = ANY (e.events) AND (e.owner_id IS NULL OR e.owner_id = ev.seller_id)`,
    [events.map((e) => e.eventId), events.map((e) => e.publicName), events.map((e) => e.sellerId)],
  );
  return rows.map((r) => ({ eventId: r.event_id, endpointId: r.endpoint_id, enabled: r.enabled }));
}

export interface NewDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  body: string;
  acceptedAt: Date;
  /**
   * false: its endpoint is disabled. The message is made failed, with no
   * attempt and nothing sent, so the seller sees what they missed in its
   * deliveries and `recover` (or replay) sends it once they are back.
   */
  send: boolean;
}

/** One message per (event, endpoint): one made before (a redelivered event) stays as it is. Returns the ids made now to be sent. */
export async function insertDeliveries(db: Db, ds: NewDelivery[]): Promise<string[]> {
  if (ds.length === 0) return [];
  const { rows } = await db.query<{ id: string; status: string }>(
    `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, accepted_at, status, next_attempt_at)
     SELECT id, endpoint_id, event_id, event_type, body, accepted_at, CASE WHEN send THEN 'pending' ELSE 'failed' END, CASE WHEN send THEN now() END
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::boolean[])
       AS d (id, endpoint_id, event_id, event_type, body, accepted_at, send)
     ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id, status`,
    [ds.map((d) => d.id), ds.map((d) => d.endpointId), ds.map((d) => d.eventId), ds.map((d) => d.eventType), ds.map((d) => d.body), ds.map((d) => d.acceptedAt),
      ds.map((d) => d.send)],
  );
  return rows.filter((r) => r.status === 'pending').map((r) => r.id);
}

// --- sending ------------------------------------------------------------------

export interface DueDelivery {
  id: string;
  endpointId: string;
  url: string;
  body: string;
  failures: number;
  acceptedAt: Date;
  /** The secrets to sign with: the current, and the previous until it expires. */
  secrets: string[];
  ownerId: string | null;
}

/**
 * Leases the deliveries due now, oldest first: per enabled endpoint at most
 * `perEndpoint` minus what this worker has in flight to it (`busy`), and
 * `total` in all. A lease another worker holds is left alone; one that
 * passed (its worker died) is taken over.
 */
export async function leaseDue(db: Db, busy: Map<string, number>, perEndpoint: number, total: number, leaseMs: number): Promise<DueDelivery[]> {
  const { rows } = await db.query<{
    id: string; endpoint_id: string; url: string; body: string; failures: number; accepted_at: Date; secret: string; previous_secret: string | null; owner_id: string | null;
  }>(
    `WITH busy AS (SELECT * FROM unnest($1::text[], $2::int[]) AS b (endpoint_id, n)),
     due AS (
       SELECT x.id, x.next_attempt_at FROM webhook_endpoints e
       LEFT JOIN busy ON busy.endpoint_id = e.id
       CROSS JOIN LATERAL (
         SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
         WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now())
         ORDER BY d.next_attempt_at, d.id LIMIT GREATEST(0, $3 - COALESCE(busy.n, 0))
       ) x
       WHERE e.enabled
       ORDER BY x.next_attempt_at LIMIT $4
     )
     UPDATE webhook_deliveries d SET lease_until = now() + $5 * interval '1 millisecond'
     FROM due, webhook_endpoints e
     WHERE d.id = due.id AND e.id = d.endpoint_id AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until < now())
     RETURNING d.id, d.endpoint_id, e.url, d.body, d.failures, d.accepted_at, e.owner_id, e.secret,
       CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret`,
    [[...busy.keys()], [...busy.values()], perEndpoint, total, leaseMs],
  );
  return rows.map((r) => ({
    id: r.id, endpointId: r.endpoint_id, url: r.url, body: r.body, failures: r.failures, acceptedAt: r.accepted_at, ownerId: r.owner_id,
    secrets: r.previous_secret ? [r.secret, r.previous_secret] : [r.secret],
  }));
}

export interface AttemptRecord {
  at: Date;
  statusCode: number | null;
  latencyMs: number;
  response: string;
  error: string | null;
}

export interface RecordedAttempt extends AttemptRecord {
  deliveryId: string;
  status: 'succeeded' | 'failed' | 'pending';
  nextAttemptAt: Date | null;
}

/**
 * Records attempts, each with what it leaves its delivery (succeeded,
 * failed for good, or pending again at `nextAttemptAt`), in one UPDATE and
 * one INSERT however many there are. Returns the ids of the deliveries
 * recorded: one that is gone (its endpoint was deleted meanwhile) is not.
 */
export async function recordAttempts(tx: PoolClient, as: RecordedAttempt[]): Promise<Set<string>> {
  if (as.length === 0) return new Set();
  const { rows } = await tx.query<{ id: string }>(
    `WITH a AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::int[], $7::text[], $8::text[])
         AS a (delivery_id, status, next_attempt_at, at, status_code, latency_ms, response, error)
     ), updated AS (
       UPDATE webhook_deliveries d SET attempts = d.attempts + 1, failures = CASE WHEN a.status = 'succeeded' THEN d.failures ELSE d.failures + 1 END,
         status = a.status, next_attempt_at = a.next_attempt_at, lease_until = NULL,
         delivered_at = CASE WHEN a.status = 'succeeded' THEN a.at ELSE d.delivered_at END
       FROM a WHERE d.id = a.delivery_id RETURNING d.id, d.attempts
     ), inserted AS (
       INSERT INTO webhook_attempts (delivery_id, n, at, status_code, latency_ms, response, error)
       SELECT a.delivery_id, u.attempts, a.at, a.status_code, a.latency_ms, a.response, a.error FROM a JOIN updated u ON u.id = a.delivery_id
     )
     SELECT id FROM updated`,
    [as.map((a) => a.deliveryId), as.map((a) => a.status), as.map((a) => a.nextAttemptAt), as.map((a) => a.at), as.map((a) => a.statusCode),
      as.map((a) => a.latencyMs), as.map((a) => a.response.replace(/\u0000/g, '')), as.map((a) => a.error)],
  );
  return new Set(rows.map((r) => r.id));
}

/** Endpoints answered 2xx: their failing streaks end (rows locked in id order, so two workers never deadlock). */
export async function endpointsSucceeded(tx: PoolClient, endpointIds: string[]): Promise<void> {
  if (endpointIds.length === 0) return;
  await tx.query(
    `WITH l AS (SELECT id FROM webhook_endpoints WHERE id = ANY($1::text[]) AND failing_since IS NOT NULL ORDER BY id FOR UPDATE)
     UPDATE webhook_endpoints e SET failing_since = NULL FROM l WHERE e.id = l.id`,
    [endpointIds],
  );
}

/**
 * An endpoint failed at `at`: its streak starts (or goes on). Disabled as
 * `gone` (410) at once, or as `failing` once the streak is `disableAfterMs`
 * old. Returns the endpoint when this call disabled it.
 */
export async function endpointFailed(tx: PoolClient, endpointId: string, at: Date, gone: boolean, disableAfterMs: number): Promise<EndpointRecord | undefined> {
  const { rows } = await tx.query<EndpointRow & { disabled_now: boolean }>(
    `WITH before AS (SELECT id, enabled FROM webhook_endpoints WHERE id = $1 FOR UPDATE)
     UPDATE webhook_endpoints e SET
       failing_since = COALESCE(e.failing_since, $2),
       enabled = e.enabled AND NOT ($3 OR COALESCE(e.failing_since, $2) <= $2 - $4 * interval '1 millisecond'),
       disabled_reason = CASE WHEN NOT e.enabled THEN e.disabled_reason WHEN $3 THEN 'gone'
                              WHEN COALESCE(e.failing_since, $2) <= $2 - $4 * interval '1 millisecond' THEN 'failing' ELSE e.disabled_reason END,
       disabled_at = CASE WHEN e.enabled AND ($3 OR COALESCE(e.failing_since, $2) <= $2 - $4 * interval '1 millisecond') THEN $2 ELSE e.disabled_at END
     FROM before WHERE e.id = before.id
     RETURNING ${ENDPOINT_COLUMNS.split(', ').map((c) => `e.${c}`).join(', ')}, before.enabled AND NOT e.enabled AS disabled_now`,
    [endpointId, at, gone, disableAfterMs],
  );
  const r = rows[0];
  return r && r.disabled_now ? endpointOf(r) : undefined;
}

// --- the deliveries API ---------------------------------------------------------

export interface DeliveryRecord {
  id: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: AttemptRecord[];
  createdAt: Date;
  acceptedAt: Date;
  deliveredAt: Date | null;
  nextAttemptAt: Date | null;
}

interface DeliveryRow {
  id: string;
  event_id: string;
  event_type: string;
  status: DeliveryRecord['status'];
  created_at: Date;
  accepted_at: Date;
  delivered_at: Date | null;
  next_attempt_at: Date | null;
  attempts: { at: string; status_code: number | null; latency_ms: number; response: string; error: string | null }[];
}

const DELIVERY_SELECT = `SELECT d.id, d.event_id, d.event_type, d.status, d.created_at, d.accepted_at, d.delivered_at, d.next_attempt_at,
  COALESCE((SELECT json_agg(json_build_object('at', a.at, 'status_code', a.status_code, 'latency_ms', a.latency_ms, 'response', a.response, 'error', a.error) ORDER BY a.n)
            FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS attempts
  FROM webhook_deliveries d`;

const deliveryOf = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id, eventId: r.event_id, eventType: r.event_type, status: r.status, createdAt: r.created_at, acceptedAt: r.accepted_at,
  deliveredAt: r.delivered_at, nextAttemptAt: r.status === 'pending' ? r.next_attempt_at : null,
  attempts: r.attempts.map((a) => ({ at: new Date(a.at), statusCode: a.status_code, latencyMs: a.latency_ms, response: a.response, error: a.error })),
});

/** An endpoint's deliveries, newest first, optionally of one status, before a cursor. */
export async function deliveriesPage(db: Db, endpointId: string, status: DeliveryRecord['status'] | undefined, limit: number, before: string | undefined): Promise<DeliveryRecord[]> {
  const { rows } = await db.query<DeliveryRow>(
    `${DELIVERY_SELECT} WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2) AND ($3::text IS NULL OR d.id < $3)
     ORDER BY d.id DESC LIMIT $4`,
    [endpointId, status ?? null, before ?? null, limit],
  );
  return rows.map(deliveryOf);
}

export async function findDelivery(db: Db, endpointId: string, deliveryId: string): Promise<DeliveryRecord | undefined> {
  const { rows } = await db.query<DeliveryRow>(`${DELIVERY_SELECT} WHERE d.endpoint_id = $1 AND d.id = $2`, [endpointId, deliveryId]);
  return rows[0] && deliveryOf(rows[0]);
}

/** Sends a delivery again (same id, as a retry): pending now, at the start of the retry schedule. */
export async function replayDelivery(db: Db, endpointId: string, deliveryId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE webhook_deliveries SET status = 'pending', failures = 0, next_attempt_at = now() WHERE endpoint_id = $1 AND id = $2`,
    [endpointId, deliveryId],
  );
  return (rowCount ?? 0) > 0;
}

/** Sends again every delivery of the endpoint that failed for good and was made since `since`; returns how many. */
export async function recoverFailed(db: Db, endpointId: string, since: Date): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE webhook_deliveries SET status = 'pending', failures = 0, next_attempt_at = now()
     WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2`,
    [endpointId, since],
  );
  return rowCount ?? 0;
}

/**
 * Deletes at most `limit` messages made before `before` that are done (delivered, or failed for good, which
 * includes those made for a disabled endpoint), with their attempts; pending ones are never deleted. Returns how many.
 */
export async function deleteDoneDeliveries(db: Db, before: Date, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM webhook_deliveries WHERE id = ANY (ARRAY(
       SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2))`,
    [before, limit],
  );
  return rowCount ?? 0;
}
