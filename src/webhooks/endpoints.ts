/**
 * Sellers' webhook endpoints: a seller registers a URL and the public event
 * types it wants, gets a signing secret shown once, and may change, rotate,
 * list, delete, replay and recover only its own; an operator, any (and an
 * operator's own endpoints get every seller's events).
 *
 * A URL is checked when it is registered or changed: http or https (https
 * only in production), no credentials, and a host whose every address is
 * public (ssrf.ts) unless STAMPEDE_WEBHOOK_ALLOW_PRIVATE is true. The
 * worker checks it again before every delivery.
 */
import type { Principal } from '../platform/auth/api-keys.js';
import { AppError } from '../platform/errors.js';
import { newWebhookId } from '../platform/ids.js';
import type { Pool } from '../platform/db/pool.js';
import { newWebhookSecret } from './signing.js';
import { RefusedTargetError, resolveTarget } from './ssrf.js';
import {
  deleteEndpoint, deliveriesPage, endpointsPage, findDelivery, findEndpoint, insertEndpoint, recoverFailed, replayDelivery, rotateSecret, updateEndpoint,
  type DeliveryRecord, type EndpointChange, type EndpointRecord, type Scope,
} from './repository.js';

export interface EndpointSettings {
  allowPrivate: boolean;
  httpsOnly: boolean;
  secretOverlapMs: number;
}

export interface EndpointView {
  id: string;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  disabledReason: EndpointRecord['disabledReason'];
  disabledAt: string | null;
  failingSince: string | null;
  ownerId: string | null;
  /** Until when deliveries are signed with the previous secret too (null: no rotation in progress). */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AttemptView {
  at: string;
  statusCode: number | null;
  latencyMs: number;
  response: string;
  error: string | null;
}

export interface DeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  status: DeliveryRecord['status'];
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
  attempts: AttemptView[];
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export const endpointViewOf = (e: EndpointRecord): EndpointView => ({
  id: e.id, url: e.url, description: e.description, events: e.events, enabled: e.enabled, disabledReason: e.disabledReason, disabledAt: iso(e.disabledAt),
  failingSince: iso(e.failingSince), ownerId: e.ownerId,
  previousSecretExpiresAt: e.previousSecretExpiresAt && e.previousSecretExpiresAt.getTime() > Date.now() ? e.previousSecretExpiresAt.toISOString() : null,
  createdAt: e.createdAt.toISOString(), updatedAt: e.updatedAt.toISOString(),
});

const deliveryViewOf = (d: DeliveryRecord): DeliveryView => ({
  id: d.id, eventId: d.eventId, eventType: d.eventType, status: d.status, createdAt: d.createdAt.toISOString(), deliveredAt: iso(d.deliveredAt),
  nextAttemptAt: iso(d.nextAttemptAt),
  attempts: d.attempts.map((a) => ({ at: a.at.toISOString(), statusCode: a.statusCode, latencyMs: a.latencyMs, response: a.response, error: a.error })),
});

/** An operator sees every endpoint; a seller its own. */
const scopeOf = (by: Principal): Scope => (by.role === 'operator' ? undefined : { ownerId: by.userId });

export class WebhookEndpoints {
  constructor(private readonly pool: Pool, private readonly settings: EndpointSettings) {}

  /** Refuses a URL Stampede must not send to (answered as `/url` at fault). */
  async checkUrl(raw: string): Promise<string> {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw AppError.invalid('/url', 'is not a URL');
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw AppError.invalid('/url', 'must be an http or https URL');
    if (this.settings.httpsOnly && u.protocol !== 'https:') throw AppError.invalid('/url', 'must be https', '/url must be https in production');
    if (u.username !== '' || u.password !== '') throw AppError.invalid('/url', 'must not carry credentials');
    if (u.hash !== '') throw AppError.invalid('/url', 'must not have a fragment');
    try {
      await resolveTarget(u.hostname, this.settings.allowPrivate);
    } catch (err) {
      if (err instanceof RefusedTargetError) throw AppError.invalid('/url', 'is refused', `/url is refused: ${err.message}`);
      throw err;
    }
    return u.toString();
  }

  async register(input: { url: string; events: string[]; description?: string }, by: Principal): Promise<EndpointView & { secret: string }> {
    const url = await this.checkUrl(input.url);
    const secret = newWebhookSecret();
    const e = await insertEndpoint(this.pool, {
      id: newWebhookId(), ownerId: by.role === 'seller' ? by.userId : null, url, description: input.description ?? '', events: [...new Set(input.events)], secret,
    });
    return { ...endpointViewOf(e), secret };
  }

  async list(by: Principal, limit: number, after: string | undefined): Promise<{ items: EndpointView[]; next: string | null }> {
    const rows = await endpointsPage(this.pool, scopeOf(by), limit + 1, after);
    const items = rows.slice(0, limit).map(endpointViewOf);
    return { items, next: rows.length > limit ? items[items.length - 1]!.id : null };
  }

  private async own(id: string, by: Principal): Promise<EndpointRecord> {
    const e = await findEndpoint(this.pool, id, scopeOf(by));
    if (!e) throw new AppError('NOT_FOUND', 'no such webhook endpoint');
    return e;
  }

  async get(id: string, by: Principal): Promise<EndpointView> {
    return endpointViewOf(await this.own(id, by));
  }

  async change(id: string, c: EndpointChange, by: Principal): Promise<EndpointView> {
    await this.own(id, by);
    const url = c.url === undefined ? undefined : await this.checkUrl(c.url);
    const e = await updateEndpoint(this.pool, id, scopeOf(by), { ...c, url, events: c.events && [...new Set(c.events)] });
    if (!e) throw new AppError('NOT_FOUND', 'no such webhook endpoint');
    return endpointViewOf(e);
  }

  async remove(id: string, by: Principal): Promise<void> {
    if (!(await deleteEndpoint(this.pool, id, scopeOf(by)))) throw new AppError('NOT_FOUND', 'no such webhook endpoint');
  }

  async rotate(id: string, by: Principal): Promise<EndpointView & { secret: string }> {
    const secret = newWebhookSecret();
    const e = await rotateSecret(this.pool, id, scopeOf(by), secret, this.settings.secretOverlapMs);
    if (!e) throw new AppError('NOT_FOUND', 'no such webhook endpoint');
    return { ...endpointViewOf(e), secret };
  }

  async deliveries(id: string, by: Principal, q: { status?: DeliveryRecord['status']; limit: number; before?: string }): Promise<{ items: DeliveryView[]; next: string | null }> {
    await this.own(id, by);
    const rows = await deliveriesPage(this.pool, id, q.status, q.limit + 1, q.before);
    const items = rows.slice(0, q.limit).map(deliveryViewOf);
    return { items, next: rows.length > q.limit ? items[items.length - 1]!.id : null };
  }

  async replay(id: string, deliveryId: string, by: Principal): Promise<DeliveryView> {
    await this.own(id, by);
    if (!(await replayDelivery(this.pool, id, deliveryId))) throw new AppError('NOT_FOUND', 'no such delivery');
    return deliveryViewOf((await findDelivery(this.pool, id, deliveryId))!);
  }

  async recover(id: string, since: Date, by: Principal): Promise<{ recovered: number }> {
    await this.own(id, by);
    return { recovered: await recoverFailed(this.pool, id, since) };
  }
}
