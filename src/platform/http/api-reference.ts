/**
 * The API's own reference: `GET /openapi.json`, the OpenAPI 3.1 document of
 * every route this server registered, and `GET /docs`, Swagger UI reading
 * it. Swagger UI is served from node_modules (swagger-ui-dist) by this server,
 * so the page works offline; its Content-Security-Policy lets the browser
 * load nothing from anywhere else.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { projectRoot } from '../paths.js';
import { buildOpenApi } from './openapi.js';
import type { HttpServer } from './server.js';
import { serveFile } from './static.js';

const DOCS_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** Registers /openapi.json and /docs; call it after every other route, so the document names them all. */
export function registerApiReference(http: HttpServer, description: string): void {
  const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  let text: string | undefined;
  http.route('get', '/openapi.json', () => {
    // Built on first request: every route (those registered after this one too) is in by then.
    text ??= JSON.stringify(buildOpenApi(http.routes, { title: 'Stampede', version: pkg.version, description }));
    return { status: 200, text, contentType: 'application/json', headers: { 'cache-control': 'no-store' } };
  }, {
    doc: {
      summary: 'This document (OpenAPI 3.1)', tags: ['reference'],
      responses: { 200: { description: 'The OpenAPI document.', schema: { type: 'object', properties: { openapi: { const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } }, required: ['openapi', 'info', 'paths'] } } },
    },
  });
  const swaggerUi = join(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'), '..');
  const tags = ['reference'];
  serveFile(http, '/docs', 'src/platform/http/api-docs/index.html', DOCS_HEADERS, { summary: 'The API reference (Swagger UI)', tags });
  serveFile(http, '/docs/init.js', 'src/platform/http/api-docs/init.js', {}, { summary: 'The API reference\'s start-up script', tags });
  for (const file of ['swagger-ui.css', 'swagger-ui-bundle.js']) {
    serveFile(http, `/docs/${file}`, join(swaggerUi, file), {}, { summary: `Swagger UI: ${file}`, tags });
  }
}

