// validate.mjs — offline validation of Kubernetes manifests (run by tests/test_deploy.c).
//
//   node tests/deploy/validate.mjs FILE|- ...
//
// Every YAML document in every FILE ("-" is stdin, e.g. `kubectl kustomize deploy/k8s`)
// goes through two checks and gets one line: "ok   FILE Kind/name" or
// "FAIL FILE Kind/name: reason; reason".
//   1. Schema: kubernetes-models' own validator (AJV code compiled from the Kubernetes
//      OpenAPI schema): types, enums, required fields.
//   2. Strict fields: kubernetes-models accepts unknown keys (a misspelt `replicaz: 2`
//      passes), so the same compiled validator runs once more on a recording Proxy of the
//      document. The validator reads every property its schema defines (absent ones
//      too, to test them for undefined) and every entry of a map-typed field (labels,
//      ConfigMap data, resource quantities). A key present in the document that the
//      validator never read is therefore not in the schema: an unknown field, like
//      `kubectl --validate=strict` and `kubeconform -strict` report. The keys it did
//      read at that place are the allowed ones, used for a "did you mean" hint.
// A kustomization.yaml (kustomize.config.k8s.io) is not a Kubernetes API object: it gets
// a short allowed-key list here and its resources must exist. Exit status 0 only when
// every document passed and at least one was checked; 2 on a usage or load error.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';

// apiVersion/kind -> the kubernetes-models module that holds the class.
const MODULES = {
  'v1': 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'policy/v1': 'kubernetes-models/policy/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
};

// kustomize's Kustomization fields we use or expect (a subset of the kustomize API).
const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'resources', 'components', 'images',
  'labels', 'commonLabels', 'commonAnnotations', 'namespace', 'namePrefix', 'nameSuffix', 'patches',
  'configMapGenerator', 'secretGenerator', 'generatorOptions', 'replicas']);

// ---- the strict-field check ---------------------------------------------------------

// Wraps value so every property read by the validator is recorded in reads, a Map from
// a node (the original object) to the Set of keys read on it. Proxies are cached per
// node so the validator sees one identity per object.
function recorder(value, reads, cache) {
  if (value === null || typeof value !== 'object') return value;
  if (cache.has(value)) return cache.get(value);
  if (!reads.has(value)) reads.set(value, new Set());
  const seen = reads.get(value);
  const proxy = new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === 'string') seen.add(key);
      const v = Reflect.get(target, key, receiver);
      return typeof key === 'string' && Object.hasOwn(target, key) ? recorder(v, reads, cache) : v;
    },
  });
  cache.set(value, proxy);
  return proxy;
}

function distance(a, b) {
  const d = Array.from({length: a.length + 1}, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

// Walks the document; reports every own key of a plain object the validator never read.
function unknownFields(node, reads, where, out) {
  if (Array.isArray(node)) {
    node.forEach((v, i) => unknownFields(v, reads, `${where}[${i}]`, out));
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const seen = reads.get(node) || new Set();
  for (const key of Object.keys(node)) {
    const at = where ? `${where}.${key}` : key;
    if (!seen.has(key)) {
      const known = [...seen].filter((k) => !/^\d+$/.test(k) && k !== 'length' && k !== 'constructor');
      const best = known.map((k) => [distance(key, k), k]).sort((x, y) => x[0] - y[0])[0];
      const hint = best && best[0] <= 3 ? ` (did you mean "${best[1]}"?)` : '';
      out.push(`unknown field "${at}"${hint}`);
      continue;
    }
    unknownFields(node[key], reads, at, out);
  }
}

// ---- one document -------------------------------------------------------------------

async function checkKube(doc) {
  const mod = MODULES[doc.apiVersion];
  if (!mod) return [`apiVersion "${doc.apiVersion}" is not one this script knows`];
  const Kind = (await import(mod))[doc.kind];
  if (typeof Kind !== 'function') return [`kind "${doc.kind}" is not in ${doc.apiVersion}`];
  const errors = [];
  try {
    new Kind(doc).validate();
  } catch (e) {
    errors.push(`schema: ${e.message}`);
  }
  // The class's validate() runs the compiled schema on `this`: hand it the recorder.
  const reads = new Map();
  try {
    Kind.prototype.validate.call(recorder(doc, reads, new WeakMap()));
  } catch {
    /* schema errors are reported above; only the reads matter here */
  }
  unknownFields(doc, reads, '', errors);
  return errors;
}

function checkKustomization(doc, file) {
  const errors = [];
  for (const key of Object.keys(doc))
    if (!KUSTOMIZATION_KEYS.has(key)) errors.push(`unknown field "${key}" in a Kustomization`);
  if (!Array.isArray(doc.resources) || doc.resources.length === 0) errors.push('resources: must be a non-empty list');
  const dir = path.dirname(file);
  for (const r of doc.resources || [])
    if (typeof r !== 'string' || !fs.existsSync(path.join(dir, r))) errors.push(`resources: "${r}" does not exist`);
  return errors;
}

// ---- main ---------------------------------------------------------------------------

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs FILE|- ...');
  process.exit(2);
}
let checked = 0;
let failed = 0;
for (const file of files) {
  let docs;
  try {
    const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
    docs = yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
  } catch (e) {
    console.log(`FAIL ${file}: ${e.message.split('\n')[0]}`);
    failed++;
    continue;
  }
  for (const doc of docs) {
    checked++;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      console.log(`FAIL ${file}: a document is not a mapping`);
      failed++;
      continue;
    }
    const id = `${doc.kind}/${doc.metadata?.name ?? '-'}`;
    const errors = String(doc.apiVersion).startsWith('kustomize.config.k8s.io/')
      ? checkKustomization(doc, file)
      : await checkKube(doc);
    if (errors.length) {
      failed++;
      console.log(`FAIL ${file} ${id}: ${errors.join('; ')}`);
    } else {
      console.log(`ok   ${file} ${id}`);
    }
  }
}
console.log(`${checked} document(s), ${failed} failed`);
process.exit(failed || checked === 0 ? 1 : 0);
