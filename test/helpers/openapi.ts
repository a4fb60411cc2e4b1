/**
 * The api's OpenAPI document as a contract every test's requests are held
 * to: each answer's status must be one the matched operation documents, its
 * content type one of that status's, and its body valid against that
 * schema (ajv, JSON Schema 2020-12, formats checked). A path no operation
 * matches must get the fallback's 404 problem.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';

type Json = Record<string, unknown>;

interface Operation {
  method: string;
  template: string;
  re: RegExp;
  /** Templated segments: a static path wins over a templated one, as uWS matches. */
  params: number;
  responses: Record<string, { content?: Record<string, { schema?: unknown }>; headers?: Record<string, { required?: boolean }> }>;
}

// ajv-formats' default export is typed for CommonJS interop; under NodeNext the callable sits on `.default`.
const addFormats = ((addFormatsPlugin as unknown as { default?: unknown }).default ?? addFormatsPlugin) as (ajv: Ajv2020) => Ajv2020;

/** The document's `#/components/schemas/X` references, inlined (ajv then needs nothing else of the document). */
export function inlineRefs(node: unknown, components: Json): unknown {
  if (Array.isArray(node)) return node.map((n) => inlineRefs(n, components));
  if (node === null || typeof node !== 'object') return node;
  const ref = (node as Json).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) return inlineRefs(components[ref.slice('#/components/schemas/'.length)], components);
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inlineRefs(v, components)]));
}

const essence = (contentType: string | null) => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

export class Contract {
  private readonly operations: Operation[] = [];
  private readonly ajv = addFormats(new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }));
  private readonly compiled = new Map<unknown, ValidateFunction>();
  private readonly components: Json;

  constructor(readonly document: Json) {
    this.components = ((document.components as Json | undefined)?.schemas ?? {}) as Json;
    for (const [template, item] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
      const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]*')}$`);
      for (const [method, op] of Object.entries(item)) {
        this.operations.push({ method, template, re, params: (template.match(/\{/g) ?? []).length, responses: op.responses as Operation['responses'] });
      }
    }
    this.operations.sort((a, b) => a.params - b.params);
  }

  private validator(schema: unknown): ValidateFunction {
    let v = this.compiled.get(schema);
    if (!v) {
      v = this.ajv.compile(inlineRefs(schema, this.components) as Json);
      this.compiled.set(schema, v);
    }
    return v;
  }

  /** What is wrong with this answer, or undefined when the document allows it. */
  mismatch(
    method: string, path: string, status: number, contentType: string | null, body: unknown, bodyUnread = false, header: (name: string) => string | null | undefined = () => undefined,
  ): string | undefined {
    const m = method.toLowerCase();
    const op = this.operations.find((o) => o.method === m && o.re.test(path));
    if (!op) {
      // uWS answers any other method or path with the fallback's 404.
      if (status === 404 && essence(contentType) === 'application/problem+json' && (body as Json | undefined)?.code === 'NOT_FOUND') return undefined;
      return `${method} ${path}: no operation documents it, yet it answered ${status} ${JSON.stringify(body)}`;
    }
    const what = `${method.toUpperCase()} ${op.template} answered ${status}`;
    const response = op.responses[String(status)];
    if (!response) return `${what}, a status it does not document (it documents ${Object.keys(op.responses).join(', ')}): ${JSON.stringify(body)}`;
    const absent = Object.entries(response.headers ?? {}).filter(([name, h]) => h.required && (header(name) ?? null) === null).map(([name]) => name);
    if (absent.length) return `${what} without the header(s) it always carries: ${absent.join(', ')}`;
    if (!response.content) return body === undefined || body === '' ? undefined : `${what} with a body it documents none for: ${JSON.stringify(body)}`;
    const media = response.content[essence(contentType)];
    if (!media) return `${what} as ${contentType}, not ${Object.keys(response.content).join(' or ')}`;
    if (media.schema === undefined || bodyUnread) return undefined;
    const v = this.validator(media.schema);
    if (v(body)) return undefined;
    const errors = (v.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`).join('; ');
    return `${what}: the body does not match its schema: ${errors}: ${JSON.stringify(body).slice(0, 600)}`;
  }
}

/** The contract of each api a test booted, by origin (`http://127.0.0.1:<port>`). */
const contracts = new Map<string, Contract>();

export function holdTo(origin: string, contract: Contract): void {
  contracts.set(origin, contract);
}

export function release(origin: string): void {
  contracts.delete(origin);
}

/** What is wrong with an answer `origin` gave, if a test booted that api and its document does not allow the answer. */
export function mismatchOf(origin: string, method: string, path: string, status: number, headers: Record<string, string>, body: unknown): string | undefined {
  return contracts.get(origin)?.mismatch(method, path, status, headers['content-type'] ?? null, body, false, (name) => headers[name.toLowerCase()]);
}

const parsed = (text: string): unknown => {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/**
 * Holds every fetch of this process to the contract of the api it asks (when
 * a test booted that api), whatever helper or test made it: the answer is
 * read from a clone before the caller gets it, and a mismatch rejects the
 * fetch, failing the test that made it. An event stream is checked by its
 * status and content type (its body does not end).
 */
export function checkEveryFetch(): void {
  const g = globalThis as { fetch: typeof fetch; __stampedeContractFetch?: true };
  if (g.__stampedeContractFetch) return;
  g.__stampedeContractFetch = true;
  const plain = g.fetch;
  g.fetch = async (input, init) => {
    const res = await plain(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    const contract = contracts.get(url.origin);
    if (!contract) return res;
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const contentType = res.headers.get('content-type');
    const streaming = contentType?.startsWith('text/event-stream') === true;
    const body = streaming ? undefined : parsed(await res.clone().text());
    const wrong = contract.mismatch(method, url.pathname, res.status, contentType, body, streaming, (name) => res.headers.get(name));
    if (wrong) throw new Error(`the answer breaks the OpenAPI document: ${wrong}`);
    return res;
  };
}
