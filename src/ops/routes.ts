/** The operators' API: queues and outboxes, the dead letters (list, read, replay, purge), operator and seller API keys, reconciliation. */
import { AppError } from '../platform/errors.js';
import type { HttpServer, RequestContext } from '../platform/http/server.js';
import { shownOnce, type RouteKit } from '../platform/http/route-kit.js';
import { compileSchema, validate } from '../platform/http/validate.js';
import { API_KEY_ID, USER_ID } from '../platform/ids.js';
import type { OpsView } from './queues.js';
import type { DeadLetters } from './dead-letters.js';
import { MAX_LABEL, type NewKey, type OperatorKeys } from './keys.js';
import type { Reconciliation } from './reconciliation.js';
import { opsDocs, reconciliationDocs, sellerKeyDocs } from './api-doc.js';

const DEAD_LETTER_ID = /^[1-9]\d{0,15}$/;
const PURGE_SCHEMA = {
  type: 'object', additionalProperties: false, required: ['confirm'],
  properties: {
    confirm: { type: 'string', maxLength: 40, description: 'The queue\'s name again: a purge cannot be undone.' },
    upTo: { type: 'integer', minimum: 1, maximum: 9_007_199_254_740_991, description: 'Purge only dead letters up to this id (the newest the operator saw).' },
  },
};

export function registerOpsRoutes(http: HttpServer, k: RouteKit, ops: OpsView, deadLetters: DeadLetters, keys: OperatorKeys): void {
  const operator = (ctx: RequestContext) => k.principalOf(ctx, ['operator']);
  const idOf = (raw: string) => Number(k.idParam(raw, DEAD_LETTER_ID, 'dead letter'));
  const purgeBody = compileSchema<{ confirm: string; upTo?: number }>(PURGE_SCHEMA);
  const keyBody = compileSchema<NewKey>({
    type: 'object',
    properties: {
      role: { type: 'string', enum: ['operator', 'seller'] },
      userId: { type: 'string', pattern: USER_ID.source },
      label: { type: 'string', minLength: 1, maxLength: MAX_LABEL },
    },
    required: ['role', 'label'],
    additionalProperties: false,
  });
  const doc = opsDocs({ purge: purgeBody, key: keyBody });

  http.route('get', '/v1/ops/queues', async (ctx) => {
    await operator(ctx);
    return { status: 200, body: await ops.queues() };
  }, { doc: doc.queues });
  http.route('get', '/v1/ops/dead-letters', async (ctx) => {
    await operator(ctx);
    return { status: 200, body: { queues: await deadLetters.overview((await ops.queues()).queues) } };
  }, { doc: doc.deadLetters });
  http.route('get', '/v1/ops/dead-letters/:queue', async (ctx) => {
    await operator(ctx);
    const { limit, after } = k.pageOf(ctx, DEAD_LETTER_ID);
    const status = new URLSearchParams(ctx.query).get('status') ?? 'waiting';
    if (status !== 'waiting' && status !== 'all') throw AppError.invalid('query:status', 'is invalid', 'status must be waiting or all');
    return { status: 200, body: await deadLetters.list(ctx.params[0]!, limit, after === undefined ? undefined : Number(after), status === 'waiting') };
  }, { doc: doc.deadLetterList });
  http.route('get', '/v1/ops/dead-letters/:queue/:id', async (ctx) => {
    await operator(ctx);
    return { status: 200, body: await deadLetters.get(ctx.params[0]!, idOf(ctx.params[1]!)) };
  }, { doc: doc.deadLetter });
  http.route('post', '/v1/ops/dead-letters/:queue/:id/replay', async (ctx) => {
    await operator(ctx);
    await deadLetters.replayOne(ctx.params[0]!, idOf(ctx.params[1]!));
    return { status: 200, body: { replayed: 1 } };
  }, { body: false, doc: doc.replayOne });
  http.route('post', '/v1/ops/dead-letters/:queue/replay', async (ctx) => {
    await operator(ctx);
    return { status: 200, body: { replayed: await deadLetters.replayAll(ctx.params[0]!) } };
  }, { body: false, doc: doc.replayAll });
  http.route('post', '/v1/ops/dead-letters/:queue/purge', async (ctx, raw) => {
    await operator(ctx);
    const name = ctx.params[0]!;
    deadLetters.concernOf(name);
    const body = validate(purgeBody, raw ?? null);
    if (body.confirm !== name) throw AppError.invalid('/confirm', 'does not match', `confirm must repeat the queue's name (${name}): a purge cannot be undone`);
    return { status: 200, body: { purged: await deadLetters.purge(name, body.upTo) } };
  }, { doc: doc.purge });
  http.route('post', '/v1/ops/keys', async (ctx, raw) => {
    const p = await k.principalOf(ctx, ['operator']);
    const body = validate(keyBody, raw);
    return k.idempotent(ctx, p, body, async () => ({ status: 201, body: await keys.create(body) }), shownOnce('apiKey'));
  }, { doc: doc.createKey });
  http.route('get', '/v1/ops/keys', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    const { limit, after } = k.pageOf(ctx, API_KEY_ID);
    return { status: 200, body: await keys.list(limit, after) };
  }, { doc: doc.listKeys });
  http.route('del', '/v1/ops/keys/:id', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    await keys.revoke(k.idParam(ctx.params[0]!, API_KEY_ID, 'API key'));
    return { status: 204, body: undefined };
  }, { body: false, doc: doc.revokeKey });
}

/** A seller's own API keys (`/v1/sellers/{id}/keys`): its seller key for its own, an operator's for any seller's. */
export function registerSellerKeyRoutes(http: HttpServer, k: RouteKit, keys: OperatorKeys): void {
  const either = (ctx: RequestContext) => k.principalOf(ctx, ['operator', 'seller']);
  const sellerOf = (raw: string) => k.idParam(raw, USER_ID, 'seller');
  const body = compileSchema<{ label: string }>({
    type: 'object',
    properties: { label: { type: 'string', minLength: 1, maxLength: MAX_LABEL } },
    required: ['label'],
    additionalProperties: false,
  });
  const doc = sellerKeyDocs({ key: body });
  http.route('get', '/v1/sellers/:id/keys', async (ctx) => {
    const p = await either(ctx);
    const sellerId = sellerOf(ctx.params[0]!);
    const { limit, after } = k.pageOf(ctx, API_KEY_ID);
    return { status: 200, body: await keys.listForSeller(sellerId, p, limit, after) };
  }, { doc: doc.list });
  http.route('post', '/v1/sellers/:id/keys', async (ctx, raw) => {
    const p = await either(ctx);
    const sellerId = sellerOf(ctx.params[0]!);
    const { label } = validate(body, raw);
    return k.idempotent(ctx, p, { label }, async () => ({ status: 201, body: await keys.createForSeller(sellerId, p, label) }), shownOnce('apiKey'));
  }, { doc: doc.create });
  http.route('del', '/v1/sellers/:id/keys/:keyId', async (ctx) => {
    const p = await either(ctx);
    const sellerId = sellerOf(ctx.params[0]!);
    await keys.revokeForSeller(sellerId, p, k.idParam(ctx.params[1]!, API_KEY_ID, 'API key'));
    return { status: 204, body: undefined };
  }, { body: false, doc: doc.revoke });
}

/** Reconciliation: the latest report, and a run now (it answers when the run is done, with its report). */
export function registerReconciliationRoutes(http: HttpServer, k: RouteKit, reconciliation: Reconciliation): void {
  http.route('get', '/v1/ops/reconciliation', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    const latest = await reconciliation.latest();
    if (!latest) throw new AppError('NOT_FOUND', 'no reconciliation has run yet (stampede reconcile, or POST /v1/ops/reconciliation)');
    return { status: 200, body: latest };
  }, { doc: reconciliationDocs.latest });
  http.route('post', '/v1/ops/reconciliation', async (ctx) => {
    const p = await k.principalOf(ctx, ['operator']);
    // A retried POST with its Idempotency-Key answers the run it made, not a second run.
    return k.idempotent(ctx, p, {}, async () => ({ status: 201, body: await reconciliation.run('api') }));
  }, { body: false, doc: reconciliationDocs.run });
}
