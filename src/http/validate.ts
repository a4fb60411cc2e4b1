/** Request validation: JSON schemas compiled once by ajv; no coercion, no extra fields. */
import { Ajv, type ErrorObject, type JSONSchemaType, type ValidateFunction } from 'ajv';
import { AppError } from '../errors.js';

const ajv = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: false, removeAdditional: false, strict: true });

export type Validator<T> = ValidateFunction<T>;

export function compile<T>(schema: JSONSchemaType<T>): Validator<T> {
  return ajv.compile(schema);
}

function describe(errors: ErrorObject[] | null | undefined) {
  return (errors ?? []).map((e) => {
    const path = e.instancePath === '' ? '/' : e.instancePath;
    if (e.keyword === 'additionalProperties') return { path: `${path === '/' ? '' : path}/${String(e.params.additionalProperty)}`, message: 'is not allowed' };
    if (e.keyword === 'required') return { path: `${path === '/' ? '' : path}/${String(e.params.missingProperty)}`, message: 'is required' };
    return { path, message: e.message ?? 'is invalid' };
  });
}

export function validate<T>(v: Validator<T>, body: unknown): T {
  if (body === undefined) throw new AppError('VALIDATION_FAILED', 'a JSON body is required', { errors: [{ path: '/', message: 'is required' }] });
  if (!v(body)) {
    const errors = describe(v.errors);
    throw new AppError('VALIDATION_FAILED', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
  }
  return body;
}

export const CURRENCY = { type: 'string', pattern: '^[A-Z]{3}$' } as const;
/** Money is an integer count of minor units, bounded so every product stays exact. */
export const MAX_AMOUNT = 1_000_000_000_000;
