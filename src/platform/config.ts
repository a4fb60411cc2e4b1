/**
 * The configuration schema: every setting has a type, a default, the
 * environment variable that sets it and a line of doc. It is read once; a bad
 * value stops the process with a message naming the variable.
 */
import { topologyFor } from './messaging/topology.js';
import { bool, cleanEnv, str, url, makeValidator } from 'envalid';

const positiveInt = makeValidator<number>((input) => {
  const n = Number(input);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error('must be a positive integer');
  return n;
});

/** An integer from `min` to `max`: every size and count a process allocates by has an explicit ceiling. */
const intIn = (min: number, max: number) =>
  makeValidator<number>((input) => {
    const n = Number(input);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`must be an integer from ${min} to ${max.toLocaleString('en')}`);
    return n;
  });

const nonNegativeInt = makeValidator<number>((input) => {
  const n = Number(input);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('must be a non-negative integer');
  return n;
});

const tcpPort = makeValidator<number>((input) => {
  const n = Number(input);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error('must be a port number from 0 to 65535');
  return n;
});

/** '' (derived), 'off', or an http(s) URL: a typo stops the start, not the first snapshot of the board. */
const managementUrl = makeValidator<string>((input) => {
  if (input === '' || input === 'off') return input;
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    throw new Error("must be '', off, or an http(s) URL");
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error("must be '', off, or an http(s) URL");
  return input;
});

/** '' (one Redis node, STAMPEDE_REDIS_URL) or comma-separated host:port seed nodes of a Redis Cluster. */
const clusterNodes = makeValidator<string[]>((input) => {
  if (input.trim() === '') return [];
  const nodes = input.split(',').map((s) => s.trim());
  for (const n of nodes) {
    const m = /^(\[[0-9a-fA-F:]+\]|[\w.-]+):(\d+)$/.exec(n);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error("must be '' or comma-separated host:port seed nodes");
  }
  return nodes;
});

/** One amqp(s) URL, or a RabbitMQ cluster's nodes as comma-separated URLs (kept as one comma-joined string). */
const amqpUrls = makeValidator<string>((input) => {
  const urls = input.split(',').map((s) => s.trim());
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error('must be an amqp:// or amqps:// URL, or several comma-separated');
    }
    if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') throw new Error('must be an amqp:// or amqps:// URL, or several comma-separated');
  }
  return urls.join(',');
});

/** The queues a worker role may consume, one worker each. */
export const WORKER_QUEUES = ['orders', 'auctions', 'notifications', 'email', 'sms', 'webhooks'] as const;
export type WorkerQueue = (typeof WORKER_QUEUES)[number];

const workerQueues = makeValidator<WorkerQueue[]>((input) => {
  const names = input.split(',').map((s) => s.trim());
  if (names.length === 0 || names.some((n) => !(WORKER_QUEUES as readonly string[]).includes(n)) || new Set(names).size !== names.length) {
    throw new Error(`must be a comma-separated list of ${WORKER_QUEUES.join(', ')}, each at most once`);
  }
  return names as WorkerQueue[];
});

const DEV_JWT_SECRET = 'stampede-dev-secret-change-me-in-production-0123456789';
/** The bootstrap operator key of development (`npm start` prints it): public, so production refuses it. */
export const DEV_OPERATOR_KEY = 'dev-operator-key';

export const configSchema = {
  NODE_ENV: str({ choices: ['development', 'test', 'production'], default: 'development', desc: 'Runtime mode; production refuses development secrets.' }),
  STAMPEDE_HTTP_HOST: str({ default: '0.0.0.0', desc: 'Address the api listens on.' }),
  STAMPEDE_HTTP_PORT: tcpPort({ default: 8080, desc: 'Port the api listens on (0 picks a free one).' }),
  STAMPEDE_API_PROCESSES: intIn(1, 64)({ default: 1, desc: 'api processes `stampede all` runs, all on STAMPEDE_HTTP_PORT (the kernel spreads connections across them, SO_REUSEPORT); more than one needs a port other than 0.' }),
  STAMPEDE_API_METRICS_PORT: tcpPort({ default: 9110, desc: 'With more than one api process, api process i (0, 1, …) also serves GET /metrics on this port + i (on STAMPEDE_METRICS_HOST), so each is scraped on its own; 0 = none.' }),
  STAMPEDE_API_PROCESS_INDEX: intIn(0, 63)({ default: 0, desc: 'Which of the STAMPEDE_API_PROCESSES api processes this is; `stampede all` sets it for each.' }),
  STAMPEDE_STOREFRONT: bool({ default: false, devDefault: true, desc: "The demo storefront at GET / and the demo buyers with fresh tokens at GET /v1/demo (src/dev/storefront.ts); production refuses true, since anyone could act as a demo buyer." }),
  STAMPEDE_METRICS: bool({ default: true, desc: 'Prometheus metrics: the api answers GET /metrics on its own port, every other role on its metrics port below; false counts nothing and serves none.' }),
  STAMPEDE_METRICS_HOST: str({ default: '127.0.0.1', desc: 'Address the relay, worker, notifier and scheduler serve GET /metrics on (0.0.0.0 for a Prometheus on another host).' }),
  STAMPEDE_RELAY_METRICS_PORT: tcpPort({ default: 9101, desc: "The relay's metrics port (0 picks a free one, logged as `metrics listening`)." }),
  STAMPEDE_WORKER_METRICS_PORT: tcpPort({ default: 9102, desc: "The worker's metrics port (0 picks a free one); give each worker on one host its own." }),
  STAMPEDE_NOTIFIER_METRICS_PORT: tcpPort({ default: 9103, desc: "The notifier's metrics port (0 picks a free one)." }),
  STAMPEDE_SCHEDULER_METRICS_PORT: tcpPort({ default: 9104, desc: "The scheduler's metrics port (0 picks a free one)." }),
  STAMPEDE_OPS_BOARD_MS: intIn(200, 60_000)({ default: 1_000, desc: 'How often an api node sends the operators\' live board (GET /ops) a new snapshot, while someone watches.' }),
  STAMPEDE_TALLY_FLUSH_MS: intIn(100, 60_000)({ default: 500, desc: 'How often an api node adds its counts of purchase and bid decisions (per sale, per auction) to Redis for the live board.' }),
  STAMPEDE_HEARTBEAT_MS: intIn(100, 60_000)({ default: 2_000, desc: 'How often each role writes its heartbeat to Redis; the board shows a role silent after three missed beats.' }),
  STAMPEDE_AMQP_MANAGEMENT_URL: managementUrl({ default: '', desc: "RabbitMQ's management API, for queue rates on the live board ('' = the broker's host on port 15672 with STAMPEDE_AMQP_URL's credentials; off = no rates)." }),
  STAMPEDE_REDIS_URL: url({ default: 'redis://127.0.0.1:6379', desc: 'Redis, the decision point.' }),
  STAMPEDE_REDIS_CLUSTER_NODES: clusterNodes({ default: [] as string[], desc: "A Redis Cluster's seed nodes (host:port, comma-separated): when set, every process uses the cluster client (any seed is enough; the others are found) and STAMPEDE_REDIS_URL gives only the password, if any. '' = one Redis node." }),
  STAMPEDE_AMQP_URL: amqpUrls({ default: 'amqp://stampede:stampede@127.0.0.1:5672', desc: "RabbitMQ broker: one URL, or a cluster's nodes comma-separated (each process starts at a node chosen by its pid and moves to the next answering one when its node is lost)." }),
  STAMPEDE_DATABASE_URL: url({ default: 'postgres://stampede:stampede@127.0.0.1:5432/stampede', desc: 'Postgres, the system of record.' }),
  STAMPEDE_AMQP_PREFIX: str({ default: 'stampede', desc: 'Prefix of every exchange and queue name (lets deployments or test runs share a broker).' }),
  STAMPEDE_DB_POOL_SIZE: intIn(1, 500)({ default: 10, desc: 'Postgres connections per process.' }),
  STAMPEDE_LOG_LEVEL: str({ choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', desc: 'Log level (JSON logs on stdout).' }),
  STAMPEDE_JWT_SECRET: str({ default: DEV_JWT_SECRET, desc: 'HS256 secret for buyer tokens (at least 32 characters).' }),
  STAMPEDE_JWT_TTL_SECONDS: positiveInt({ default: 86_400, desc: 'Lifetime of tokens issued by `stampede token`.' }),
  STAMPEDE_OPERATOR_KEY: str({ default: DEV_OPERATOR_KEY, desc: 'Bootstrap operator API key, stored hashed at start-up (a revoked one stays revoked); empty stores none. The development default is refused in production.' }),
  STAMPEDE_API_KEY_CACHE_MS: intIn(0, 5_000)({ default: 1_000, desc: 'Longest an api node trusts an API key lookup without asking Postgres again. A revocation is broadcast and every node forgets the key at once; this bounds a node that missed the broadcast (0: ask every time).' }),
  STAMPEDE_AUTH_FAILURE_LIMIT: intIn(0, 1_000_000)({ default: 100, desc: 'Failed authentications (401) one source address may get from an api node in STAMPEDE_AUTH_FAILURE_WINDOW_MS; past it that node answers its requests that carry credentials 429 with Retry-After until the window ends (0: no throttle).' }),
  STAMPEDE_AUTH_FAILURE_WINDOW_MS: intIn(1_000, 3_600_000)({ default: 60_000, desc: 'The window of STAMPEDE_AUTH_FAILURE_LIMIT.' }),
  STAMPEDE_MAX_BODY_BYTES: intIn(256, 1_048_576)({ default: 16_384, desc: 'Largest request body accepted (413 past it).' }),
  STAMPEDE_MAX_QUANTITY: intIn(1, 1_000_000)({ default: 100, desc: 'Largest quantity of one purchase.' }),
  STAMPEDE_MAX_BUNDLE_ITEMS: intIn(1, 1_000)({ default: 20, desc: 'Most items one bundle sale may hold (POST /v1/sales `items`; 400 past it).' }),
  STAMPEDE_MAX_ELIGIBLE_BUYERS: intIn(1, 100_000)({ default: 10_000, desc: 'Most buyers on one private sale\'s list (`eligibleBuyers`; 400 past it). The bodies that carry the list may be as large as it needs, past STAMPEDE_MAX_BODY_BYTES.' }),
  STAMPEDE_PURCHASE_RATE_MAX: positiveInt({ default: 10, desc: 'Purchase attempts a buyer may make per sale per window.' }),
  STAMPEDE_PURCHASE_RATE_WINDOW_MS: positiveInt({ default: 1_000, desc: 'Rate-limit window for purchase attempts.' }),
  STAMPEDE_IDEMPOTENCY_TTL_MS: positiveInt({ default: 86_400_000, desc: 'How long an Idempotency-Key is remembered.' }),
  STAMPEDE_KNOWN_BUYERS_MAX: intIn(1_000, 100_000_000)({ default: 1_000_000, desc: 'Most buyer ids an api node remembers as existing (loaded at start, then looked up once each), so tokens naming no user are refused without a Postgres read per request; about 100 bytes each.' }),
  STAMPEDE_SOLD_OUT_CACHE_MS: nonNegativeInt({ default: 1_000, desc: 'Longest an api node answers SOLD_OUT from memory without asking Redis (pub/sub clears it sooner).' }),
  STAMPEDE_BID_RATE_MAX: positiveInt({ default: 10, desc: 'Bids a buyer may place per auction per window.' }),
  STAMPEDE_BID_RATE_WINDOW_MS: positiveInt({ default: 1_000, desc: 'Rate-limit window for bids.' }),
  STAMPEDE_SCHEDULER_TICK_MS: positiveInt({ default: 100, desc: 'How often the scheduler looks for auctions to close and promotions due.' }),
  STAMPEDE_LIVE_TICK_MS: positiveInt({ default: 250, desc: 'How often an api node polls the stock of sales its WebSocket clients watch, and pushes the ones that changed.' }),
  STAMPEDE_SSE_KEEPALIVE_MS: intIn(100, 300_000)({ default: 15_000, desc: 'How often an api node writes a comment line on each open Server-Sent Events stream, so proxies and clients keep it open.' }),
  STAMPEDE_SSE_MAX_STREAMS: intIn(1, 1_000_000)({ default: 10_000, desc: 'Most Server-Sent Events streams one api node holds open; past it a new one is answered 503 (Retry-After: 1).' }),
  STAMPEDE_RELAY_BATCH: intIn(1, 10_000)({ default: 512, desc: 'Outbox entries a relay reads per stream per round.' }),
  STAMPEDE_RELAY_EVENTS_PER_MESSAGE: intIn(1, 1_000)({ default: 100, desc: 'Most outbox events the relay sends in one message (a CloudEvents batch); 1 sends each on its own.' }),
  STAMPEDE_EVENT_OUTBOX_POLL_MS: intIn(10, 60_000)({ default: 1_000, desc: 'How often each api node relays what is left in the Postgres event outbox (sale.created, sale.updated, sale.closed): a change relays its own events at once, so this only paces the retries while the broker is away.' }),
  STAMPEDE_RELAY_CLAIM_IDLE_MS: positiveInt({ default: 15_000, desc: 'Outbox entries pending this long on a dead relay are reclaimed.' }),
  STAMPEDE_WORKER_PREFETCH: intIn(1, 65_535)({ default: 200, desc: 'Unacknowledged messages a worker holds (prefetch window, at most 65,535 as AMQP counts it; a message may carry up to STAMPEDE_RELAY_EVENTS_PER_MESSAGE events).' }),
  STAMPEDE_WORKER_BATCH: intIn(1, 10_000)({ default: 500, desc: 'Most events settled in one Postgres transaction (a message carrying more is settled alone).' }),
  STAMPEDE_WORKER_CONCURRENCY: intIn(1, 64)({ default: 4, desc: 'Batches a worker settles side by side, each in its own transaction (and Postgres connection: keep it at most STAMPEDE_DB_POOL_SIZE).' }),
  STAMPEDE_WORKER_QUEUES: workerQueues({ default: [...WORKER_QUEUES], desc: 'The queues a worker role consumes; run several worker roles to keep notifications off the settlement processes.' }),
  STAMPEDE_NOTIFIER_NICE: intIn(0, 19)({ default: 10, desc: 'The niceness the notifier role (notifications, e-mail and SMS workers) runs at: higher leaves more of a busy host\'s CPU to settlement.' }),
  STAMPEDE_NOTIFICATIONS_YIELD_ABOVE: intIn(0, 10_000_000)({ default: 0, desc: 'Settlement first: while the orders queue holds more ready purchase events than this, the notifications worker waits before each batch (at most STAMPEDE_NOTIFICATIONS_YIELD_MS).' }),
  STAMPEDE_NOTIFICATIONS_YIELD_MS: intIn(0, 600_000)({ default: 10_000, desc: 'Longest the notifications worker waits for the orders queue before a batch (0: it never waits).' }),
  STAMPEDE_RETRY_DELAYS_MS: str({ default: '1000,5000,30000', desc: 'Delay tiers before a failed message is retried; after the last it is dead-lettered.' }),
  STAMPEDE_NOTIFICATION_INBOX_CAP: intIn(1, 100_000)({ default: 1_000, desc: "Most notifications a buyer's inbox keeps (the oldest beyond it are deleted as it grows)." }),
  STAMPEDE_NOTIFICATION_RETENTION_DAYS: intIn(1, 3_650)({ default: 90, desc: 'Days a notification is kept in the inbox.' }),
  STAMPEDE_NOTIFICATION_SWEEP_MS: intIn(1_000, 86_400_000)({ default: 600_000, desc: 'How often the scheduler deletes the notifications past their retention age (until then they are neither shown nor counted).' }),
  STAMPEDE_RECONCILE_INTERVAL_MS: intIn(0, 86_400_000)({ default: 300_000, desc: 'How often the scheduler reconciles Redis with Postgres (sales, auctions, wallets, stuck purchases; `stampede reconcile` runs it once); 0: never on a schedule.' }),
  STAMPEDE_RESERVATION_DEADLINE_MS: intIn(1_000, 604_800_000)({ default: 600_000, desc: 'How long after its acceptance a purchase may stay neither settled nor failed: then the scheduler gives it up, and settlement fails it (RESERVATION_EXPIRED) and puts its stock back on sale, unless its own settlement committed first.' }),
  STAMPEDE_RESERVATION_SWEEP_MS: intIn(100, 3_600_000)({ default: 10_000, desc: 'How often the scheduler looks for purchases past their reservation deadline (and completes the stock transfers between a sharded sale\'s shards left half done).' }),
  STAMPEDE_RECONCILE_STUCK_AFTER_MS: intIn(1_000, 86_400_000)({ default: 300_000, desc: 'Reconciliation looks at an accepted purchase still pending in Redis this long after its acceptance: with no order in Postgres it is stuck (reported); with one, Redis did not follow its settlement (repaired).' }),
  STAMPEDE_OUTBID_EMAIL_WINDOW_MS: intIn(1_000, 86_400_000)({ default: 60_000, desc: 'The outbid throttle: a buyer outbid again and again on one auction gets at most one outbid e-mail per this window (their inbox keeps one outbid item per auction, updated to the latest price).' }),
  STAMPEDE_SALE_OPENING_NOTICE_MINUTES: intIn(0, 10_080)({ default: 15, desc: "How long before a sale opens its watchers are told (sale.opening on in_app, e-mail and SMS); 0 tells them as it opens. A sale created later than that before its start gets no notice (nobody can watch it yet)." }),
  STAMPEDE_FANOUT_CHUNK: intIn(100, 50_000)({ default: 10_000, desc: 'Recipients a fan-out (auction.created to a collection\'s followers, an announcement) tells per step: one transaction, one live-push pipeline and one batch of e-mail and SMS requests, so a crash resumes after the last chunk told.' }),
  STAMPEDE_FANOUT_PARTS: intIn(1, 16)({ default: 2, desc: 'Most parts a fan-out\'s audience is split into, told side by side by the notifications worker (each a chunk at a time); only an audience of at least 1,000 buyers a part (or STAMPEDE_FANOUT_CHUNK, if smaller) is split. 1 tells every audience a chunk after another.' }),
  STAMPEDE_MAX_INTERESTS: intIn(1, 100_000)({ default: 500, desc: 'Most collections one buyer may follow (PUT /v1/interests/{collection} beyond it is 409 LIMIT_REACHED).' }),
  STAMPEDE_SMTP_URL: url({ default: 'smtp://127.0.0.1:1025', desc: 'SMTP server the e-mail worker sends notifications through (smtp:// or smtps://, credentials in the URL).' }),
  STAMPEDE_MAILCATCHER_HTTP_PORT: tcpPort({ default: 1080, desc: 'Port (on 127.0.0.1) where the mail catcher `npm start` runs shows the mails it caught: GET /messages (0 picks a free one).' }),
  STAMPEDE_MAILCATCHER_KEEP: intIn(1, 10_000)({ default: 100, desc: 'Mails the mail catcher keeps in memory (the oldest go first).' }),
  STAMPEDE_MAIL_FROM: str({ default: 'Stampede <notifications@stampede.local>', desc: 'From address of notification e-mails.' }),
  STAMPEDE_PUBLIC_URL: url({ default: 'http://127.0.0.1:8080', desc: "The api's address as buyers reach it: e-mails link to it (one-click unsubscribe)." }),
  STAMPEDE_SMTP_TIMEOUT_MS: intIn(100, 120_000)({ default: 10_000, desc: 'Longest an SMTP connection, greeting or reply may take before the send is retried.' }),
  STAMPEDE_SMS_URL: url({ default: 'http://127.0.0.1:1026/Messages.json', desc: "SMS provider's message endpoint the SMS worker POSTs to (a Twilio-compatible form: To, From, Body; credentials in the URL go as HTTP Basic auth)." }),
  STAMPEDE_SMS_FROM: str({ default: '+15005550006', desc: 'Sender of notification SMS (an E.164 number or a sender id the provider allows).' }),
  STAMPEDE_SMS_TIMEOUT_MS: intIn(100, 120_000)({ default: 10_000, desc: "Longest the SMS provider's answer may take before the send is retried." }),
  STAMPEDE_WEBHOOK_ALLOW_PRIVATE: bool({ default: false, desc: 'Let webhook URLs resolve to loopback, private, link-local and metadata addresses (refused at registration and at every delivery otherwise); only for tests and the demo, on a trusted host.' }),
  STAMPEDE_WEBHOOK_RETRY_SCHEDULE_MS: str({ default: '0,5000,300000,1800000,7200000,18000000,36000000,36000000', desc: 'When each attempt of a webhook delivery is made, as the wait after the previous failure (the first: after the event; Standard Webhooks\' schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last the delivery is failed (replayable).' }),
  STAMPEDE_WEBHOOK_RETRY_AFTER_MAX_MS: intIn(0, 86_400_000)({ default: 36_000_000, desc: 'Longest Retry-After (on a 429 or 503) a webhook delivery honours; a longer one waits this long.' }),
  STAMPEDE_WEBHOOK_TIMEOUT_MS: intIn(100, 120_000)({ default: 15_000, desc: 'Longest a webhook endpoint may take to answer a delivery (connecting included) before the attempt counts as failed.' }),
  STAMPEDE_WEBHOOK_DISABLE_AFTER_MS: intIn(1, 2_592_000_000)({ default: 432_000_000, desc: 'An endpoint whose deliveries have failed this long without a success in between (5 days) is disabled, and its seller told.' }),
  STAMPEDE_WEBHOOK_SECRET_OVERLAP_MS: intIn(0, 2_592_000_000)({ default: 86_400_000, desc: 'After a secret rotation, how long deliveries are signed with the previous secret too (receivers switch over meanwhile).' }),
  STAMPEDE_WEBHOOK_RETENTION_DAYS: intIn(1, 3_650)({ default: 30, desc: 'Days a webhook message is kept with its attempts, to list, replay and recover (a disabled endpoint\'s included); then the scheduler deletes it once delivered or failed for good (a pending one is kept), as often as it sweeps the notifications (STAMPEDE_NOTIFICATION_SWEEP_MS).' }),
  STAMPEDE_WEBHOOK_CONCURRENCY: intIn(1, 10_000)({ default: 256, desc: 'Webhook requests one webhooks worker has in flight at most, over every endpoint.' }),
  STAMPEDE_WEBHOOK_ENDPOINT_CONCURRENCY: intIn(1, 1_000)({ default: 4, desc: 'Webhook requests in flight to one endpoint at most, so a slow or dead endpoint holds only its own slots and never delays another\'s deliveries.' }),
  STAMPEDE_WEBHOOK_POLL_MS: intIn(10, 60_000)({ default: 250, desc: 'How often the webhooks worker looks for deliveries due (retries, replays; new deliveries it fans out itself are sent at once).' }),
  STAMPEDE_SHUTDOWN_GRACE_MS: positiveInt({ default: 10_000, desc: 'How long a role may take to finish in-flight work on SIGTERM.' }),
  STAMPEDE_REQUIRE_NATIVE_UWS: bool({ default: true, desc: 'Refuse to start when uWebSockets.js fell back to its slow JS server.' }),
};

export type Config = ReturnType<typeof loadConfig>;

export class ConfigError extends Error {}

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  // envalid applies a `devDefault` only when NODE_ENV is set; unset, it is the schema's own default (development) for envalid too.
  const withMode = env.NODE_ENV === undefined ? { ...env, NODE_ENV: 'development' } : env;
  const cfg = cleanEnv(withMode, configSchema, {
    reporter: ({ errors }) => {
      const bad = Object.entries(errors);
      if (bad.length > 0) {
        throw new ConfigError(
          'invalid configuration: ' + bad.map(([name, err]) => `${name}: ${(err as Error).message}`).join('; '),
        );
      }
    },
  });
  if (cfg.STAMPEDE_JWT_SECRET.length < 32) {
    throw new ConfigError('invalid configuration: STAMPEDE_JWT_SECRET: must be at least 32 characters');
  }
  if (cfg.NODE_ENV === 'production' && cfg.STAMPEDE_JWT_SECRET === DEV_JWT_SECRET) {
    throw new ConfigError('invalid configuration: STAMPEDE_JWT_SECRET: the development default is refused in production');
  }
  if (cfg.NODE_ENV === 'production' && cfg.STAMPEDE_OPERATOR_KEY === DEV_OPERATOR_KEY) {
    throw new ConfigError('invalid configuration: STAMPEDE_OPERATOR_KEY: the development key is refused in production (set a key of your own, or empty to store none)');
  }
  if (cfg.NODE_ENV === 'production' && cfg.STAMPEDE_STOREFRONT) {
    throw new ConfigError('invalid configuration: STAMPEDE_STOREFRONT: the demo storefront hands out demo buyers\' tokens and is refused in production');
  }
  if (cfg.STAMPEDE_API_PROCESSES > 1 && cfg.STAMPEDE_HTTP_PORT === 0) {
    throw new ConfigError('invalid configuration: STAMPEDE_API_PROCESSES: api processes share STAMPEDE_HTTP_PORT, and 0 would give each a port of its own; set a port');
  }
  if (cfg.STAMPEDE_API_PROCESSES > 1 && cfg.STAMPEDE_API_METRICS_PORT + cfg.STAMPEDE_API_PROCESSES - 1 > 65_535) {
    throw new ConfigError(`invalid configuration: STAMPEDE_API_METRICS_PORT: ${cfg.STAMPEDE_API_PROCESSES} api processes need ports up to ${cfg.STAMPEDE_API_METRICS_PORT + cfg.STAMPEDE_API_PROCESSES - 1}`);
  }
  if (cfg.STAMPEDE_API_PROCESS_INDEX >= cfg.STAMPEDE_API_PROCESSES) {
    throw new ConfigError(`invalid configuration: STAMPEDE_API_PROCESS_INDEX: ${cfg.STAMPEDE_API_PROCESS_INDEX} is not one of STAMPEDE_API_PROCESSES's 0 to ${cfg.STAMPEDE_API_PROCESSES - 1}`);
  }
  if (cfg.STAMPEDE_WORKER_CONCURRENCY > cfg.STAMPEDE_DB_POOL_SIZE) {
    throw new ConfigError(
      `invalid configuration: STAMPEDE_WORKER_CONCURRENCY: ${cfg.STAMPEDE_WORKER_CONCURRENCY} lanes would wait for ${cfg.STAMPEDE_DB_POOL_SIZE} connections (STAMPEDE_DB_POOL_SIZE); keep it at most that`,
    );
  }
  const retryDelaysMs = cfg.STAMPEDE_RETRY_DELAYS_MS.split(',').map((s) => Number(s.trim()));
  if (retryDelaysMs.length === 0 || retryDelaysMs.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
    throw new ConfigError('invalid configuration: STAMPEDE_RETRY_DELAYS_MS: must be a comma-separated list of positive integers');
  }
  const webhookScheduleMs = cfg.STAMPEDE_WEBHOOK_RETRY_SCHEDULE_MS.split(',').map((s) => Number(s.trim()));
  if (webhookScheduleMs.length === 0 || webhookScheduleMs.length > 20 || webhookScheduleMs.some((n) => !Number.isSafeInteger(n) || n < 0 || n > 604_800_000)) {
    throw new ConfigError('invalid configuration: STAMPEDE_WEBHOOK_RETRY_SCHEDULE_MS: must be a comma-separated list of 1 to 20 integers from 0 to 604,800,000');
  }
  return { ...cfg, retryDelaysMs, webhookScheduleMs, topology: topologyFor(cfg.STAMPEDE_AMQP_PREFIX, retryDelaysMs) };
}
