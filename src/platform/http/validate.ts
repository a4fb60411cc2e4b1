/** Request validation: JSON schemas compiled once by ajv; no coercion, no extra fields. */
import { Ajv, type ErrorObject, type JSONSchemaType, type ValidateFunction } from 'ajv';
import { AppError } from '../errors.js';

const ajv = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: false, removeAdditional: false, strict: true });

export type Validator<T> = ValidateFunction<T>;

export function compile<T>(schema: JSONSchemaType<T>): Validator<T> {
  return ajv.compile(schema);
}

/** A validator for a schema kept as plain data (the event catalogue's), whose type the caller names. */
export function compileSchema<T>(schema: Record<string, unknown>): Validator<T> {
  return ajv.compile<T>(schema);
}

/** What a failed validation found, one field each (`/price must be integer`). */
export function fieldErrors(errors: ErrorObject[] | null | undefined): { path: string; message: string }[] {
  return (errors ?? []).map((e) => {
    const path = e.instancePath === '' ? '/' : e.instancePath;
    if (e.keyword === 'additionalProperties') return { path: `${path === '/' ? '' : path}/${String(e.params.additionalProperty)}`, message: 'is not allowed' };
    if (e.keyword === 'required') return { path: `${path === '/' ? '' : path}/${String(e.params.missingProperty)}`, message: 'is required' };
    return { path, message: e.message ?? 'is invalid' };
  });
}

/** The first path holding a string with U+0000 (Postgres text cannot store it), if any. */
function nulPath(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path || '/' : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    const found = nulPath(v, `${path}/${k}`);
    if (found) return found;
  }
  return undefined;
}

export function validate<T>(v: Validator<T>, body: unknown): T {
  if (body === undefined) throw AppError.invalid('/', 'is required', 'a JSON body is required');
  if (!v(body)) {
    const errors = fieldErrors(v.errors);
    throw new AppError('VALIDATION_FAILED', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
  }
  const nul = nulPath(body, '');
  if (nul) throw AppError.invalid(nul, 'must not contain U+0000');
  return body;
}

/** An ISO 8601 date-time with a zone, as every API field that names an instant takes it. */
export const DATE_TIME = { type: 'string', maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?(Z|[+-]\\d{2}:\\d{2})$' } as const;

/** ISO 4217 codes as this Node's ICU knows them. */
export const CURRENCIES: string[] = Intl.supportedValuesOf('currency');
export const CURRENCY = { type: 'string', enum: CURRENCIES } as const;

/** Money is an integer count of minor units, bounded so every product stays exact. */
export const MAX_AMOUNT = 1_000_000_000_000;
