#!/usr/bin/env node
/**
 * `stampede <role>`: api, relay, worker, or all (supervises the others as
 * child processes and restarts one that dies). Plus operator commands.
 * Each role shuts down gracefully on SIGTERM.
 */
import { childNodeFlags } from './platform/node-flags.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from './platform/config.js';
import { createLogger, type Logger } from './platform/log.js';
import type { Role } from './roles/role.js';
import { AUCTION_ID, USER_ID } from './platform/ids.js';

// Everything else is imported by the command that needs it: a relay or a
// worker loads neither the HTTP server nor the seeding code, and starts in
// a fraction of the time (it is what a restart or a scale-out waits for).
const migrateDb = async (cfg: Config, log: Logger): Promise<void> => (await import('./platform/db/migrate.js')).migrate(cfg.STAMPEDE_DATABASE_URL, log);
const db = async (cfg: Config, max: number) => (await import('./platform/db/pool.js')).createPool(cfg.STAMPEDE_DATABASE_URL, max);
const redisOf = async (cfg: Config, name?: string) => (await import('./platform/redis/client.js')).createRedis(cfg.STAMPEDE_REDIS_URL, name ? { name } : undefined);

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

/** Runs a role until SIGTERM/SIGINT, then stops it within the grace period. */
async function runRole(name: string, load: () => Promise<(cfg: Config, log: Logger) => Promise<Role>>): Promise<void> {
  const cfg = config();
  const log = createLogger(cfg.STAMPEDE_LOG_LEVEL, name);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  let role: Role;
  try {
    const start = await load();
    role = await start(cfg, log);
  } catch (err) {
    log.fatal({ err }, `${name} failed to start`);
    // Also on stderr, so the reason shows whatever the log level.
    process.stderr.write(`stampede: ${name} failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${name} stopping`);
    const force = setTimeout(() => {
      log.error(`${name} did not stop within ${cfg.STAMPEDE_SHUTDOWN_GRACE_MS}ms; exiting`);
      process.exit(1);
    }, cfg.STAMPEDE_SHUTDOWN_GRACE_MS);
    force.unref();
    role.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, `${name} stop failed`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** Supervises api, relay and worker as child processes; restarts any that dies. */
async function supervise(roles: string[]): Promise<void> {
  const cfg = config();
  const log = createLogger(cfg.STAMPEDE_LOG_LEVEL, 'all');
  // Migrate once here so the children do not race for it.
  await migrateDb(cfg, log);
  const cli = fileURLToPath(import.meta.url);
  const children = new Map<string, ChildProcess>();
  const restarts = new Map<string, number[]>();
  let stopping = false;

  const launch = (role: string) => {
    const child = spawn(process.execPath, [...childNodeFlags(), cli, role], { stdio: 'inherit', env: process.env });
    children.set(role, child);
    child.on('exit', (code, signal) => {
      children.delete(role);
      if (stopping) return;
      const now = Date.now();
      const recent = (restarts.get(role) ?? []).filter((t) => now - t < 60_000);
      recent.push(now);
      restarts.set(role, recent);
      const delay = Math.min(10_000, 250 * 2 ** (recent.length - 1));
      log.error({ child: role, code, signal, restartInMs: delay }, 'child died; restarting');
      setTimeout(() => !stopping && launch(role), delay);
    });
  };
  roles.forEach(launch);
  log.info({ roles }, 'supervising');

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping children');
    for (const c of children.values()) c.kill('SIGTERM');
    const check = setInterval(() => {
      if (children.size === 0) {
        clearInterval(check);
        process.exit(0);
      }
    }, 50);
    setTimeout(() => {
      for (const c of children.values()) c.kill('SIGKILL');
      process.exit(1);
    }, cfg.STAMPEDE_SHUTDOWN_GRACE_MS + 2_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** The roles `stampede all` and `npm start` run. */
const ROLES = ['api', 'relay', 'worker', 'scheduler'];

const program = new Command('stampede').description('Flash-sale and auction engine').showHelpAfterError();

program.command('api').description('serve the HTTP API').action(() => runRole('api', async () => (await import('./roles/api.js')).startApi));
program.command('relay').description('relay outbox streams to RabbitMQ').action(() => runRole('relay', async () => (await import('./roles/relay.js')).startRelay));
program.command('worker').description('settle orders and auctions into Postgres').action(() => runRole('worker', async () => (await import('./roles/worker.js')).startWorker));
program
  .command('scheduler')
  .description('close auctions when due and run the promoter')
  .action(() => runRole('scheduler', async () => (await import('./roles/scheduler.js')).startScheduler));
program.command('all').description('run api, relay, worker and scheduler as supervised child processes').action(() => supervise(ROLES));

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
    await new ApiKeys(pool).store(cfg.STAMPEDE_OPERATOR_KEY, 'operator', null, 'bootstrap (STAMPEDE_OPERATOR_KEY)');
    const banner = await seedDemo(cfg, pool, redis);
    await Promise.all([pool.end(), redis.quit()]);
    process.stdout.write(banner + '\n');
    await supervise(ROLES);
  });

/** Progress bars on a terminal; plain lines at every tenth otherwise (CI, log files). */
async function seedProgress(): Promise<{ update: (phase: string, done: number, total: number) => void; stop: () => void }> {
  if (!process.stderr.isTTY) {
    const shown = new Map<string, number>();
    return {
      update(phase, done, total) {
        const tenth = Math.floor((done / total) * 10);
        if ((shown.get(phase) ?? -1) < tenth) {
          shown.set(phase, tenth);
          process.stderr.write(`seed: ${phase} ${done}/${total}\n`);
        }
      },
      stop() {},
    };
  }
  const { default: cliProgress } = await import('cli-progress');
  const bars = new cliProgress.MultiBar({ format: '{phase} [{bar}] {value}/{total} {duration}s', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
  const byPhase = new Map<string, InstanceType<typeof cliProgress.SingleBar>>();
  return {
    update(phase, done, total) {
      let bar = byPhase.get(phase);
      if (!bar) byPhase.set(phase, (bar = bars.create(total, 0, { phase: phase.padEnd(8) })));
      bar.update(done);
    },
    stop: () => bars.stop(),
  };
}

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

program
  .command('apikey')
  .description('create an operator or seller API key (printed once, stored hashed)')
  .requiredOption('--role <role>', 'operator | seller')
  .option('--user <userId>', 'the seller user id (sellers only)', userId)
  .option('--label <label>', 'a note on what the key is for', '')
  .action(async (opts: { role: string; user?: string; label: string }) => {
    if (opts.role !== 'operator' && opts.role !== 'seller') throw new InvalidArgumentError('role must be operator or seller');
    if (opts.role === 'seller' && !opts.user) throw new InvalidArgumentError('a seller key needs --user');
    const cfg = config();
    const pool = await db(cfg, 1);
    const { ApiKeys, newApiKey } = await import('./platform/auth/api-keys.js');
    const key = newApiKey(opts.role);
    await new ApiKeys(pool).store(key, opts.role, opts.user ?? null, opts.label);
    await pool.end();
    process.stdout.write(key + '\n');
  });

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

program.parseAsync().catch((err) => {
  process.stderr.write(`stampede: ${(err as Error).message}\n`);
  process.exit(1);
});
