import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** Helpers of the deploy tests: read the manifests under deploy/ and render the kustomizations. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const K8S = join(ROOT, 'deploy', 'k8s');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

/** Every YAML document of a file; a syntax error (or a duplicate key) throws, naming the file. */
export function readYamlDocs<T = any>(file: string): T[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: T[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as T | null;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export function readYaml<T = any>(file: string): T {
  const docs = readYamlDocs<T>(file);
  if (docs.length !== 1) throw new Error(`${file}: expected one YAML document, found ${docs.length}`);
  return docs[0];
}

/** Files under a folder, recursively, with one of the extensions. */
export function filesUnder(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, exts));
    else if (exts.some((e) => entry.endsWith(e))) out.push(path);
  }
  return out.sort();
}

export interface Kustomization {
  namespace?: string;
  resources?: string[];
  patches?: { path?: string; patch?: string; target?: { kind?: string; name?: string } }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  replicas?: { name: string; count: number }[];
  [key: string]: unknown;
}

export function readKustomization(dir: string): Kustomization {
  return readYaml<Kustomization>(join(dir, 'kustomization.yaml'));
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'StorageClass']);

/** Strategic-merge-patch, as far as these manifests use it: maps merge, lists of named items merge by name. */
function mergePatch(base: any, patch: any): any {
  if (Array.isArray(base) && Array.isArray(patch)) {
    const named = (xs: any[]) => xs.every((x) => x && typeof x === 'object' && typeof x.name === 'string');
    if (!named(base) || !named(patch)) return structuredClone(patch);
    const out = base.map((x) => structuredClone(x));
    for (const item of patch) {
      const i = out.findIndex((x) => x.name === item.name);
      if (i >= 0) out[i] = mergePatch(out[i], item);
      else out.push(structuredClone(item));
    }
    return out;
  }
  if (base && patch && typeof base === 'object' && typeof patch === 'object' && !Array.isArray(base) && !Array.isArray(patch)) {
    const out = structuredClone(base);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = k in out ? mergePatch(out[k], v) : structuredClone(v);
    }
    return out;
  }
  return structuredClone(patch);
}

/**
 * What `kustomize build <dir>` makes of these kustomizations, for the features they use (resources,
 * strategic-merge patches including `$patch: delete`, images, replicas, namespace). A test compares it
 * with the real `kubectl kustomize` wherever kubectl is installed.
 */
export function renderKustomization(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  const objects: K8sObject[] = [];
  for (const resource of k.resources ?? []) {
    const path = join(dir, resource);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path));
    else objects.push(...readYamlDocs<K8sObject>(path));
  }
  for (const p of k.patches ?? []) {
    if (!p.path) throw new Error(`${dir}: only file patches are supported here`);
    const patch = readYaml<K8sObject>(join(dir, p.path));
    const kind = p.target?.kind ?? patch.kind;
    const name = p.target?.name ?? patch.metadata.name;
    const i = objects.findIndex((o) => o.kind === kind && o.metadata.name === name);
    if (i < 0) throw new Error(`${dir}: patch ${p.path} matches no ${kind} ${name}`);
    if (patch.$patch === 'delete') {
      objects.splice(i, 1);
    } else {
      objects[i] = mergePatch(objects[i], patch) as K8sObject;
    }
  }
  for (const image of k.images ?? []) {
    for (const o of objects) {
      for (const c of [...(o.spec?.template?.spec?.containers ?? []), ...(o.spec?.template?.spec?.initContainers ?? [])]) {
        const [name, tag] = splitImage(c.image);
        if (name !== image.name) continue;
        c.image = `${image.newName ?? name}${image.newTag ? `:${image.newTag}` : tag ? `:${tag}` : ''}`;
      }
    }
  }
  for (const r of k.replicas ?? []) {
    const target = objects.find((o) => ['Deployment', 'StatefulSet'].includes(o.kind) && o.metadata.name === r.name);
    if (!target) throw new Error(`${dir}: replicas for unknown ${r.name}`);
    target.spec.replicas = r.count;
  }
  if (k.namespace) {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  return objects;
}

function splitImage(image: string): [string, string | undefined] {
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? [image.slice(0, at), image.slice(at + 1)] : [image, undefined];
}

/** `kubectl kustomize <dir>` when kubectl is installed, else undefined. */
export function kubectlKustomize(dir: string): K8sObject[] | undefined {
  const kubectl = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
  if (!kubectl) return undefined;
  const out = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out).flatMap((d) => (Array.isArray(d) ? d : [d])).map((d) => d.toJS() as K8sObject);
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0];
}
