/**
 * The Lambda Cloud API's published schema (1.8.3), compiled for the fake and the tests:
 * test/fixtures/lambda/openapi-1.8.3-excerpt.json is a verbatim excerpt of
 * alexandervaneck/lambda-ai-cloud-api-client @ b6023bc07c0933df459426b281c113844f2571f5,
 * openapi-1.8.3.json.
 */
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import SPEC from '../fixtures/lambda/openapi-1.8.3-excerpt.json';

export { SPEC as LAMBDA_SPEC };

const ID = 'lambda-1.8.3';
const ajv = new Ajv2020({ strict: false, allErrors: true, formats: { password: true } });
ajv.addSchema(SPEC as object, ID);

const cache = new Map<string, ValidateFunction>();
function at(pointer: string): ValidateFunction {
  let v = cache.get(pointer);
  if (!v) {
    v = ajv.getSchema(`${ID}#${pointer}`);
    if (!v) throw new Error(`no schema at ${pointer} in the Lambda spec excerpt`);
    cache.set(pointer, v);
  }
  return v;
}

const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** A component schema (`#/components/schemas/NAME`). */
export function component(name: string): ValidateFunction {
  return at(`/components/schemas/${esc(name)}`);
}

/** Spec path of an operation, e.g. `/api/v1/instances/{id}`. */
export type SpecPath = keyof typeof SPEC.paths;

/** The schema of an operation's JSON answer with this status, or undefined when the spec documents none. */
export function responseSchema(method: string, specPath: string, status: number): ValidateFunction | undefined {
  const op = (SPEC.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>)[specPath]?.[method.toLowerCase()];
  if (!op?.responses?.[String(status)]) return undefined;
  return at(`/paths/${esc(specPath)}/${method.toLowerCase()}/responses/${status}/content/${esc('application/json')}/schema`);
}

/** Readable validation errors ("/name must NOT have more than 64 characters"). */
export function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? e.keyword}${e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.length} allowed values)` : ''}`);
}

/** Validates `value`; returns the problems (empty when valid). */
export function check(v: ValidateFunction, value: unknown): string[] {
  return v(value) ? [] : describeErrors(v.errors);
}

/** The spec's first example of every property, recursively: an example object of a component (e.g. `Instance`). */
export function exampleOf(name: string): Record<string, unknown> {
  const schemas = SPEC.components.schemas as Record<string, Record<string, unknown>>;
  const build = (schema: Record<string, unknown>): unknown => {
    if (typeof schema.$ref === 'string') return build(schemas[schema.$ref.split('/').pop()!]!);
    if (Array.isArray(schema.examples)) return schema.examples[0];
    if (schema.example !== undefined) return schema.example;
    if (schema.const !== undefined) return schema.const;
    if (Array.isArray(schema.enum)) return schema.enum[0];
    if (Array.isArray(schema.anyOf)) return build(schema.anyOf[0] as Record<string, unknown>);
    if (schema.type === 'object' || schema.properties) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        const x = build(v);
        if (x !== undefined) out[k] = x;
      }
      return out;
    }
    if (schema.type === 'array') return [build(schema.items as Record<string, unknown>)];
    if (schema.type === 'boolean') return true;
    return undefined;
  };
  return build(schemas[name]!) as Record<string, unknown>;
}
