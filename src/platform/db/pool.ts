import pg from 'pg';

// bigint columns (money) come back as JS numbers: every amount is bounded
// well below 2^53 by validation, and the parser refuses anything larger.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`int8 ${v} exceeds the safe integer range`);
  return n;
});

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export function createPool(url: string, max: number): pg.Pool {
  // JIT off: every query here is short, and the planner's costs (a fan-out's
  // chunk on a table that grew since its last ANALYZE) can cross
  // jit_above_cost, when compiling takes longer than the query itself.
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'stampede', options: '-c jit=off' });
  // An idle client's error (server restart) must not crash the process.
  pool.on('error', () => {});
  return pool;
}

/**
 * Runs fn inside a transaction, rolling back on any error. A connection the
 * server ends while fn waits on something else (an SMTP reply, say) must not
 * crash the process: its error is kept, the next query fails with it, and
 * the client is destroyed instead of going back to the pool.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
