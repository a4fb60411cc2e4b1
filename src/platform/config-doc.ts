/**
 * The README's configuration table, generated from the config schema, so the
 * page cannot drift from what the processes read: one row per variable with
 * its type, its default and its line of doc. The README holds it between
 * CONFIG_BEGIN and CONFIG_END; test/unit/config-doc.test.ts fails when the
 * two differ, and `npm run docs:config` writes it:
 *
 *   node --import tsx src/platform/config-doc.ts --write README.md
 *   node --import tsx src/platform/config-doc.ts             # prints the table
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bool, str, url } from 'envalid';
import { configSchema } from './config.js';

export const CONFIG_BEGIN = '<!-- config:begin -->';
export const CONFIG_END = '<!-- config:end -->';

/** What envalid keeps of a setting: the spec it was given, plus its parser. */
interface SettingSpec {
  default?: unknown;
  /** The default outside production, when it differs. */
  devDefault?: unknown;
  desc?: string;
  choices?: readonly unknown[];
  _parse: (input: string) => unknown;
}

// envalid's built-in validators share one parser per kind across every spec.
const BUILT_IN_TYPES = new Map<unknown, string>([
  [str({})._parse, 'string'],
  [url({})._parse, 'URL'],
  [bool({})._parse, 'boolean'],
]);

/**
 * The type a setting accepts. Built-in validators are named; the schema's own
 * validators are described in their own words, the message they refuse a
 * value with ("must be an integer from 1 to 500" -> "integer from 1 to 500").
 */
function typeOf(name: string, spec: SettingSpec): string {
  if (spec.choices) return 'one of ' + spec.choices.map((c) => code(String(c))).join(', ');
  const builtIn = BUILT_IN_TYPES.get(spec._parse);
  if (builtIn) return builtIn;
  try {
    spec._parse('not a value');
  } catch (err) {
    const words = (err as Error).message.replace(/^must be (an? )?/, '');
    if (words !== '') return words;
  }
  throw new Error(`config-doc: cannot describe the type of ${name}; name its validator in BUILT_IN_TYPES`);
}

function code(text: string): string {
  return text === '' ? '(empty)' : '`' + text + '`';
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The table, one row per variable in the schema's order. */
export function configMarkdown(schema: Record<string, SettingSpec> = configSchema): string {
  const rows = Object.entries(schema).map(([name, spec]) => {
    let fallback = spec.default === undefined ? '(required)' : code(String(spec.default));
    if (spec.devDefault !== undefined) fallback = `${code(String(spec.devDefault))} (${fallback} in production)`;
    return `| \`${name}\` | ${cell(typeOf(name, spec))} | ${cell(fallback)} | ${cell(spec.desc ?? '')} |`;
  });
  return ['| variable | type | default | what it does |', '|---|---|---|---|', ...rows].join('\n');
}

/** The text between the markers, without the blank lines around it; undefined when a marker is missing. */
export function configTableOf(readme: string): string | undefined {
  const begin = readme.indexOf(CONFIG_BEGIN);
  const end = readme.indexOf(CONFIG_END);
  if (begin < 0 || end < begin) return undefined;
  return readme.slice(begin + CONFIG_BEGIN.length, end).trim();
}

/**
 * How the README's table differs from the schema's, naming the first
 * variable whose row differs (or is missing, or is extra); undefined when
 * they agree.
 */
export function configTableDifference(readme: string, expected: string = configMarkdown()): string | undefined {
  const actual = configTableOf(readme);
  if (actual === undefined) return `the README has no ${CONFIG_BEGIN} … ${CONFIG_END} section`;
  const want = expected.split('\n');
  const have = actual.split('\n');
  const variableOf = (row: string | undefined) => /^\| `([A-Z0-9_]+)`/.exec(row ?? '')?.[1];
  const wanted = new Set(want.map(variableOf));
  const had = new Set(have.map(variableOf));
  for (let i = 0; i < Math.max(want.length, have.length); i++) {
    if (want[i] === have[i]) continue;
    const [wantName, haveName] = [variableOf(want[i]), variableOf(have[i])];
    // A row the schema no longer has, or one the README lacks, is named rather than the row it displaced.
    const name = (haveName !== undefined && !wanted.has(haveName) ? haveName : undefined)
      ?? (wantName !== undefined && !had.has(wantName) ? wantName : undefined)
      ?? wantName ?? haveName ?? `line ${i + 1} (the header)`;
    return `${name}: the README says\n  ${have[i] ?? '(nothing)'}\nthe schema says\n  ${want[i] ?? '(nothing)'}\n(run npm run docs:config)`;
  }
  return undefined;
}

/** The README with its table replaced by the schema's. */
export function withConfigTable(readme: string, table: string = configMarkdown()): string {
  const begin = readme.indexOf(CONFIG_BEGIN);
  const end = readme.indexOf(CONFIG_END);
  if (begin < 0 || end < begin) throw new Error(`no ${CONFIG_BEGIN} … ${CONFIG_END} section to write the table into`);
  return readme.slice(0, begin + CONFIG_BEGIN.length) + '\n\n' + table + '\n\n' + readme.slice(end);
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const at = process.argv.indexOf('--write');
  if (at < 0) {
    process.stdout.write(configMarkdown() + '\n');
  } else {
    const file = process.argv[at + 1] ?? 'README.md';
    const before = readFileSync(file, 'utf8');
    const after = withConfigTable(before);
    if (after !== before) writeFileSync(file, after);
    process.stdout.write(after === before ? `${file}: configuration table already up to date\n` : `${file}: configuration table rewritten\n`);
  }
}
