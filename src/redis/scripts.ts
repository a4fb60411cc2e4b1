/**
 * Loads the Lua decision scripts from lua/: `verbNoun-N.lua` has N KEYS
 * (`verbNoun-n.lua`: any number, given by the caller),
 * `--@include name` pulls in lua/includes/name.lua. Each script is
 * registered with ioredis under a name carrying its content hash, so two
 * releases running side by side never call each other's version.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis, ChainableCommander } from 'ioredis';
import { projectRoot } from '../paths.js';

export const SCRIPT_NAMES = ['reservePurchase', 'settlePurchases', 'requestCancel', 'loadSale', 'addStock', 'trimOutbox',
  'loadAuction', 'placeBid', 'retractBid', 'promoteBid', 'closeAuction'] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

export interface LoadedScript {
  name: ScriptName;
  /** null: variadic (`-n.lua`), the caller says how many. */
  numberOfKeys: number | null;
  lua: string;
  command: string;
}

const luaDir = join(projectRoot, 'lua');

function expandIncludes(source: string, seen = new Set<string>()): string {
  return source.replace(/^--@include (\w+)\s*$/gm, (_line, name: string) => {
    if (seen.has(name)) return '';
    seen.add(name);
    return expandIncludes(readFileSync(join(luaDir, 'includes', `${name}.lua`), 'utf8'), seen);
  });
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

let cache: Map<ScriptName, LoadedScript> | undefined;

export function loadScripts(): Map<ScriptName, LoadedScript> {
  if (cache) return cache;
  const files = findScripts();
  cache = new Map();
  for (const name of SCRIPT_NAMES) {
    const entry = files.get(name);
    if (!entry) throw new Error(`lua script ${name}-N.lua not found under ${luaDir}`);
    const lua = expandIncludes(readFileSync(entry.file, 'utf8'));
    const hash = createHash('sha1').update(lua).digest('hex').slice(0, 10);
    cache.set(name, { name, numberOfKeys: entry.numberOfKeys, lua, command: `stampede_${name}_${hash}` });
  }
  return cache;
}

/** Registers every script on a client (idempotent). */
export function defineScripts(redis: Redis): void {
  for (const s of loadScripts().values()) {
    if (!(s.command in redis)) redis.defineCommand(s.command, s.numberOfKeys === null ? { lua: s.lua } : { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
}

type Runner = Redis | ChainableCommander;

/**
 * Calls a script with KEYS and ARGV; the typed wrappers in sale-scripts.ts are
 * the only callers. Checks the key count against the file name.
 */
export function runScript(redis: Runner, name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
  const s = loadScripts().get(name)!;
  if (s.numberOfKeys !== null && keys.length !== s.numberOfKeys) throw new Error(`${name} takes ${s.numberOfKeys} keys, got ${keys.length}`);
  // ioredis adds defined commands as dynamic methods, which its types cannot name.
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[s.command];
  if (!fn) throw new Error(`script ${name} not defined on this client; call defineScripts first`);
  return s.numberOfKeys === null ? fn.call(redis, keys.length, ...keys, ...args) : fn.call(redis, ...keys, ...args);
}
