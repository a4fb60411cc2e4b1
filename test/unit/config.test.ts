/**
 * Configuration: every bad value stops the process with a message naming the
 * variable and what it must be; every count and size has a ceiling.
 */
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/platform/config.js';

const base = { STAMPEDE_JWT_SECRET: 'config-test-secret-config-test-secret-0123' };

t.test('the defaults load', async (t) => {
  const cfg = loadConfig(base);
  t.equal(cfg.STAMPEDE_WORKER_CONCURRENCY, 4);
  t.equal(cfg.STAMPEDE_WORKER_PREFETCH, 200);
  t.ok(cfg.STAMPEDE_WORKER_CONCURRENCY <= cfg.STAMPEDE_DB_POOL_SIZE);
});

t.test('out-of-range counts and sizes are refused, naming the variable and the range', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['STAMPEDE_WORKER_PREFETCH', '65536', /STAMPEDE_WORKER_PREFETCH: must be an integer from 1 to 65,535/],
    ['STAMPEDE_WORKER_PREFETCH', '0', /STAMPEDE_WORKER_PREFETCH: must be an integer from 1/],
    ['STAMPEDE_WORKER_CONCURRENCY', '65', /STAMPEDE_WORKER_CONCURRENCY: must be an integer from 1 to 64/],
    ['STAMPEDE_WORKER_BATCH', '1.5', /STAMPEDE_WORKER_BATCH: must be an integer/],
    ['STAMPEDE_RELAY_BATCH', '10001', /STAMPEDE_RELAY_BATCH: must be an integer from 1 to 10,000/],
    ['STAMPEDE_RELAY_EVENTS_PER_MESSAGE', '-3', /STAMPEDE_RELAY_EVENTS_PER_MESSAGE/],
    ['STAMPEDE_DB_POOL_SIZE', 'lots', /STAMPEDE_DB_POOL_SIZE: must be an integer from 1 to 500/],
    ['STAMPEDE_MAX_BODY_BYTES', '2000000', /STAMPEDE_MAX_BODY_BYTES: must be an integer from 256 to 1,048,576/],
    ['STAMPEDE_MAX_QUANTITY', '1000001', /STAMPEDE_MAX_QUANTITY/],
    ['STAMPEDE_API_KEY_CACHE_MS', '5001', /STAMPEDE_API_KEY_CACHE_MS: must be an integer from 0 to 5,000/],
    ['STAMPEDE_API_KEY_CACHE_MS', '-1', /STAMPEDE_API_KEY_CACHE_MS/],
    ['STAMPEDE_AMQP_MANAGEMENT_URL', 'rabbit:15672', /STAMPEDE_AMQP_MANAGEMENT_URL: must be '', off, or an http\(s\) URL/],
    ['STAMPEDE_AMQP_MANAGEMENT_URL', 'not a url', /STAMPEDE_AMQP_MANAGEMENT_URL/],
    ['STAMPEDE_OPS_BOARD_MS', '100', /STAMPEDE_OPS_BOARD_MS: must be an integer from 200 to 60,000/],
  ];
  for (const [name, value, message] of cases) {
    t.throws(() => loadConfig({ ...base, [name]: value }), { constructor: ConfigError, message }, `${name}=${value}`);
  }
  t.equal(loadConfig({ ...base, STAMPEDE_WORKER_PREFETCH: '65535' }).STAMPEDE_WORKER_PREFETCH, 65_535, 'the ceiling itself is accepted');
});

t.test('more worker lanes than Postgres connections is refused', async (t) => {
  t.throws(() => loadConfig({ ...base, STAMPEDE_WORKER_CONCURRENCY: '8', STAMPEDE_DB_POOL_SIZE: '4' }), {
    constructor: ConfigError, message: /STAMPEDE_WORKER_CONCURRENCY: 8 lanes would wait for 4 connections/,
  });
  t.equal(loadConfig({ ...base, STAMPEDE_WORKER_CONCURRENCY: '4', STAMPEDE_DB_POOL_SIZE: '4' }).STAMPEDE_WORKER_CONCURRENCY, 4);
});

t.test('secrets: too short, or the development default in production', async (t) => {
  t.throws(() => loadConfig({ STAMPEDE_JWT_SECRET: 'short' }), { constructor: ConfigError, message: /at least 32 characters/ });
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), { constructor: ConfigError, message: /development default is refused in production/ });
  const production = { ...base, NODE_ENV: 'production' };
  t.throws(() => loadConfig(production), {
    constructor: ConfigError, message: /STAMPEDE_OPERATOR_KEY: the development key is refused in production/,
  }, 'the development operator key (the default) is refused in production');
  t.throws(() => loadConfig({ ...production, STAMPEDE_OPERATOR_KEY: 'dev-operator-key' }), { constructor: ConfigError, message: /STAMPEDE_OPERATOR_KEY/ }, 'also when set explicitly');
  t.equal(loadConfig({ ...production, STAMPEDE_OPERATOR_KEY: 'an-operator-key-of-our-own' }).STAMPEDE_OPERATOR_KEY, 'an-operator-key-of-our-own', 'a key of its own is accepted');
  t.equal(loadConfig({ ...production, STAMPEDE_OPERATOR_KEY: '' }).STAMPEDE_OPERATOR_KEY, '', 'no bootstrap key at all is accepted');
  t.equal(loadConfig({ ...base, NODE_ENV: 'development' }).STAMPEDE_OPERATOR_KEY, 'dev-operator-key', 'development keeps its key');
});

t.test('the demo storefront: on outside production (NODE_ENV unset is development), off and refused in production', async (t) => {
  t.equal(loadConfig(base).STAMPEDE_STOREFRONT, true, 'NODE_ENV unset');
  t.equal(loadConfig({ ...base, NODE_ENV: 'test' }).STAMPEDE_STOREFRONT, true);
  t.equal(loadConfig({ ...base, STAMPEDE_STOREFRONT: 'false' }).STAMPEDE_STOREFRONT, false, 'development may turn it off');
  const production = { ...base, NODE_ENV: 'production', STAMPEDE_JWT_SECRET: 'a-production-secret-a-production-secret-01', STAMPEDE_OPERATOR_KEY: '' };
  t.equal(loadConfig(production).STAMPEDE_STOREFRONT, false, 'off by default in production');
  t.throws(() => loadConfig({ ...production, STAMPEDE_STOREFRONT: 'true' }), { constructor: ConfigError, message: /STAMPEDE_STOREFRONT: .*refused in production/ });
});

t.test('Redis Cluster seed nodes: empty is one node, host:port lists are read, anything else is refused naming the variable', async (t) => {
  t.same(loadConfig({ ...base }).STAMPEDE_REDIS_CLUSTER_NODES, [], 'unset: one Redis node');
  t.same(loadConfig({ ...base, STAMPEDE_REDIS_CLUSTER_NODES: '127.0.0.1:7101, redis-b.internal:7102,[::1]:7103' }).STAMPEDE_REDIS_CLUSTER_NODES,
    ['127.0.0.1:7101', 'redis-b.internal:7102', '[::1]:7103']);
  for (const value of ['127.0.0.1', '127.0.0.1:7101,', 'redis://127.0.0.1:7101', 'host:0', 'host:70000']) {
    t.throws(() => loadConfig({ ...base, STAMPEDE_REDIS_CLUSTER_NODES: value }), { constructor: ConfigError, message: /STAMPEDE_REDIS_CLUSTER_NODES: must be '' or comma-separated host:port seed nodes/ }, value);
  }
});

t.test("RabbitMQ: one URL or a cluster's nodes comma-separated; anything else is refused naming the variable", async (t) => {
  t.equal(loadConfig({ ...base, STAMPEDE_AMQP_URL: 'amqp://u:p@10.0.0.1:5672, amqps://u:p@mq-b.internal:5671/vh' }).STAMPEDE_AMQP_URL,
    'amqp://u:p@10.0.0.1:5672,amqps://u:p@mq-b.internal:5671/vh');
  for (const value of ['http://127.0.0.1:5672', 'amqp://127.0.0.1:5672,', '127.0.0.1:5672', 'amqp://a:5672,redis://b:6379']) {
    t.throws(() => loadConfig({ ...base, STAMPEDE_AMQP_URL: value }), { constructor: ConfigError, message: /STAMPEDE_AMQP_URL: must be an amqp:\/\/ or amqps:\/\/ URL, or several comma-separated/ }, value);
  }
});

t.test('api processes: several need a real port, each index is one of them, their metrics ports fit', async (t) => {
  t.equal(loadConfig(base).STAMPEDE_API_PROCESSES, 1);
  t.equal(loadConfig({ ...base, STAMPEDE_API_PROCESSES: '4', STAMPEDE_API_PROCESS_INDEX: '3' }).STAMPEDE_API_PROCESS_INDEX, 3);
  t.throws(() => loadConfig({ ...base, STAMPEDE_API_PROCESSES: '2', STAMPEDE_HTTP_PORT: '0' }), { constructor: ConfigError, message: /STAMPEDE_API_PROCESSES: .*set a port/ });
  t.throws(() => loadConfig({ ...base, STAMPEDE_API_PROCESSES: '2', STAMPEDE_API_PROCESS_INDEX: '2' }), { constructor: ConfigError, message: /STAMPEDE_API_PROCESS_INDEX: 2 is not one of STAMPEDE_API_PROCESSES's 0 to 1/ });
  t.throws(() => loadConfig({ ...base, STAMPEDE_API_PROCESSES: '3', STAMPEDE_API_METRICS_PORT: '65534' }), { constructor: ConfigError, message: /STAMPEDE_API_METRICS_PORT: 3 api processes need ports up to 65536/ });
  t.throws(() => loadConfig({ ...base, STAMPEDE_API_PROCESSES: '65' }), { constructor: ConfigError, message: /STAMPEDE_API_PROCESSES: must be an integer from 1 to 64/ });
});
