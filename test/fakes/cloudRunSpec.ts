/**
 * The Cloud Run Admin API v2's published schema, compiled for the fake and the tests.
 *
 * - test/fixtures/cloudrun/run-v2-discovery-excerpt.json: a verbatim excerpt of the run:v2
 *   discovery document (revision 20240315) — the methods used and every schema they reach — from
 *   ger1964jou/google-api-nodejs-client (a fork of googleapis/google-api-nodejs-client)
 *   @ c8b253c097c98781b0d7ff7575b6714da86b8bcc, discovery/run-v2.json;
 * - test/fixtures/cloudrun/gpu-additions.json: the GPU fields that revision predates
 *   (TaskTemplate.nodeSelector, gpuZonalRedundancyDisabled, NodeSelector), written in the
 *   discovery form from the protos quoted in run-v2-gpu-protos.txt (npm @google-cloud/run@4.2.0).
 *
 * Discovery schemas become JSON Schema the way Google's front end reads a JSON body: an unknown
 * field is refused ("Invalid JSON payload received. Unknown name …"), int64 travels as a decimal
 * string, int32 as a number, a duration as "<seconds>s", a map as an object of its value type. In
 * requests, a field whose description starts with "Required." must be present; output-only
 * fields sent in a request are ignored (AIP-203), so they are allowed and never stored.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import DISCOVERY from '../fixtures/cloudrun/run-v2-discovery-excerpt.json';
import GPU from '../fixtures/cloudrun/gpu-additions.json';

type Disc = Record<string, unknown> & {
  $ref?: string;
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, Disc>;
  additionalProperties?: Disc;
  items?: Disc;
  enum?: string[];
  readOnly?: boolean;
};

/** The discovery schemas with the GPU additions merged in. */
export const SCHEMAS: Record<string, Disc> = (() => {
  const out = JSON.parse(JSON.stringify(DISCOVERY.schemas)) as Record<string, Disc>;
  for (const [name, s] of Object.entries(GPU.schemas)) out[name] = s as Disc;
  for (const [name, props] of Object.entries(GPU.properties)) Object.assign(out[name]!.properties!, props);
  return out;
})();

export const METHODS = DISCOVERY.methods as Record<string, { httpMethod: string; path: string; parameters: Record<string, { location: string; type: string; pattern?: string; required?: boolean; format?: string }>; request?: { $ref: string }; response?: { $ref: string } }>;

function convert(s: Disc, mode: 'request' | 'response'): Record<string, unknown> {
  if (s.$ref) return { $ref: `#/definitions/${s.$ref}` };
  if (s.type === 'any') return {};
  const out: Record<string, unknown> = {};
  if (s.enum) out.enum = s.enum;
  switch (s.type) {
    case 'string':
      out.type = 'string';
      if (s.format === 'int64' || s.format === 'uint64') out.pattern = '^-?[0-9]+$';
      if (s.format === 'google-duration') out.pattern = '^-?[0-9]+(\\.[0-9]{1,9})?s$';
      if (s.format === 'google-datetime') out.pattern = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$';
      break;
    case 'integer':
      out.type = 'integer';
      if (s.format === 'int32') Object.assign(out, { minimum: -2147483648, maximum: 2147483647 });
      break;
    case 'number':
    case 'boolean':
      out.type = s.type;
      break;
    case 'array':
      out.type = 'array';
      out.items = convert(s.items ?? {}, mode);
      break;
    case 'object':
    default:
      if (s.type === 'object' || s.properties || s.additionalProperties) {
        out.type = 'object';
        if (s.properties) {
          out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, convert(v, mode)]));
          out.additionalProperties = false;
          if (mode === 'request') {
            const required = Object.entries(s.properties)
              .filter(([, v]) => typeof v.description === 'string' && v.description.startsWith('Required.'))
              .map(([k]) => k);
            if (required.length) out.required = required;
          }
        } else if (s.additionalProperties) {
          out.additionalProperties = convert(s.additionalProperties, mode);
        }
      }
  }
  return out;
}

function compileAll(mode: 'request' | 'response'): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const definitions = Object.fromEntries(Object.entries(SCHEMAS).map(([k, v]) => [k, convert(v, mode)]));
  ajv.addSchema({ $id: `run-v2-${mode}`, definitions });
  return ajv;
}

const ajvs = { request: compileAll('request'), response: compileAll('response') };
const cache = new Map<string, ValidateFunction>();

/** The validator of a schema (`GoogleCloudRunV2Job`) as a request body or as an answer. */
export function schema(name: string, mode: 'request' | 'response'): ValidateFunction {
  const key = `${mode}:${name}`;
  let v = cache.get(key);
  if (!v) {
    if (!SCHEMAS[name]) throw new Error(`no schema ${name} in the run/v2 excerpt`);
    v = ajvs[mode].getSchema(`run-v2-${mode}#/definitions/${name}`)!;
    cache.set(key, v);
  }
  return v;
}

/** Readable problems, in Google's words where it has them ("Unknown name \"x\" at 'job.template'"). */
export function describeErrors(errors: ErrorObject[] | null | undefined, root: string): string[] {
  return (errors ?? []).map((e) => {
    const at = `${root}${e.instancePath.replace(/\//g, '.').replace(/\.(\d+)/g, '[$1]')}`;
    if (e.keyword === 'additionalProperties') return `Unknown name "${(e.params as { additionalProperty: string }).additionalProperty}" at '${at}': Cannot find field.`;
    if (e.keyword === 'required') return `${at}.${(e.params as { missingProperty: string }).missingProperty}: field is required`;
    if (e.keyword === 'enum') return `Invalid value at '${at}': ${e.message}`;
    return `Invalid value at '${at}' (${e.message ?? e.keyword})`;
  });
}

/** Validates `value` against a schema; the problems (empty when valid). */
export function check(name: string, mode: 'request' | 'response', value: unknown, root = 'body'): string[] {
  const v = schema(name, mode);
  return v(value) ? [] : describeErrors(v.errors, root);
}

/** Whether the discovery document marks a schema's field output-only. */
export function isOutputOnly(schemaName: string, field: string): boolean {
  return SCHEMAS[schemaName]?.properties?.[field]?.readOnly === true;
}
