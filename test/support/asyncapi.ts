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

/**
 * `#/components/schemas/X` (relative to the document) → the id under which ajv knows schema X; an AsyncAPI
 * `discriminator` (the name of the property that tells a `oneOf`'s schemas apart) → ajv's (OpenAPI's) form.
 */
function rebase(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebase);
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(
    Object.entries(node).map(([k, v]) => {
      if (k === '$ref' && typeof v === 'string' && v.startsWith(LOCAL_REF)) return [k, BASE + v.slice(LOCAL_REF.length)];
      if (k === 'discriminator' && typeof v === 'string') return [k, { propertyName: v }];
      return [k, rebase(v)];
    }),
  );
}

/**
 * The document's component schemas, compiled by ajv in strict mode (a misspelt keyword fails). The format
 * `iso-8601` is the service's own timestamp check (the DTOs' `@IsTimestamp()`), as the document describes it.
 */
export function asyncApiSchemas(document: AsyncApiDocument): (name: string) => ValidateFunction {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true, discriminator: true });
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

type SchemaNode = { $ref?: string; allOf?: SchemaNode[]; oneOf?: SchemaNode[]; properties?: Record<string, SchemaNode & { const?: unknown }> };

/**
 * The audit events the document describes: the schema of each kind (the `oneOf` of `AuditEvent`, told apart
 * by the `const` of their `event`), and the members a kind's schema names (its own, and those of the schemas
 * it combines with `allOf`: the envelope, the shared parts).
 */
export function auditEventKinds(document: AsyncApiDocument): { kinds: Map<string, string>; members: (kind: string) => Set<string> } {
  const schemas = document.components.schemas as Record<string, SchemaNode>;
  const kinds = new Map<string, string>();
  for (const branch of schemas.AuditEvent.oneOf ?? []) {
    const name = schemaName(branch.$ref!);
    kinds.set(String(schemas[name].properties?.event?.const), name);
  }
  const collect = (node: SchemaNode, into: Set<string>): Set<string> => {
    const target = node.$ref ? schemas[schemaName(node.$ref)] : node;
    for (const key of Object.keys(target.properties ?? {})) into.add(key);
    for (const part of target.allOf ?? []) collect(part, into);
    return into;
  };
  return {
    kinds,
    members: (kind) => {
      const name = kinds.get(kind);
      if (!name) throw new Error(`docs/asyncapi.yaml has no audit event ${kind}`);
      return collect(schemas[name], new Set());
    },
  };
}
