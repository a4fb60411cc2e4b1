/**
 * The purchase path end to end: api -> Lua -> outbox -> relay -> RabbitMQ ->
 * orders worker -> Postgres, with everything real.
 */
import t from 'tap';
import { boot, waitFor } from '../helpers/system.js';
import { auditSale } from '../helpers/invariants.js';
import { masters, type Redis } from '../../src/platform/redis/client.js';
import { saleKeys } from '../../src/sales/keys.js';

t.test('2,000 parallel buyers, 100 items: exactly 100 accepted and settled, never oversold', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 100, perBuyerLimit: 1, unitPrice: 2500 });
  const buyers = await sys.createBuyers(2000);
  const answers = await Promise.all(buyers.map((b) => sys.purchase(b, sale.id)));
  const statuses = new Map<number, number>();
  for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  t.equal(statuses.get(202), 100, '100 accepted');
  t.equal(statuses.get(409), 1900, 'everyone else refused');
  t.ok(answers.filter((a) => a.status === 409).every((a) => a.body.code === 'SOLD_OUT'), 'refusals say SOLD_OUT');
  t.equal(answers.filter((a) => a.status >= 500).length, 0, 'no 5xx');
  const accepted = answers.filter((a) => a.status === 202);
  t.ok(accepted.every((a) => /^pur_/.test(a.body.purchaseId) && a.body.status === 'pending'), 'each 202 names a pending purchase');

  await sys.drained(sale.id);
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, [], 'no invariant broken');
  t.equal(audit.orders, 100, 'exactly 100 orders in Postgres');
  t.equal(audit.confirmedOrders, 100);
  t.equal(audit.purchaseDebits, 100, 'one debit per order');
  t.same(audit.live, { stock: 100, available: 0, reserved: 0, sold: 100 });
  const { rows } = await sys.pool.query<{ balance: number; n: number }>(
    `SELECT balance, count(*)::int AS n FROM wallets WHERE user_id = ANY($1) GROUP BY balance ORDER BY balance`,
    [buyers],
  );
  t.same(rows, [{ balance: 97_500, n: 100 }, { balance: 100_000, n: 1900 }], 'exactly the 100 winners were charged, once');

  const first = accepted[0]!.body.purchaseId as string;
  const winner = buyers[answers.indexOf(accepted[0]!)]!;
  const status = await waitFor('confirmed status', async () => {
    const r = await fetch(`${sys.url}/v1/purchases/${first}`, { headers: { authorization: `Bearer ${sys.token(winner)}` } });
    const body = await r.json();
    return body.status === 'confirmed' ? body : undefined;
  });
  t.match(status, { purchaseId: first, saleId: sale.id, quantity: 1, amount: 2500, currency: 'EUR', status: 'confirmed' });
  const other = await fetch(`${sys.url}/v1/purchases/${first}`, { headers: { authorization: `Bearer ${sys.token(buyers.find((b) => b !== winner)!)}` } });
  t.equal(other.status, 404, "another buyer cannot see it");
});

t.test('one buyer firing 200 parallel requests gets at most its limit', async (t) => {
  const sys = await boot(t, { relay: true, worker: true, env: { STAMPEDE_PURCHASE_RATE_MAX: '1000' } });
  const sale = await sys.createSale({ stock: 1000, perBuyerLimit: 3 });
  const [buyer] = await sys.createBuyers(1);
  let accepted = 0;
  const codes = new Set<string>();
  // Waves of 200 until the limit is certainly reached: the in-flight rule refuses most of each wave.
  for (let wave = 0; wave < 10; wave++) {
    const answers = await Promise.all(Array.from({ length: 200 }, () => sys.purchase(buyer!, sale.id)));
    accepted += answers.filter((a) => a.status === 202).length;
    for (const a of answers) if (a.status !== 202) codes.add(a.body.code);
    t.equal(answers.filter((a) => a.status >= 500).length, 0, `wave ${wave}: no 5xx`);
    await sys.drained(sale.id);
  }
  t.equal(accepted, 3, 'exactly the limit, never more');
  t.ok(codes.has('LIMIT_REACHED'), 'then LIMIT_REACHED');
  t.ok(codes.has('PURCHASE_IN_PROGRESS'), 'PURCHASE_IN_PROGRESS while one is in flight');
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 3);
  t.same(audit.violations, []);
  t.equal(audit.confirmedUnits, 3);
});

t.test('rate limit: 429 with Retry-After', async (t) => {
  const sys = await boot(t, { env: { STAMPEDE_PURCHASE_RATE_MAX: '2', STAMPEDE_PURCHASE_RATE_WINDOW_MS: '10000' } });
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 1 });
  const [buyer] = await sys.createBuyers(1);
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await sys.purchase(buyer!, sale.id));
  t.equal(answers[2]!.status, 429);
  t.equal(answers[2]!.body.code, 'RATE_LIMITED');
  t.match(answers[2]!.headers.get('retry-after'), /^\d+$/);
  t.ok(Number(answers[2]!.headers.get('retry-after')) >= 1);
});

t.test('idempotency: replay, another body (422), concurrent same key', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 10, perBuyerLimit: 2 });
  const [buyer] = await sys.createBuyers(1);
  const first = await sys.purchase(buyer!, sale.id, { quantity: 1 }, { 'idempotency-key': 'order-1' });
  t.equal(first.status, 202);
  const replay = await sys.purchase(buyer!, sale.id, { quantity: 1 }, { 'idempotency-key': 'order-1' });
  t.equal(replay.status, 202);
  t.same(replay.body, first.body, 'the first answer, replayed');
  t.equal(replay.headers.get('idempotent-replayed'), 'true');
  const other = await sys.purchase(buyer!, sale.id, { quantity: 2 }, { 'idempotency-key': 'order-1' });
  t.equal(other.status, 422);
  t.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED');

  const [racer] = await sys.createBuyers(1);
  const racing = await Promise.all(Array.from({ length: 50 }, () => sys.purchase(racer!, sale.id, { quantity: 1 }, { 'idempotency-key': 'same' })));
  const ids = new Set(racing.filter((a) => a.status === 202).map((a) => a.body.purchaseId));
  t.equal(ids.size, 1, 'one purchase however many concurrent twins');
  t.ok(racing.every((a) => a.status === 202 || a.status === 429 || a.body.code === 'PURCHASE_IN_PROGRESS'), 'twins replay (or are rate limited)');
  await sys.drained(sale.id);
  const { rows } = await sys.pool.query('SELECT 1 FROM orders WHERE buyer_id = ANY($1)', [[buyer, racer]]);
  t.equal(rows.length, 2, 'one order per key');
});

t.test('insufficient funds: failed with a reason, stock back, another buyer buys it', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 1, perBuyerLimit: 1, unitPrice: 5000 });
  const [poor] = await sys.createBuyers(1, { currency: 'EUR', amount: 4999 });
  const [rich] = await sys.createBuyers(1);
  const a = await sys.purchase(poor!, sale.id);
  t.equal(a.status, 202);
  const sold = await sys.purchase(rich!, sale.id);
  t.equal(sold.body.code, 'SOLD_OUT', 'reserved by the poor buyer meanwhile');
  const failed = await waitFor('failure', async () => {
    const r = await fetch(`${sys.url}${a.body.statusUrl}`, { headers: { authorization: `Bearer ${sys.token(poor!)}` } });
    const body = await r.json();
    return body.status === 'failed' ? body : undefined;
  });
  t.equal(failed.reason, 'INSUFFICIENT_FUNDS');
  const { rows } = await sys.pool.query('SELECT balance FROM wallets WHERE user_id = $1', [poor]);
  t.equal(rows[0].balance, 4999, 'nothing charged');
  // The api learns by pub/sub that stock is back, so its sold-out cache does not hold the buyer off.
  const bought = await waitFor('stock back', async () => {
    const r = await sys.purchase(rich!, sale.id);
    return r.status === 202 ? r : undefined;
  }, 5_000);
  t.equal(bought.status, 202);
  await sys.drained(sale.id);
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.violations, []);
  t.same(audit.live, { stock: 1, available: 0, reserved: 0, sold: 1 });
});

t.test('cancel: pending or confirmed, stock back and refund exactly once', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const sale = await sys.createSale({ stock: 5, perBuyerLimit: 1, unitPrice: 700 });
  const [buyer] = await sys.createBuyers(1, { currency: 'EUR', amount: 1000 });
  const auth = { authorization: `Bearer ${sys.token(buyer!)}` };
  const a = await sys.purchase(buyer!, sale.id);
  await sys.drained(sale.id);
  const cancels = await Promise.all(Array.from({ length: 10 }, () => fetch(`${sys.url}${a.body.statusUrl}`, { method: 'DELETE', headers: auth })));
  t.ok(cancels.every((r) => r.status === 202), 'every DELETE answers 202');
  const done = await waitFor('cancelled', async () => {
    const body = await (await fetch(`${sys.url}${a.body.statusUrl}`, { headers: auth })).json();
    return body.status === 'cancelled' ? body : undefined;
  });
  t.equal(done.cancelRequested, true);
  const { rows } = await sys.pool.query(`SELECT kind, amount FROM ledger_entries WHERE user_id = $1 ORDER BY id`, [buyer]);
  t.same(rows.map((r: { kind: string; amount: number }) => [r.kind, r.amount]), [['credit', 1000], ['purchase', -700], ['refund', 700]], 'one debit, one refund');
  const again = await fetch(`${sys.url}${a.body.statusUrl}`, { method: 'DELETE', headers: auth });
  t.equal(again.status, 202);
  const audit = await auditSale(sys.pool, sys.redis, sale.id, 1);
  t.same(audit.live, { stock: 5, available: 5, reserved: 0, sold: 0 }, 'stock back');
  const b = await sys.purchase(buyer!, sale.id);
  t.equal(b.status, 202, 'the buyer may buy again');
  const cancelPending = await fetch(`${sys.url}${b.body.statusUrl}`, { method: 'DELETE', headers: auth });
  t.equal(cancelPending.status, 202);
  await waitFor('second cancelled', async () => {
    const body = await (await fetch(`${sys.url}${b.body.statusUrl}`, { headers: auth })).json();
    return body.status === 'cancelled' ? body : undefined;
  });
  await sys.drained(sale.id);
  const { rows: w } = await sys.pool.query('SELECT balance FROM wallets WHERE user_id = $1', [buyer]);
  t.equal(w[0].balance, 1000, 'the wallet is whole');
  const other = await fetch(`${sys.url}${b.body.statusUrl}`, { method: 'DELETE', headers: { authorization: `Bearer ${sys.token((await sys.createBuyers(1))[0]!)}` } });
  t.equal(other.status, 404, "nobody cancels another buyer's purchase");
});

t.test('sales whose outboxes lie on every master (a Redis Cluster) are all relayed and settled, and the ops view reads each', async (t) => {
  const sys = await boot(t, { relay: true, worker: true });
  const nodes = await masters(sys.redis);
  // Sales until each master holds at least one's slot (one node: the first sale does).
  const byMaster = new Map<string, string>();
  const sales: string[] = [];
  while (byMaster.size < nodes.length && sales.length < 60) {
    const sale = await sys.createSale({ stock: 2, perBuyerLimit: 1 });
    sales.push(sale.id);
    const owner = await masterOf(nodes, saleKeys.outbox(sale.id));
    if (!byMaster.has(owner)) byMaster.set(owner, sale.id);
  }
  t.equal(byMaster.size, nodes.length, `outboxes on each of the ${nodes.length} master(s)`);
  const [buyer] = await sys.createBuyers(1);
  const answers = await Promise.all([...byMaster.values()].map((id) => sys.purchase(buyer!, id)));
  t.same(answers.map((a) => a.status), answers.map(() => 202), 'one purchase accepted in each');
  for (const id of byMaster.values()) {
    await sys.drained(id);
    const audit = await auditSale(sys.pool, sys.redis, id, 1);
    t.same(audit.violations, [], `sale ${id}: no invariant broken`);
    t.equal(audit.confirmedOrders, 1, `sale ${id}: its order settled`);
  }
  const ops = await sys.operator('/v1/ops/queues');
  t.equal(ops.status, 200);
  const streams = new Set((ops.body.outboxes as { stream: string }[]).map((o) => o.stream));
  t.ok([...byMaster.values()].every((id) => streams.has(saleKeys.outbox(id))), 'the ops view lists every outbox, whichever master holds it');
});

/** `host:port` of the master holding `key`'s slot (the only node, on one). */
async function masterOf(nodes: Redis[], key: string): Promise<string> {
  const name = (n: Redis) => `${n.options.host}:${n.options.port}`;
  if (nodes.length === 1) return name(nodes[0]!);
  const slot = Number(await nodes[0]!.call('CLUSTER', 'KEYSLOT', key));
  const ranges = (await nodes[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const [, , [host, port]] = ranges.find(([from, to]) => slot >= from && slot <= to)!;
  return nodes.map(name).find((n) => n === `${host}:${port}`) ?? `${host}:${port}`;
}
