/** The operators' API: queues, dead letters and outboxes. */
import type { HttpServer } from '../platform/http/server.js';
import type { RouteKit } from '../platform/http/route-kit.js';
import type { OpsView } from './queues.js';

export function registerOpsRoutes(http: HttpServer, k: RouteKit, ops: OpsView): void {
  http.route('get', '/v1/ops/queues', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    return { status: 200, body: await ops.queues() };
  });
}
