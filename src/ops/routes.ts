/** The operators' API: queues, dead letters and outboxes; operator and seller API keys. */
import type { HttpServer } from '../platform/http/server.js';
import { shownOnce, type RouteKit } from '../platform/http/route-kit.js';
import { compileSchema, validate } from '../platform/http/validate.js';
import { API_KEY_ID, USER_ID } from '../platform/ids.js';
import type { OpsView } from './queues.js';
import { MAX_LABEL, type NewKey, type OperatorKeys } from './keys.js';

export function registerOpsRoutes(http: HttpServer, k: RouteKit, ops: OpsView, keys: OperatorKeys): void {
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

  http.route('get', '/v1/ops/queues', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    return { status: 200, body: await ops.queues() };
  });
  http.route('post', '/v1/ops/keys', async (ctx, raw) => {
    const p = await k.principalOf(ctx, ['operator']);
    const body = validate(keyBody, raw);
    return k.idempotent(ctx, p, body, async () => ({ status: 201, body: await keys.create(body) }), shownOnce('apiKey'));
  });
  http.route('get', '/v1/ops/keys', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    const { limit, after } = k.pageOf(ctx, API_KEY_ID);
    return { status: 200, body: await keys.list(limit, after) };
  });
  http.route('del', '/v1/ops/keys/:id', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    await keys.revoke(k.idParam(ctx.params[0]!, API_KEY_ID, 'API key'));
    return { status: 204, body: undefined };
  }, { body: false });
}
