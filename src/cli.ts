#!/usr/bin/env node
/**
 * `stampede <role>`: api, relay, worker, notifier, scheduler, or all
 * (supervises them as child processes and restarts one that dies;
 * src/roles/all.ts); `start` is all after migrating and seeding the demo.
 * Plus the operators' and developers' commands: migrate, token, apikey,
 * seed, rebuild auction, dead-letters, reconcile.
 * Each role shuts down gracefully on SIGTERM (src/roles/run.ts).
 */
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from './platform/config.js';
import { createLogger, type Logger } from './platform/log.js';
import { API_KEY_ID, AUCTION_ID, USER_ID } from './platform/ids.js';
import { runRole } from './roles/run.js';
import { ROLES, catchesMail, supervise } from './roles/all.js';
import { seedProgress } from './dev/progress.js';

// Everything else is imported by the command that needs it: a relay or a
// worker loads neither the HTTP server nor the seeding code, and starts in
// a fraction of the time (it is what a restart or a scale-out waits for).
const migrateDb = async (cfg: Config, log: Logger): Promise<void> => (await import('./platform/db/migrate.js')).migrate(cfg.STAMPEDE_DATABASE_URL, log);
const db = async (cfg: Config, max: number) => (await import('./platform/db/pool.js')).createPool(cfg.STAMPEDE_DATABASE_URL, max);
const redisOf = async (cfg: Config, name?: string) => (await import('./platform/redis/client.js')).createRedis(cfg, name ? { name } : undefined);

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`stampede: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** This file, which the supervisor runs once per child role. */
const cliPath = fileURLToPath(import.meta.url);

// Positional options: `apikey --role …` and `apikey create --role …` each read their own --role.
const program = new Command('stampede').description('Flash-sale and auction engine').showHelpAfterError().enablePositionalOptions();

program.command('api').description('serve the HTTP API').action(() => runRole(config(), 'api', async () => (await import('./roles/api.js')).startApi));
program.command('relay').description('relay outbox streams to RabbitMQ').action(() => runRole(config(), 'relay', async () => (await import('./roles/relay.js')).startRelay));
program.command('worker').description('settle orders and auctions into Postgres').action(() => runRole(config(), 'worker', async () => (await import('./roles/worker.js')).startWorker));
program.command('notifier').description('tell buyers: the notifications, e-mail and SMS workers, at a lower CPU priority')
  .action(() => runRole(config(), 'notifier', async () => (await import('./roles/notifier.js')).startNotifier));
program
  .command('scheduler')
  .description('close auctions when due and run the promoter')
  .action(() => runRole(config(), 'scheduler', async () => (await import('./roles/scheduler.js')).startScheduler));
program.command('mailcatcher').description('catch mail on STAMPEDE_SMTP_URL and show it at GET /messages (development)')
  .action(() => runRole(config(), 'mailcatcher', async () => (await import('./roles/mailcatcher.js')).startMailcatcher));
program.command('all').description('run api, relay, worker, notifier and scheduler as supervised child processes').action(() => supervise(config(), ROLES, cliPath));

program.command('migrate').description('apply database migrations').action(async () => {
  const cfg = config();
  await migrateDb(cfg, createLogger(cfg.STAMPEDE_LOG_LEVEL, 'migrate'));
});

program
  .command('start')
  .description('migrate, seed demo data, print how to try it, and run everything (npm start)')
  .action(async () => {
    const cfg = config();
    const log = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'start');
    await migrateDb(cfg, log);
    const pool = await db(cfg, 2);
    const redis = await redisOf(cfg);
    const [{ ApiKeys }, { seedDemo }] = await Promise.all([import('./platform/auth/api-keys.js'), import('./dev/demo.js')]);
    if (cfg.STAMPEDE_OPERATOR_KEY !== '') await new ApiKeys(pool).store(cfg.STAMPEDE_OPERATOR_KEY, 'operator', null, 'bootstrap (STAMPEDE_OPERATOR_KEY)');
    const banner = await seedDemo(cfg, pool, redis);
    await Promise.all([pool.end(), redis.quit()]);
    const catching = catchesMail(cfg);
    process.stdout.write(banner + '\n');
    if (catching) process.stdout.write(`mails the notifications send: curl -s http://127.0.0.1:${cfg.STAMPEDE_MAILCATCHER_HTTP_PORT}/messages\n`);
    await supervise(cfg, catching ? [...ROLES, 'mailcatcher'] : ROLES, cliPath);
  });

const userId = (v: string) => {
  if (!USER_ID.test(v)) throw new InvalidArgumentError('not a user id (usr_ + 12 characters)');
  return v;
};
const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

program
  .command('token')
  .description('issue a buyer token (JWT)')
  .argument('<buyerId>', 'the buyer', userId)
  .option('--ttl <seconds>', 'lifetime in seconds', positive)
  .action(async (buyerId: string, opts: { ttl?: number }) => {
    const cfg = config();
    const { createBuyerTokens } = await import('./platform/auth/tokens.js');
    process.stdout.write(createBuyerTokens(cfg.STAMPEDE_JWT_SECRET, cfg.STAMPEDE_JWT_TTL_SECONDS).issue(buyerId, opts.ttl) + '\n');
  });

const keyRole = (v: string): 'operator' | 'seller' => {
  if (v !== 'operator' && v !== 'seller') throw new InvalidArgumentError('must be operator or seller');
  return v;
};
const keyId = (v: string) => {
  if (!API_KEY_ID.test(v)) throw new InvalidArgumentError('not an API key id (key_ + 12 characters)');
  return v;
};

/** Runs `fn` with the operator keys' use case on its own connections, closed after. */
async function withOperatorKeys<T>(fn: (keys: import('./ops/keys.js').OperatorKeys) => Promise<T>): Promise<T> {
  const cfg = config();
  const [pool, redis] = await Promise.all([db(cfg, 1), redisOf(cfg, 'stampede-apikey')]);
  const [{ ApiKeys }, { OperatorKeys }] = await Promise.all([import('./platform/auth/api-keys.js'), import('./ops/keys.js')]);
  try {
    return await fn(new OperatorKeys(pool, redis, new ApiKeys(pool, 0)));
  } finally {
    await Promise.allSettled([pool.end(), redis.quit()]);
  }
}

interface KeyOptions { role: 'operator' | 'seller'; user?: string; label: string }
const createKey = (opts: KeyOptions) => withOperatorKeys((keys) => keys.create({ role: opts.role, ...(opts.user ? { userId: opts.user } : {}), label: opts.label }));

// `stampede apikey --role …` (before `create` existed) still creates a key and prints only the key.
const apikey = program
  .command('apikey')
  .description('operator and seller API keys: create, list, revoke (`apikey --role …` alone: create, printing only the key)')
  .option('--role <role>', 'operator | seller', keyRole)
  .option('--user <userId>', 'the seller user id (sellers only)', userId)
  .option('--label <label>', 'a note on what the key is for', '')
  .action(async (opts: Partial<KeyOptions> & { label: string }, cmd: Command) => {
    if (!opts.role) return cmd.help({ error: true });
    process.stdout.write((await createKey({ ...opts, role: opts.role })).apiKey + '\n');
  });
apikey
  .command('create')
  .description('create a key; prints it once, with its id, as JSON (stored hashed)')
  .requiredOption('--role <role>', 'operator | seller', keyRole)
  .option('--user <userId>', 'the seller user id (sellers: required)', userId)
  .option('--label <label>', 'a note on what the key is for', '')
  .action(async (opts: KeyOptions) => {
    process.stdout.write(JSON.stringify(await createKey(opts)) + '\n');
  });
apikey
  .command('list')
  .description('every key, revoked ones too, oldest first: one JSON object a line (id, role, userId, label, fingerprint, createdAt, revokedAt)')
  .action(() => withOperatorKeys(async (keys) => {
    for (let after: string | undefined, page = 0; page < 100_000; page++) {
      const { items, next } = await keys.list(100, after);
      for (const key of items) process.stdout.write(JSON.stringify(key) + '\n');
      if (next === null) break;
      after = next;
    }
  }));
apikey
  .command('revoke')
  .description('revoke a key on every api node at once (refused for the last active operator key)')
  .argument('<id>', 'the key id (key_…)', keyId)
  .action((id: string) => withOperatorKeys(async (keys) => {
    process.stdout.write(JSON.stringify(await keys.revoke(id)) + '\n');
  }));

program
  .command('seed')
  .description('create N funded buyers and a sale for load tests; write their tokens to a file')
  .requiredOption('--buyers <n>', 'how many buyers', positive)
  .option('--stock <n>', 'units in the sale', positive, 100)
  .option('--limit <n>', 'per-buyer limit', positive, 1)
  .option('--price <minor>', 'unit price in minor units', (v) => Number(v), 100)
  .option('--currency <ISO>', 'currency', 'EUR')
  .option('--funds <minor>', 'credited to each buyer', positive, 100_000)
  .option('--tokens <file>', 'tokens file (userId token per line)', 'load/results/tokens.txt')
  .option('--opens-in <seconds>', 'seconds until the sale opens', (v) => Number(v), 0)
  .option('--duration <seconds>', 'how long the sale stays open', positive, 6 * 3600)
  .option('--auction', 'also create one open auction for the same window (for load/k6/bid-war.js)', false)
  .action(async (o: { buyers: number; stock: number; limit: number; price: number; currency: string; funds: number; tokens: string; opensIn: number; duration: number; auction: boolean }) => {
    const cfg = config();
    await migrateDb(cfg, createLogger(cfg.STAMPEDE_LOG_LEVEL, 'seed'));
    const pool = await db(cfg, 5);
    const redis = await redisOf(cfg);
    const [{ seed }, { Auctions }] = await Promise.all([import('./dev/seed.js'), import('./auctions/auctions.js')]);
    const progress = await seedProgress();
    const started = Date.now();
    const startsAt = Date.now() + o.opensIn * 1000;
    const result = await seed(pool, redis, {
      buyers: o.buyers, currency: o.currency, funds: o.funds, tokensFile: o.tokens,
      jwtSecret: cfg.STAMPEDE_JWT_SECRET, tokenTtlSeconds: Math.max(cfg.STAMPEDE_JWT_TTL_SECONDS, o.duration + o.opensIn),
      sale: { stock: o.stock, perBuyerLimit: o.limit, unitPrice: o.price, startsAt: new Date(startsAt).toISOString(), endsAt: new Date(startsAt + o.duration * 1000).toISOString() },
      onProgress: progress.update,
    });
    progress.stop();
    const auction = o.auction
      ? await new Auctions(pool, redis).create({
        title: 'Load-test lot', currency: o.currency, startPrice: Math.max(1, o.price), startsAt: new Date(startsAt).toISOString(),
        endsAt: new Date(startsAt + o.duration * 1000).toISOString(), softCloseSeconds: 0, increment: { type: 'absolute', amount: 1 },
      }, { role: 'operator', userId: null })
      : undefined;
    await Promise.all([pool.end(), redis.quit()]);
    process.stdout.write(JSON.stringify({
      saleId: result.sale.id, ...(auction ? { auctionId: auction.id } : {}), buyers: o.buyers, tokens: o.tokens, seconds: (Date.now() - started) / 1000,
    }) + '\n');
  });

const auctionId = (v: string) => {
  if (!AUCTION_ID.test(v)) throw new InvalidArgumentError('not an auction id (auc_ + 12 characters)');
  return v;
};

const rebuild = program.command('rebuild').description("rebuild live Redis state from Postgres");
rebuild
  .command('auction')
  .description("rebuild an auction's Redis state from its terms and event log (refuses a log with a gap)")
  .argument('<auctionId>', 'the auction', auctionId)
  .option('--force', 'rebuild even when Redis holds events the log does not have yet (they are lost)', false)
  .action(async (id: string, opts: { force: boolean }) => {
    const cfg = config();
    const pool = await db(cfg, 1);
    const redis = await redisOf(cfg, 'stampede-rebuild');
    const { rebuildAuction, RebuildRefusedError } = await import('./auctions/rebuild.js');
    try {
      const result = await rebuildAuction(pool, redis, id, { force: opts.force });
      process.stdout.write(JSON.stringify(result) + '\n');
    } catch (err) {
      if (!(err instanceof RebuildRefusedError)) throw err;
      process.stderr.write(`stampede: rebuild refused: ${err.message}\n`);
      process.exitCode = 1;
    } finally {
      await Promise.allSettled([pool.end(), redis.quit()]);
    }
  });

/** The dead letters, as the operators' API has them (src/ops/dead-letters.ts): one use-case object on its own pool and broker connection. */
async function withDeadLetters(run: (d: import('./ops/dead-letters.js').DeadLetters) => Promise<unknown>): Promise<void> {
  const cfg = config();
  const pool = await db(cfg, 2);
  const [{ DeadLetters }, { connectAmqp }] = await Promise.all([import('./ops/dead-letters.js'), import('./platform/messaging/amqp.js')]);
  let conn: Awaited<ReturnType<typeof connectAmqp>> | undefined;
  const confirmChannel = async () => {
    conn ??= await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'stampede dead-letters');
    return conn.createConfirmChannel();
  };
  try {
    process.stdout.write(JSON.stringify(await run(new DeadLetters(pool, cfg.topology, confirmChannel)), null, 2) + '\n');
  } finally {
    await conn?.close().catch(() => {});
    await pool.end();
  }
}
const deadLetterId = (v: string) => {
  if (!/^[1-9]\d{0,15}$/.test(v)) throw new InvalidArgumentError('not a dead letter id');
  return Number(v);
};
const deadLetters = program.command('dead-letters').description('the dead letters each queue kept: list, show, replay, purge (queues: orders, auctions, notifications, email, sms)');
deadLetters.command('summary').description('per queue: waiting, replayed, the oldest waiting').action(() => withDeadLetters((d) => d.summary()));
deadLetters.command('list').description("a queue's dead letters, newest first").argument('<queue>')
  .option('--limit <n>', 'how many (1-100)', (v) => Number(v), 50).option('--before <id>', 'older than this id', deadLetterId).option('--all', 'replayed ones too', false)
  .action((queue: string, o: { limit: number; before?: number; all: boolean }) => withDeadLetters((d) => {
    if (!Number.isSafeInteger(o.limit) || o.limit < 1 || o.limit > 100) throw new InvalidArgumentError('--limit must be from 1 to 100');
    return d.list(queue, o.limit, o.before, !o.all);
  }));
deadLetters.command('show').description('one dead letter: body, headers, last error').argument('<queue>').argument('<id>', 'its id', deadLetterId)
  .action((queue: string, id: number) => withDeadLetters((d) => d.get(queue, id)));
deadLetters.command('replay').description('publish one dead letter (or --all of the queue) back to its queue').argument('<queue>').argument('[id]', 'its id', deadLetterId)
  .option('--all', 'every waiting one, oldest first', false)
  .action((queue: string, id: number | undefined, o: { all: boolean }) => withDeadLetters(async (d) => {
    if ((id === undefined) === !o.all) throw new InvalidArgumentError('give an id or --all');
    if (id !== undefined) await d.replayOne(queue, id);
    return { replayed: id !== undefined ? 1 : await d.replayAll(queue) };
  }));
deadLetters.command('purge').description("delete a queue's waiting dead letters (cannot be undone)").argument('<queue>')
  .requiredOption('--confirm <queue>', 'the queue\'s name again').option('--up-to <id>', 'only up to this id', deadLetterId)
  .action((queue: string, o: { confirm: string; upTo?: number }) => withDeadLetters(async (d) => {
    if (o.confirm !== queue) throw new InvalidArgumentError(`--confirm must repeat the queue's name (${queue})`);
    return { purged: await d.purge(queue, o.upTo) };
  }));

program
  .command('reconcile')
  .description('check Redis against Postgres (sales, auctions, stuck purchases) and each wallet against its ledger, repair what is provably safe, store the report; exits 1 when a finding is left unrepaired')
  .option('--json', 'print the report as JSON', false)
  .action(async (o: { json: boolean }) => {
    const cfg = config();
    const log = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'reconcile', 2);
    await migrateDb(cfg, log);
    const pool = await db(cfg, 1);
    const { Reconciliation, formatReport } = await import('./ops/reconciliation.js');
    try {
      const report = await new Reconciliation({ pool, redisTarget: cfg, log, stuckAfterMs: cfg.STAMPEDE_RECONCILE_STUCK_AFTER_MS }).run('cli');
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
      if (report.unrepaired > 0) process.exitCode = 1;
    } finally {
      await pool.end();
    }
  });

program.parseAsync().catch((err) => {
  process.stderr.write(`stampede: ${(err as Error).message}\n`);
  process.exit(1);
});
