import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { isTimestamp } from '../../src/workflow/dto/is-timestamp.js';

// ajv-formats is CommonJS: its function is the default export, or that export's own `default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

export const ASYNCAPI_PATH = join(dirname(fileURLToPath(import.meta.url)), '../../docs/asyncapi.yaml');

export interface AsyncApiDocument {
  info: { title: string; version: string };
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  components: {
    schemas: Record<string, Record<string, unknown>>;
    messages: Record<
      string,
      { headers?: { $ref: string }; payload: { $ref?: string }; examples?: { name: string; headers?: Record<string, unknown>; payload: unknown }[] }
    >;
  };
}

export function readAsyncApi(): { text: string; document: AsyncApiDocument } {
  const text = readFileSync(ASYNCAPI_PATH, 'utf8');
  return { text, document: parse(text) as AsyncApiDocument };
}

const BASE = 'https://meta-agent.invalid/asyncapi/schemas/';
const LOCAL_REF = '#/components/schemas/';

/** `#/components/schemas/X` (relative to the document) → the id under which ajv knows schema X. */
function rebase(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebase);
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(
    Object.entries(node).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith(LOCAL_REF) ? BASE + v.slice(LOCAL_REF.length) : rebase(v)]),
  );
}

/**
 * The document's component schemas, compiled by ajv in strict mode (a misspelt keyword fails). The format
 * `iso-8601` is the service's own timestamp check (the DTOs' `@IsTimestamp()`), as the document describes it.
 */
export function asyncApiSchemas(document: AsyncApiDocument): (name: string) => ValidateFunction {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  ajv.addFormat('iso-8601', { type: 'string', validate: isTimestamp });
  for (const [name, schema] of Object.entries(document.components.schemas)) {
    ajv.addSchema({ ...(rebase(schema) as object), $id: BASE + name });
  }
  return (name) => {
    const validate = ajv.getSchema(BASE + name);
    if (!validate) throw new Error(`docs/asyncapi.yaml has no schema ${name}`);
    return validate as ValidateFunction;
  };
}

/** The name of the component schema behind a `$ref`. */
export function schemaName(ref: string): string {
  if (!ref.startsWith(LOCAL_REF)) throw new Error(`not a component schema: ${ref}`);
  return ref.slice(LOCAL_REF.length);
}
