/**
 * The children `stampede all` runs (src/roles/all.ts): one per role, and
 * STAMPEDE_API_PROCESSES api processes, each told its index.
 */
import t from 'tap';
import { childrenOf, ROLES } from '../../src/roles/all.js';

t.test('one child per role; the api as many times as asked, each with its index', async (t) => {
  const one = childrenOf(ROLES, 1, {});
  t.same(one.map((c) => c.name), ROLES);
  t.equal(one.find((c) => c.role === 'api')!.env.STAMPEDE_API_PROCESS_INDEX, '0');
  const three = childrenOf(ROLES, 3, {});
  t.same(three.map((c) => c.name), ['api', 'api-1', 'api-2', 'relay', 'worker', 'notifier', 'scheduler']);
  t.same(three.filter((c) => c.role === 'api').map((c) => c.env.STAMPEDE_API_PROCESS_INDEX), ['0', '1', '2']);
  t.equal(three.find((c) => c.role === 'worker')!.env.STAMPEDE_WORKER_QUEUES, 'orders,auctions', 'the worker still settles only');
});
