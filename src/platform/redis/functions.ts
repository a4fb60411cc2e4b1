/**
 * Loads the Lua decision scripts from lua/ as ONE Redis Functions library:
 * `verbNoun-N.lua` has N KEYS (`verbNoun-n.lua`: any number, given by the
 * caller), `--@include name` pulls in lua/includes/name.lua.
 *
 * Why functions (FCALL) and not EVALSHA: an EVAL script runs its whole text
 * on every call, so each call re-created every helper of its includes (a
 * dozen closures for the auction book) before deciding anything; and EVAL
 * sets up its KEYS and ARGV globals per call. A library runs its top level
 * once, at FUNCTION LOAD: the includes are defined there, once, and each
 * script is a registered function that receives KEYS and ARGV (the cost of
 * each, measured, is in docs/performance.md). The library begins with the
 * OUTCOME table (outcomes.ts) and the EVENT table (src/events/catalogue.ts).
 *
 * The library and its functions are named by the library's content hash,
 * so two releases running side by side never call each other's version.
 * Each client loads the library before its first call (FUNCTION LOAD is
 * idempotent; on a cluster, on every master), and again if Redis lost it (a
 * restart without persistence, FUNCTION FLUSH, a master added to a
 * cluster): the call is then retried once.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { masters } from './client.js';
import { projectRoot } from '../paths.js';
import { luaEventTable } from '../../events/catalogue.js';
import { luaOutcomeTable } from './outcomes.js';

/** A script's name: its file name under lua/<product>/ without `-N.lua`. */
export type ScriptName = string;

export interface LoadedScript {
  name: ScriptName;
  /** null: variadic (`-n.lua`), the caller says how many. */
  numberOfKeys: number | null;
  /** The registered function's name (carries the library's hash). */
  fn: string;
}

export interface ScriptLibrary {
  /** `stampede_<hash>` */
  name: string;
  /** The library's source, as FUNCTION LOAD takes it. */
  code: string;
  scripts: Map<ScriptName, LoadedScript>;
}

const luaDir = join(projectRoot, 'lua');
const INCLUDE = /^--@include (\w+)\s*$/gm;

/** The include's source, with its own includes before it (each once, tracked in `seen`). */
function expandInclude(name: string, seen: Set<string>): string {
  if (seen.has(name)) return '';
  seen.add(name);
  return readFileSync(join(luaDir, 'includes', `${name}.lua`), 'utf8').replace(INCLUDE, (_line, inner: string) => expandInclude(inner, seen));
}

function findScripts(): Map<string, { file: string; numberOfKeys: number | null }> {
  const found = new Map<string, { file: string; numberOfKeys: number | null }>();
  for (const dir of readdirSync(luaDir, { withFileTypes: true })) {
    if (!dir.isDirectory() || dir.name === 'includes') continue;
    for (const f of readdirSync(join(luaDir, dir.name))) {
      const m = /^(\w+)-(\d+|n)\.lua$/.exec(f);
      if (!m) continue;
      if (found.has(m[1]!)) throw new Error(`two scripts named ${m[1]}`);
      found.set(m[1]!, { file: join(luaDir, dir.name, f), numberOfKeys: m[2] === 'n' ? null : Number(m[2]) });
    }
  }
  return found;
}

let cache: ScriptLibrary | undefined;

/** The library built from lua/ (read once per process). */
export function scriptLibrary(): ScriptLibrary {
  if (cache) return cache;
  const files = findScripts();
  const seen = new Set<string>();
  const includes: string[] = [];
  const bodies: { name: ScriptName; numberOfKeys: number | null; body: string }[] = [];
  for (const [name, entry] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const body = readFileSync(entry.file, 'utf8').replace(INCLUDE, (_line, inc: string) => {
      includes.push(expandInclude(inc, seen));
      return '';
    });
    bodies.push({ name, numberOfKeys: entry.numberOfKeys, body });
  }
  // The hash names the library and its functions; it is taken over everything but the names themselves.
  const text = (hash: string) =>
    `#!lua name=stampede_${hash}\n` +
    luaOutcomeTable() +
    luaEventTable() +
    includes.join('\n') +
    bodies.map((b) => `\nredis.register_function('stampede_${b.name}_${hash}', function(KEYS, ARGV)\n${b.body}\nend)\n`).join('');
  const hash = createHash('sha1').update(text('')).digest('hex').slice(0, 10);
  const scripts = new Map(bodies.map((b): [ScriptName, LoadedScript] => [b.name, { name: b.name, numberOfKeys: b.numberOfKeys, fn: `stampede_${b.name}_${hash}` }]));
  cache = { name: `stampede_${hash}`, code: text(hash), scripts };
  return cache;
}

/** Clients the library is known to be loaded on. */
const loaded = new WeakSet<Redis>();
const loading = new WeakMap<Redis, Promise<void>>();

/** Loads the library on the client's server (on a cluster: on every master) unless it is there already. */
export function loadLibrary(redis: Redis): Promise<void> {
  let p = loading.get(redis);
  if (!p) {
    p = masters(redis).then((nodes) => Promise.all(nodes.map(loadOn))).then(
      () => void loaded.add(redis),
      (err: Error) => {
        loading.delete(redis);
        throw err;
      },
    );
    loading.set(redis, p);
  }
  return p;
}

/** FUNCTION LOAD on one node (Redis does not spread functions across a cluster's shards; a master's replicas get them from it). */
function loadOn(node: Redis): Promise<void> {
  return (node.function('LOAD', scriptLibrary().code) as Promise<unknown>).then(
    () => undefined,
    (err: Error) => {
      if (/already exists/.test(err.message)) return;
      if (/unknown command/i.test(err.message)) throw new Error(`Redis 7.0 or newer is required (the scripts are a Redis Functions library): ${err.message}`);
      throw err;
    },
  );
}

/**
 * Loads the library on a new client (its first call would otherwise do it);
 * on a cluster, also on each node the client meets later (a node added, a
 * replica promoted by a failover). A master that lost it all the same (a
 * restart without persistence) is caught by the call, which loads it on
 * every master and retries.
 */
export function preloadLibrary(redis: Redis): void {
  loadLibrary(redis).catch(() => {}); // Redis not reachable yet: the first call loads it again
  if (redis.isCluster) {
    // A replica refuses the load (READONLY); it has the library from its master.
    (redis as unknown as Cluster).on('+node', (node: Redis) => void loadOn(node).catch(() => {}));
  }
}

/**
 * Calls a script with KEYS and ARGV; each product's typed wrappers
 * (src/<product>/scripts.ts) are the only callers. Checks the key count against the
 * file name.
 */
export function runScript(redis: Redis, name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
  const s = scriptLibrary().scripts.get(name);
  if (!s) return Promise.reject(new Error(`no script ${name}-N.lua under ${luaDir}`));
  if (s.numberOfKeys !== null && keys.length !== s.numberOfKeys) return Promise.reject(new Error(`${name} takes ${s.numberOfKeys} keys, got ${keys.length}`));
  if (!loaded.has(redis)) return loadLibrary(redis).then(() => call(redis, s, keys, args));
  return call(redis, s, keys, args);
}

/** Told of every script call a client makes: its answer and how long it took (see observeScripts). */
export type ScriptObserver = (script: ScriptName, reply: unknown, seconds: number) => void;

const observers = new WeakMap<Redis, ScriptObserver>();

/** From now on, tells `observer` of each script `redis` calls (the api's decisions, for metrics). */
export function observeScripts(redis: Redis, observer: ScriptObserver): void {
  observers.set(redis, observer);
}

async function call(redis: Redis, s: LoadedScript, keys: string[], args: (string | number)[]): Promise<unknown> {
  const observer = observers.get(redis);
  if (!observer) return callOnce(redis, s, keys, args);
  const started = performance.now();
  const reply = await callOnce(redis, s, keys, args);
  observer(s.name, reply, (performance.now() - started) / 1000);
  return reply;
}

async function callOnce(redis: Redis, s: LoadedScript, keys: string[], args: (string | number)[]): Promise<unknown> {
  try {
    return await redis.fcall(s.fn, keys.length, ...keys, ...args);
  } catch (err) {
    // Redis lost its functions (restarted without persistence, FUNCTION FLUSH, a new master): load them again on every master, once.
    if (!/Function not found/i.test((err as Error).message)) throw err;
    loaded.delete(redis);
    loading.delete(redis);
    await loadLibrary(redis);
    return redis.fcall(s.fn, keys.length, ...keys, ...args);
  }
}
