/**
 * What a Redis Cluster changes under the platform's Redis helpers, proven on
 * the real engine (npm run test:cluster runs this file on the 3-master
 * cluster; the first pass on one node): plain pub/sub reaches a subscriber
 * from every master, a subscriber whose connection is lost is told it was
 * (the api reloads what it may have missed), and the reconciliation's
 * WATCH + MULTI repairs stay in one slot.
 */
import t from 'tap';
import { channelSubscriber, isCluster, masters, unwatch } from '../../src/platform/redis/client.js';
import { repairKeys } from '../../src/ops/reconcile-sales.js';
import { auctionKeys } from '../../src/auctions/keys.js';
import { newSaleId } from '../../src/platform/ids.js';
import { testConfig, testRedis, waitFor } from '../helpers/system.js';

const cfg = testConfig();
const CHANNEL = 'stampede-test:cluster-probe';

t.test('a message published on any master reaches the subscriber; a lost subscription connection calls onReconnected, and messages flow again', async (t) => {
  const redis = testRedis(t, 'cluster-test');
  const nodes = await masters(redis);
  t.equal(nodes.length, isCluster(redis) ? 3 : 1, 'every master of the test Redis');
  const got: string[] = [];
  let reconnections = 0;
  const subscriber = channelSubscriber(cfg, 'cluster-test-sub', CHANNEL, (m) => got.push(m), () => reconnections++);
  t.teardown(() => subscriber.quit());
  await subscriber.subscribe();

  const publishFromEach = async (round: string) => {
    const sent = nodes.map((n) => `${round}@${n.options.port}`);
    for (const [i, node] of nodes.entries()) await node.publish(CHANNEL, sent[i]!);
    await waitFor(`the ${round} messages`, async () => sent.every((m) => got.includes(m)), 5_000);
    t.pass(`${round}: the message of each of the ${nodes.length} master(s) arrived`);
  };
  await publishFromEach('first');
  t.equal(reconnections, 0, 'no reconnection yet');

  // The subscriber's socket cut on the server side, as a node restart or a network loss would.
  const killed = async () => {
    let n = 0;
    for (const node of nodes) n += Number(await node.client('KILL', 'TYPE', 'pubsub'));
    return n;
  };
  t.ok((await killed()) >= 1, 'the subscription connection was killed');
  await waitFor('onReconnected after the kill', async () => reconnections === 1, 10_000);
  t.pass('onReconnected called once');
  await publishFromEach('after the kill');

  // The whole client reconnecting (as after a failover): told again, and subscribed again.
  subscriber.disconnect(true);
  await waitFor('onReconnected after the client reconnected', async () => reconnections === 2, 10_000);
  t.pass('onReconnected called after the whole client reconnected');
  await publishFromEach('after the client reconnected');
  t.ok((await killed()) >= 1, 'the new subscription connection was killed');
  await waitFor('onReconnected after the second kill', async () => reconnections === 3, 10_000);
  await publishFromEach('after the second kill');
});

t.test("a sale's counter repair and an auction's rebuild WATCH and write keys of one slot", async (t) => {
  const redis = testRedis(t, 'cluster-test-slots');
  const saleId = newSaleId();
  const auctionId = 'auc_' + saleId.slice(4);
  const sets: [string, string[]][] = [
    ['sale repair', repairKeys(saleId)],
    ['auction rebuild', [auctionKeys.auction(auctionId), auctionKeys.bids(auctionId), auctionKeys.book(auctionId), auctionKeys.standing(auctionId), auctionKeys.history(auctionId), auctionKeys.mine(auctionId, 'usr_x')]],
  ];
  for (const [what, keys] of sets) {
    if (isCluster(redis)) {
      const [node] = await masters(redis);
      const slots = new Set(await Promise.all(keys.map((k) => node!.cluster('KEYSLOT', k))));
      t.equal(slots.size, 1, `${what}: its ${keys.length} keys hash to one slot (CLUSTER KEYSLOT)`);
    }
    // The repair's shape on the real engine: WATCH them, then one MULTI over them (CROSSSLOT on a cluster otherwise).
    await redis.watch(...keys);
    const written = await keys.reduce((m, k) => m.set(k, 'probe'), redis.multi()).exec();
    t.same(written?.map(([err]) => err), keys.map(() => null), `${what}: WATCH + MULTI over them is accepted`);
    await redis.del(...keys);
  }
  // An UNWATCH reaches the connection that WATCHed: a transaction after it is not failed by a key changed since.
  const [watched] = sets[0]![1];
  await redis.watch(watched!);
  await unwatch(redis);
  await redis.set(watched!, 'changed by another client');
  const after = await redis.multi().set(watched!, 'mine').exec();
  t.not(after, null, 'the transaction after unwatch() runs');
  await redis.del(watched!);
});
