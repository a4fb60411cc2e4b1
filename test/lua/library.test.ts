/**
 * The scripts as one Redis Functions library: loaded once per client, named
 * by its content, and loaded again when Redis has lost it.
 */
import t from 'tap';
import { createRedis } from '../../src/platform/redis/client.js';
import { loadLibrary, runScript, scriptLibrary } from '../../src/platform/redis/functions.js';
import { readLiveSale, loadSale } from '../../src/sales/scripts.js';
import { newSaleId } from '../../src/platform/ids.js';
import { testConfig } from '../helpers/system.js';

const cfg = testConfig();

type LibraryInfo = [string, string, string, string, string, [string, string, string, unknown, string, unknown][]];

t.test('every script is a function of one library named by its content hash', async (t) => {
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'library-test' });
  t.teardown(() => redis.quit());
  const lib = scriptLibrary();
  await loadLibrary(redis);
  const [info] = (await redis.function('LIST', 'LIBRARYNAME', lib.name)) as LibraryInfo[];
  t.ok(info, 'the library is on the server');
  const names = info![5].map((f) => f[1]).sort();
  t.same(names, [...lib.scripts.values()].map((s) => s.fn).sort(), 'one function per script');
  t.ok([...lib.scripts.values()].every((s) => s.fn.endsWith(lib.name.slice('stampede_'.length))), 'each function carries the library hash');
  const second = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'library-test-2' });
  t.teardown(() => second.quit());
  await loadLibrary(second).then(() => t.pass('a second client loads it again without error'));
});

t.test('a client whose server lost the library loads it again and the call succeeds', async (t) => {
  const redis = createRedis(cfg.STAMPEDE_REDIS_URL, { name: 'library-test-3' });
  t.teardown(() => redis.quit());
  const s = { id: newSaleId(), status: 'open' as const, startsAt: Date.now() - 1000, endsAt: Date.now() + 60_000, perBuyerLimit: 1, unitPrice: 100, currency: 'EUR', stock: 5 };
  t.equal(await loadSale(redis, s, 0), true, 'called once: the library is loaded');
  await redis.function('DELETE', scriptLibrary().name);
  t.same(await readLiveSale(redis, s.id), { status: 'open', stock: 5, available: 5, reserved: 0, sold: 0 });
  t.equal(await loadSale(redis, { ...s, id: newSaleId() }, 0), true, 'the next call found no function, loaded the library and ran');
  await t.rejects(runScript(redis, 'loadSale', ['only-one-key'], []), /loadSale takes 2 keys, got 1/, 'the key count is still checked');
});
