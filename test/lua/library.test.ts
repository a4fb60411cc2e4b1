/**
 * The scripts as one Redis Functions library: loaded once per client, named
 * by its content, and loaded again when Redis has lost it.
 */
import t from 'tap';
import { createRedis, masters } from '../../src/platform/redis/client.js';
import { loadLibrary, runScript, scriptLibrary } from '../../src/platform/redis/functions.js';
import { readLiveSale, loadSale } from '../../src/sales/scripts.js';
import { newSaleId } from '../../src/platform/ids.js';
import { testConfig } from '../helpers/system.js';

const cfg = testConfig();

type LibraryInfo = [string, string, string, string, string, [string, string, string, unknown, string, unknown][]];

t.test('every script is a function of one library named by its content hash', async (t) => {
  const lib = scriptLibrary();
  const before = createRedis(cfg, { name: 'library-test-0' });
  await loadLibrary(before);
  for (const node of await masters(before)) await node.function('DELETE', lib.name);
  await before.quit();
  const redis = createRedis(cfg, { name: 'library-test' });
  t.teardown(() => redis.quit());
  const nodes = await masters(redis);
  await loadLibrary(redis);
  // One node, or every master of a cluster (Redis does not spread functions across shards).
  for (const node of nodes) {
    const [info] = (await node.function('LIST', 'LIBRARYNAME', lib.name)) as LibraryInfo[];
    t.ok(info, `the library is on ${node.options.host}:${node.options.port}`);
    const names = info![5].map((f) => f[1]).sort();
    t.same(names, [...lib.scripts.values()].map((s) => s.fn).sort(), 'one function per script');
  }
  t.ok([...lib.scripts.values()].every((s) => s.fn.endsWith(lib.name.slice('stampede_'.length))), 'each function carries the library hash');
  const second = createRedis(cfg, { name: 'library-test-2' });
  t.teardown(() => second.quit());
  await loadLibrary(second).then(() => t.pass('a second client loads it again without error'));
});

t.test('a client whose server lost the library loads it again and the call succeeds', async (t) => {
  const redis = createRedis(cfg, { name: 'library-test-3' });
  t.teardown(() => redis.quit());
  const s = { id: newSaleId(), status: 'open' as const, startsAt: Date.now() - 1000, endsAt: Date.now() + 60_000, perBuyerLimit: 1, unitPrice: 100, currency: 'EUR', stock: 5 };
  t.equal(await loadSale(redis, s, 0), true, 'called once: the library is loaded');
  for (const node of await masters(redis)) await node.function('DELETE', scriptLibrary().name);
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 5, available: 5, reserved: 0, sold: 0 });
  t.equal(await loadSale(redis, { ...s, id: newSaleId() }, 0), true, 'the next call found no function, loaded the library and ran');
  await t.rejects(runScript(redis, 'loadSale', ['only-one-key'], []), /loadSale takes 2 keys, got 1/, 'the key count is still checked');
});

t.test('one master that lost the library (a restart without persistence) gets it back on the first call there', async (t) => {
  const redis = createRedis(cfg, { name: 'library-test-4' });
  t.teardown(() => redis.quit());
  const nodes = await masters(redis);
  const s = { id: newSaleId(), status: 'open' as const, startsAt: Date.now() - 1000, endsAt: Date.now() + 60_000, perBuyerLimit: 1, unitPrice: 100, currency: 'EUR', stock: 5 };
  await loadLibrary(redis);
  // Each master in turn loses it; a sale whose slot that master holds is then loaded through this client.
  for (const [i, node] of nodes.entries()) {
    await node.function('DELETE', scriptLibrary().name);
    let id = newSaleId();
    while (!(await ownsSlot(node, `{sale:${id}}`))) id = newSaleId();
    t.equal(await loadSale(redis, { ...s, id }, 0), true, `master ${i + 1} of ${nodes.length}: the call found no function, loaded the library and ran`);
    const [info] = (await node.function('LIST', 'LIBRARYNAME', scriptLibrary().name)) as LibraryInfo[];
    t.ok(info, 'that master has the library again');
  }
});

/** True when `node` is the master of `key`'s slot (always, on one node). */
async function ownsSlot(node: import('ioredis').Redis, key: string): Promise<boolean> {
  const mode = ((await node.info('cluster')) ?? '').includes('cluster_enabled:1');
  if (!mode) return true;
  const slot = Number(await node.call('CLUSTER', 'KEYSLOT', key));
  const ranges = (await node.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  const me = node.options.port;
  return ranges.some(([from, to, [, port]]) => slot >= from && slot <= to && port === me);
}
