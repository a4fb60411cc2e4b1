/**
 * connectAmqp with several nodes (STAMPEDE_AMQP_URL listing a cluster's
 * nodes), against the real broker: a node that does not answer is passed
 * over for the next one whichever node the process prefers, and when none
 * answers the last node's error is thrown. (test/faults/rabbitmq-cluster.test.ts
 * kills a node of a real cluster under load.)
 */
import t from 'tap';
import { amqpNodes, connectAmqp } from '../../src/platform/messaging/amqp.js';
import { testConfig } from '../helpers/system.js';

const live = testConfig().STAMPEDE_AMQP_URL;
const dead = (port: number) => `amqp://stampede:stampede@127.0.0.1:${port}`;

t.test('a list with dead nodes connects to the living one, wherever it is in the list', async (t) => {
  t.same(amqpNodes(` ${dead(1)}, ${live} `), [dead(1), live]);
  for (const urls of [[dead(1), live], [live, dead(1)], [dead(1), dead(2), live]]) {
    // Several connections in a row: the node preferred first moves, the living one is always found.
    for (let i = 0; i < 3; i++) {
      const conn = await connectAmqp(urls.join(','), 'amqp-nodes test');
      const ch = await conn.createChannel();
      t.ok(await ch.checkExchange('amq.topic'), `connected through ${urls.map((u) => (u === live ? 'live' : 'dead')).join(',')}`);
      await conn.close();
    }
  }
});

t.test('no node answers: the error of the last one tried', async (t) => {
  await t.rejects(connectAmqp(`${dead(1)},${dead(2)}`, 'amqp-nodes test', 1_000), { code: 'ECONNREFUSED' });
  await t.rejects(connectAmqp('', 'amqp-nodes test'), /no AMQP URL/);
});
