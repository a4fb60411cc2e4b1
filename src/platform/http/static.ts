/**
 * Pages served as they are (the operators' dashboard, the storefront, the API
 * docs) and the browser libraries they load from node_modules, so every page
 * works offline. Each file is read once, at registration: a missing file
 * fails the start, not a visitor. Nothing is cached by the browser
 * (`no-store`): the files are small, and a deploy is seen at once.
 */
import { readFileSync } from 'node:fs';
import { extname, isAbsolute, join } from 'node:path';
import { projectRoot } from '../paths.js';
import type { HttpServer } from './server.js';
import type { RouteDoc } from './doc.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** A page's headers: no framing by others, nothing loaded from elsewhere. */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/**
 * Serves `file` (relative to the project root, or absolute) at GET `path`.
 * The OpenAPI document lists it as `doc` says, or as a file of its type.
 */
export function serveFile(http: HttpServer, path: string, file: string, headers: Record<string, string> = {}, doc?: Partial<RouteDoc>): void {
  const full = isAbsolute(file) ? file : join(projectRoot, file);
  const type = TYPES[extname(full)];
  if (!type) throw new Error(`no content type known for ${full}`);
  const bytes = readFileSync(full);
  // Binary files would be mangled by a string: pages and scripts are text.
  const text = bytes.toString('utf8');
  const reply = { status: 200, text, contentType: type, headers: { ...PAGE_HEADERS, ...headers } };
  const fileDoc: RouteDoc = {
    summary: `The file ${path.split('/').pop()}`, tags: ['pages'],
    ...doc,
    responses: { 200: { description: 'The file.', contentType: type.split(';')[0], schema: { type: 'string' } } },
    refusals: [],
  };
  http.route('get', path, () => reply, { doc: fileDoc });
}
