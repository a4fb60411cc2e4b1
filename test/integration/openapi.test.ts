/**
 * The OpenAPI document: every route the api registered is in it with its
 * method; it is valid OpenAPI 3.1 and every schema in it compiles as JSON
 * Schema 2020-12; request bodies are the very schemas the routes validate
 * with; the contract check refuses what the document does not allow; and
 * /docs is a page whose every asset comes from this api, which a real
 * headless Chromium renders with the document's operations.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { Validator } from '@seriousme/openapi-schema-validator';
import { boot, call } from '../helpers/system.js';
import { Contract, inlineRefs } from '../helpers/openapi.js';
import { openApiPath } from '../../src/platform/http/openapi.js';

// A parsed document, walked freely: its shape is what the tests check.
type Json = Record<string, any>;

const addFormats = ((addFormatsPlugin as unknown as { default?: unknown }).default ?? addFormatsPlugin) as (ajv: Ajv2020) => Ajv2020;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

t.test('the document', async (t) => {
  const sys = await boot(t);
  const answer = await call(`${sys.url}/openapi.json`);
  t.equal(answer.status, 200);
  t.match(answer.headers.get('content-type'), /^application\/json/);
  const doc = answer.body as Json;

  t.test('names every route the api registered, with its method', async (t) => {
    const routes = sys.api!.routes;
    t.ok(routes.length > 40, `${routes.length} routes registered`);
    const missing = routes.filter((r) => !doc.paths[openApiPath(r.pattern)]?.[r.method]).map((r) => `${r.method} ${r.pattern}`);
    t.same(missing, [], 'no registered route is missing from /openapi.json');
    const documented = Object.entries(doc.paths as Json).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m} ${path}`));
    const registered = new Set(routes.map((r) => `${r.method} ${openApiPath(r.pattern)}`));
    t.same(documented.filter((d) => !registered.has(d)), [], 'and names no route the api does not register');
  });

  t.test('is valid OpenAPI 3.1', async (t) => {
    t.equal(doc.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(doc);
    t.same(result.errors ?? [], [], 'the OpenAPI 3.1 schema finds nothing wrong');
    t.ok(result.valid);
  });

  t.test('every schema in it compiles as JSON Schema 2020-12 (ajv, strict)', async (t) => {
    const ajv = addFormats(new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true }));
    const schemas: [string, unknown][] = [];
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const [method, op] of Object.entries(item as Json)) {
        for (const p of op.parameters ?? []) schemas.push([`${method} ${path} parameter ${p.name}`, p.schema]);
        for (const [type, media] of Object.entries((op.requestBody?.content ?? {}) as Json)) schemas.push([`${method} ${path} body ${type}`, media.schema]);
        for (const [status, r] of Object.entries(op.responses as Json)) {
          for (const [type, media] of Object.entries((r.content ?? {}) as Json)) schemas.push([`${method} ${path} ${status} ${type}`, media.schema]);
        }
      }
    }
    t.ok(schemas.length > 200, `${schemas.length} schemas`);
    const failed: string[] = [];
    for (const [where, schema] of schemas) {
      try {
        ajv.compile(inlineRefs(schema, doc.components.schemas) as Json);
      } catch (err) {
        failed.push(`${where}: ${(err as Error).message}`);
      }
    }
    t.same(failed, [], 'every schema compiles');
  });

  t.test('each operation says what it is, who may call it and how it refuses', async (t) => {
    const wrong: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const [method, op] of Object.entries(item as Json)) {
        const where = `${method} ${path}`;
        if (!op.summary || !op.tags?.length) wrong.push(`${where}: no summary or tags`);
        if (!Array.isArray(op.security)) wrong.push(`${where}: no security`);
        for (const p of op.parameters ?? []) if (p.in === 'path' && !p.description) wrong.push(`${where}: path parameter ${p.name} undescribed`);
        const statuses = Object.keys(op.responses);
        if (!statuses.some((s) => /^[123]/.test(s))) wrong.push(`${where}: no successful answer`);
        for (const s of ['500', '503']) if (!op.responses[s]?.content?.['application/problem+json']) wrong.push(`${where}: no ${s} problem`);
        if (op.security?.some((s: Json) => 'buyerToken' in s || 'apiKey' in s) && !op.responses['401']) wrong.push(`${where}: secured, yet no 401`);
        if (op.requestBody && !op.responses['400']) wrong.push(`${where}: takes a body, yet no 400`);
      }
    }
    t.same(wrong, []);
    const purchase = doc.paths['/v1/sales/{id}/purchases'].post;
    t.same(purchase.security, [{ buyerToken: [] }], 'a purchase needs a buyer\'s token');
    t.same(purchase.responses['409'].content['application/problem+json'].schema.allOf[1].properties.code.enum.sort(),
      ['IDEMPOTENCY_IN_PROGRESS', 'LIMIT_REACHED', 'NOT_ENOUGH_STOCK', 'PURCHASE_IN_PROGRESS', 'SALE_ENDED', 'SALE_NOT_OPEN', 'SOLD_OUT'], 'with its exact refusals');
    t.ok(purchase.responses['429'].headers['Retry-After'], '429 carries Retry-After');
    t.same(doc.paths['/v1/sales'].post.security, [{ apiKey: [] }], 'creating a sale needs an X-Api-Key');
    t.ok(doc.components.securitySchemes.buyerToken && doc.components.securitySchemes.apiKey);
  });

  t.test('request bodies are the schemas the routes validate with', async (t) => {
    const bid = doc.paths['/v1/auctions/{id}/bids'].post.requestBody.content['application/json'].schema;
    t.same(bid.required, ['amount']);
    t.same(bid.properties.maxAmount.type, ['integer', 'null'], 'ajv\'s nullable is JSON Schema\'s null type');
    const purchase = doc.paths['/v1/sales/{id}/purchases'].post.requestBody.content['application/json'].schema;
    t.equal(purchase.properties.quantity.maximum, sys.cfg.STAMPEDE_MAX_QUANTITY, 'the configured quantity limit');
    const [someone] = await sys.createBuyers(1);
    const refused = await sys.purchase(someone!, 'sal_000000000000', { quantity: sys.cfg.STAMPEDE_MAX_QUANTITY + 1 });
    t.equal(refused.status, 400, 'and the route refuses past it');
  });

  t.test('the contract check refuses what the document does not allow', async (t) => {
    const contract = new Contract(doc);
    const sale = {
      id: 'sal_000000000000', sellerId: null, name: 'n', sku: 's', unitPrice: 1, currency: 'EUR', stock: 1, perBuyerLimit: 1,
      startsAt: '2026-01-01T00:00:00.000Z', endsAt: '2026-01-02T00:00:00.000Z', status: 'open', private: false, bundle: null, shards: 1, live: null,
    };
    t.equal(contract.mismatch('GET', '/v1/sales/sal_000000000000', 200, 'application/json', sale), undefined, 'a sale as documented');
    t.match(contract.mismatch('GET', '/v1/sales/sal_000000000000', 200, 'application/json', { ...sale, secret: 1 }), /does not match/, 'an extra field');
    t.match(contract.mismatch('GET', '/v1/sales/sal_000000000000', 200, 'application/json', { ...sale, startsAt: 'soon' }), /does not match/, 'a date that is not one');
    t.match(contract.mismatch('GET', '/v1/sales/sal_000000000000', 201, 'application/json', sale), /does not document/, 'a status it does not document');
    t.match(contract.mismatch('GET', '/v1/sales/sal_000000000000', 200, 'text/plain', 'x'), /not application\/json/, 'another content type');
    const problem = (status: number, code: string) => ({ type: 'x', title: 'x', status, code });
    t.equal(contract.mismatch('POST', '/v1/sales/x/purchases', 409, 'application/problem+json', problem(409, 'SOLD_OUT')), undefined, 'a documented refusal');
    t.match(contract.mismatch('GET', '/v1/sales/x', 409, 'application/problem+json', problem(409, 'SOLD_OUT')), /does not document/, 'a refusal the route does not give');
    t.match(contract.mismatch('POST', '/v1/sales/x/stock', 409, 'application/problem+json', problem(409, 'SOLD_OUT')), /does not match/, 'a code its status does not list');
    t.equal(contract.mismatch('PATCH', '/v1/sales', 404, 'application/problem+json', problem(404, 'NOT_FOUND')), undefined, 'an unrouted request gets the fallback 404');
    t.match(contract.mismatch('GET', '/nowhere', 200, 'application/json', {}), /no operation documents it/);
    const accepted = { purchaseId: 'pur_000000000000_0000000000000000', status: 'pending', statusUrl: '/v1/purchases/pur_000000000000_0000000000000000' };
    t.match(contract.mismatch('POST', '/v1/sales/x/purchases', 202, 'application/json', accepted), /without the header\(s\) it always carries: Location/, 'a 202 purchase without its Location');
    t.equal(contract.mismatch('POST', '/v1/sales/x/purchases', 202, 'application/json', accepted, false, (h) => (h === 'Location' ? accepted.statusUrl : null)), undefined, 'and with it');
    t.match(contract.mismatch('POST', '/v1/sales/x/purchases', 429, 'application/problem+json', problem(429, 'RATE_LIMITED')), /Retry-After/, 'a 429 without Retry-After');
  });
});

t.test('/docs works offline', async (t) => {
  const sys = await boot(t);
  const page = await call(`${sys.url}/docs`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(page.headers.get('content-security-policy'), /default-src 'none'/, 'the browser may load nothing from elsewhere');
  const html = page.body as string;
  const refs = [...html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']*)["']/g)].map((m) => m[1]!);
  t.ok(refs.length >= 3, `references ${refs.join(', ')}`);
  const external = refs.filter((r) => !(r.startsWith('/') && !r.startsWith('//')) && r !== 'data:,');
  t.same(external, [], 'the page references only this api\'s own paths');
  t.notMatch(html, /https?:\/\//, 'and names no other site');
  for (const ref of refs.filter((r) => r.startsWith('/'))) {
    const asset = await call(`${sys.url}${ref}`);
    t.equal(asset.status, 200, `${ref} answers`);
    t.ok(String(asset.body).length > 100, `${ref} has content`);
  }
  const init = await call(`${sys.url}/docs/init.js`);
  t.match(init.body, /url: '\/openapi\.json'/, 'Swagger UI reads this api\'s document');
  t.match(init.body, /validatorUrl: null/, 'and sends it to no online validator');
  t.notMatch(init.body, /https?:\/\//);

  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
  t.test('a headless Chromium renders the operations', { skip: chromium ? false : 'no chromium on this machine' }, async (t) => {
    // Asynchronously: the api answering Chromium runs in this process.
    const out = await promisify(execFile)(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=10000', '--dump-dom', `${sys.url}/docs`], {
      encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024,
    });
    t.match(out.stdout, /Create a sale/, 'an operation\'s summary is on the page');
    t.match(out.stdout, /\/v1\/sales\/\{id\}\/purchases/, 'and its path');
  });
});
