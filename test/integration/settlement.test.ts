/**
 * settleBatch against the real Postgres: the checks that replaced the
 * orders->users and ledger->users foreign keys (migration 1732500000000).
 */
import t from 'tap';
import { createLogger } from '../../src/log.js';
import { createPool } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { createRedis } from '../../src/redis/client.js';
import { createBuyers, creditWallet } from '../../src/domain/buyers.js';
import { Sales } from '../../src/domain/sales.js';
import { settleBatch, type SettlementEvent } from '../../src/db/settlement.js';
import { newPurchaseId, newUserId, randomId } from '../../src/ids.js';
import { testConfig } from '../helpers/system.js';

const cfg = testConfig();
await migrate(cfg.STAMPEDE_DATABASE_URL, createLogger('silent', 'test'));
const pool = createPool(cfg.STAMPEDE_DATABASE_URL, 2);
const redis = createRedis(cfg.STAMPEDE_REDIS_URL);
t.teardown(async () => {
  await pool.end();
  await redis.quit();
});

const PRICE = 700;
const sale = await new Sales(pool, redis).create(
  { name: 'settlement test', sku: 'SETTLE-1', unitPrice: PRICE, currency: 'EUR', stock: 100, perBuyerLimit: 5,
    startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString() },
  { role: 'operator', userId: null },
);

const accepted = (buyerId: string): SettlementEvent => ({
  eventId: `evt_${randomId(16)}`, type: 'accepted', time: Date.now(),
  data: { purchaseId: newPurchaseId(sale.id), saleId: sale.id, buyerId, quantity: 1, unitPrice: PRICE, currency: 'EUR', acceptedAt: Date.now() },
});

t.test('a funded buyer is charged once, however often the batch is settled', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'funded' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 1_000, `credit:settlement-test:${buyer!.id}`);
  const e = accepted(buyer!.id);
  const first = await settleBatch(pool, [e]);
  const again = await settleBatch(pool, [e]);
  t.equal(first[0]!.status, 'confirmed');
  t.equal(again[0]!.status, 'confirmed');
  const { rows } = await pool.query('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(rows[0]!.balance, 1_000 - PRICE, 'debited once');
  const ledger = await pool.query('SELECT count(*)::int AS n FROM ledger_entries WHERE ref = $1', [`purchase:${e.data.purchaseId}`]);
  t.equal(ledger.rows[0]!.n, 1, 'one ledger entry');
});

t.test('a known buyer without a wallet gets a failed order and no ledger entry', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'walletless' }]);
  const e = accepted(buyer!.id);
  const [r] = await settleBatch(pool, [e]);
  t.equal(r!.status, 'failed');
  t.equal(r!.reason, 'INSUFFICIENT_FUNDS');
  const ledger = await pool.query('SELECT count(*)::int AS n FROM ledger_entries WHERE user_id = $1', [buyer!.id]);
  t.equal(ledger.rows[0]!.n, 0);
});

t.test('an unknown buyer fails the whole batch and writes nothing', async (t) => {
  const [buyer] = await createBuyers(pool, [{ name: 'beside the stranger' }]);
  await creditWallet(pool, buyer!.id, 'EUR', 1_000, `credit:settlement-test:${buyer!.id}`);
  const good = accepted(buyer!.id);
  const stranger = accepted(newUserId());
  await t.rejects(settleBatch(pool, [good, stranger]), { message: `buyer ${stranger.data.buyerId} is not a user` });
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM orders WHERE purchase_id = ANY($1)', [[good.data.purchaseId, stranger.data.purchaseId]]);
  t.equal(rows[0]!.n, 0, 'no order written');
  const wallet = await pool.query('SELECT balance FROM wallets WHERE user_id = $1', [buyer!.id]);
  t.equal(wallet.rows[0]!.balance, 1_000, 'nobody charged');
});
