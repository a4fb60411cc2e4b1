/**
 * Fault: a RabbitMQ cluster loses a node in the middle of a purchase storm.
 * The system runs against a local 3-node cluster (scripts/services.sh up
 * --rabbitmq-cluster) with STAMPEDE_AMQP_URL listing all three nodes. The
 * node killed (kill -9 of its Erlang VM) is the one the relay and the worker
 * are connected to and the one leading the orders queue: the quorum queue
 * elects a leader on a living node, the relay and the worker reconnect to a
 * living node on their own, and every accepted purchase settles exactly once.
 *
 * The killed node is started again at teardown (it rejoins from its data).
 */
import t from 'tap';
import { boot, sleep, testConfig, waitFor, type HttpAnswer } from '../helpers/system.js';
import { connectAmqp } from '../../src/platform/messaging/amqp.js';
import { allQueues } from '../../src/platform/messaging/topology.js';
import type { Config } from '../../src/platform/config.js';
import { assertSoldOnceEach, faultEnv, purchaseAll, rabbitCluster, statusCounts } from '../helpers/fault-kit.js';

const N = 600;
const PRICE = 1000;

async function deleteQueues(cfg: Config): Promise<void> {
  const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'fault test cleanup');
  const ch = await conn.createChannel();
  for (const q of allQueues(cfg.topology)) await ch.deleteQueue(q.queue);
  await conn.close();
}

interface QueueInfo { name: string; leader: string; members: string[]; online: string[] }

t.test(`a RabbitMQ node is killed during a storm of ${N} purchases: every 202 is settled exactly once`, async (t) => {
  const mq = await rabbitCluster();
  t.equal(mq.ports.length, 3, 'a 3-node cluster');
  let killed: number | undefined;
  t.teardown(async () => {
    if (killed !== undefined) await mq.up();
  });
  const env = faultEnv({ STAMPEDE_AMQP_URL: mq.urls, STAMPEDE_AMQP_PREFIX: 'stampede-fault-mqc', STAMPEDE_AMQP_MANAGEMENT_URL: 'off' });
  // A previous run's queues are deleted, so boot() declares them anew from this process's node: a quorum
  // queue's leader starts on the declaring client's node, the one the relay and the worker connect to.
  await deleteQueues(testConfig(env));
  const sys = await boot(t, { relay: true, worker: true, env });
  const queues = async (port: number): Promise<QueueInfo[]> => JSON.parse(await mq.ctl(port, 'list_queues', 'name', 'leader', 'members', 'online', '--formatter', 'json'));
  const ordersQueue = sys.cfg.topology.orders.queue;
  const nodeOfPort = (port: number) => `stampede-mq-${port}@`;

  const before = (await queues(mq.ports[0]!)).find((q) => q.name === ordersQueue);
  if (!before) throw new Error(`no ${ordersQueue} on the cluster`);
  t.equal(before.members.length, 3, 'the orders quorum queue is replicated on all three nodes');
  const leaderPort = mq.ports.find((p) => before.leader.startsWith(nodeOfPort(p)));
  if (leaderPort === undefined) throw new Error(`leader ${before.leader} is none of ${mq.ports.join(', ')}`);
  const connections: { port: number }[] = JSON.parse(await mq.ctl(mq.ports[0]!, 'list_connections', 'port', '--formatter', 'json'));
  const onLeader = connections.filter((c) => c.port === leaderPort).length;
  t.ok(onLeader >= 2, `the relay and the worker are connected to the leader's node, ${leaderPort} (${onLeader} of ${connections.length} connections)`);

  const sale = await sys.createSale({ stock: N, perBuyerLimit: 1, unitPrice: PRICE });
  const buyers = await sys.createBuyers(N);
  const first = await purchaseAll(sys, buyers.slice(0, 200), sale.id, 50);

  // The node dies while a paced stream of buyers keeps purchasing: the relay and the worker lose it mid-publish, mid-batch.
  killed = leaderPort;
  const dying = mq.kill(leaderPort);
  const during: HttpAnswer[] = [];
  for (const b of buyers.slice(200, 400)) {
    during.push(await sys.purchase(b, sale.id));
    await sleep(10);
  }
  await dying;
  const after = await purchaseAll(sys, buyers.slice(400), sale.id, 50);
  const answers = [...first, ...during, ...after];
  t.same(statusCounts(answers), { 202: N }, `all ${N} purchases accepted, before, during and after the node died`);
  const ids = answers.map((a) => a.body.purchaseId as string);

  const living = mq.ports.find((p) => p !== leaderPort)!;
  const moved = await waitFor('the orders queue to elect a leader on a living node', async () => {
    const q = (await queues(living)).find((x) => x.name === ordersQueue);
    return q && !q.leader.startsWith(nodeOfPort(leaderPort)) ? q : undefined;
  }, 30_000, 500);
  t.comment(`orders queue leader ${before.leader} -> ${moved.leader}`);
  t.equal(moved.online.length, 2, 'two members online');

  await sys.drained(sale.id, 90_000);
  const reconnected: { port: number }[] = JSON.parse(await mq.ctl(living, 'list_connections', 'port', '--formatter', 'json'));
  t.ok(reconnected.length >= 2 && reconnected.every((c) => c.port !== leaderPort), `the relay and the worker reconnected to living nodes (${reconnected.map((c) => c.port).join(', ')})`);
  const view = await waitFor('the outbox and the queues to empty', async () => {
    const r = await sys.operator('/v1/ops/queues');
    return r.status === 200 && r.body.outboxBacklog === 0 && r.body.queues.every((q: { messages: number }) => q.messages === 0) ? r.body : undefined;
  }, 30_000, 250);
  t.equal(view.deadLetters, 0, 'nothing dead-lettered');
  await assertSoldOnceEach(t, sys, sale.id, buyers, PRICE, 100_000);
  const { rows } = await sys.pool.query<{ purchase_id: string }>('SELECT purchase_id FROM orders WHERE sale_id = $1', [sale.id]);
  t.same(rows.map((r) => r.purchase_id).sort(), [...ids].sort(), 'exactly the accepted purchases became orders');
});
