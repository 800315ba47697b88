// conform.mjs SPEC PORT — checks that real answers of the explaind server on 127.0.0.1:PORT
// conform to the OpenAPI document SPEC (web/openapi.json).
//
// For each request below: the status must be one the document lists for that operation,
// the Content-Type the one it documents, and the JSON body must validate (ajv, JSON Schema
// 2020-12, as OpenAPI 3.1 uses) against the documented schema. An endpoint that answers
// 404 "no such path" is reported as not implemented yet (skip), not as a pass.
// Prints one line per check and a closing "N passed, N failed, N skipped"; exit 1 on any
// failure. Run by tests/test_web.c.
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [specPath, port] = process.argv.slice(2);
if (!specPath || !port) {
  console.error('usage: node conform.mjs SPEC PORT');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const base = `http://127.0.0.1:${port}`;

// The document's schemas as one JSON Schema: #/components/schemas/X becomes #/$defs/X.
const defs = JSON.parse(JSON.stringify(spec.components.schemas).replaceAll('#/components/schemas/', 'https://explaind.invalid/schemas.json#/$defs/'));
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
ajv.addSchema({ $id: 'https://explaind.invalid/schemas.json', $defs: defs });

function resolve(obj) {
  while (obj && obj.$ref) {
    const parts = obj.$ref.replace(/^#\//, '').split('/');
    obj = parts.reduce((o, k) => o[k], spec);
  }
  return obj;
}

// The operation of the document that serves (method, path). A documented path asked
// with an undocumented method must answer 405: then op is a synthetic operation whose
// only answer is the error shape of that path's family (native or V2).
function findOperation(method, path) {
  let known = null;
  for (const [tmpl, item] of Object.entries(spec.paths)) {
    const re = new RegExp('^' + tmpl.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+') + '$');
    if (!re.test(path)) continue;
    if (item[method]) return { tmpl, op: item[method] };
    known = known || tmpl;
  }
  if (!known) return null;
  const ref = known.startsWith('/v2') ? 'V2MethodNotAllowed' : 'MethodNotAllowed';
  return { tmpl: known, op: { responses: { 405: { $ref: `#/components/responses/${ref}` } } } };
}

let passed = 0, failed = 0, skipped = 0;
const pass = (name) => { passed++; console.log(`ok   ${name}`); };
const fail = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };
const skip = (name, why) => { skipped++; console.log(`skip ${name}: ${why}`); };

async function check(name, method, path, body, opts = {}) {
  const init = { method: method.toUpperCase(), headers: { ...(opts.headers || {}) } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
  }
  let resp, text;
  try {
    resp = await fetch(base + path, init);
    text = await resp.text();
  } catch (e) {
    return fail(name, `request failed: ${e.message}`);
  }
  const ctype = (resp.headers.get('content-type') || '').split(';')[0].trim();
  let json;
  if (ctype === 'application/json' && text.length) {
    try { json = JSON.parse(text); } catch (e) { return fail(name, `body is not JSON: ${e.message}`); }
  }
  if (resp.status === 404 && json && json.error && /no such path/.test(json.error.message || json.error)) {
    return skip(name, `${method.toUpperCase()} ${path} is not implemented yet (404 no such path)`);
  }
  if (opts.status !== undefined && resp.status !== opts.status) {
    return fail(name, `expected status ${opts.status}, got ${resp.status}: ${text.slice(0, 300)}`);
  }
  const found = findOperation(method, path);
  if (!found) return fail(name, `the document has no operation for ${method.toUpperCase()} ${path}`);
  const responses = found.op.responses;
  const r = resolve(responses[String(resp.status)] || responses.default);
  if (!r) return fail(name, `status ${resp.status} is not documented for ${method.toUpperCase()} ${found.tmpl}`);
  if (!resp.headers.get('x-request-id')) return fail(name, 'no X-Request-Id header');
  if (resp.status === 405 && !resp.headers.get('allow')) return fail(name, '405 without an Allow header');
  if (!r.content) {
    if (text.length) return fail(name, `status ${resp.status} is documented without a body, got ${text.length} bytes`);
    return pass(name);
  }
  const media = r.content[ctype];
  if (!media) return fail(name, `Content-Type ${ctype} is not documented (${Object.keys(r.content).join(', ')})`);
  if (ctype !== 'application/json') return pass(name);
  const schema = JSON.parse(JSON.stringify(media.schema).replaceAll('#/components/schemas/', 'https://explaind.invalid/schemas.json#/$defs/'));
  const validate = ajv.compile(schema);
  if (!validate(json)) return fail(name, `${ajv.errorsText(validate.errors)}; body: ${text.slice(0, 300)}`);
  if (opts.expect) {
    const why = opts.expect(json, resp);
    if (why) return fail(name, why);
  }
  pass(name);
}

const iris = [5.1, 3.5, 1.4, 0.2];
const errCode = (code, field) => (j) =>
  j.error.code !== code ? `error code ${j.error.code}, expected ${code}` :
  field !== undefined && j.error.field !== field ? `error field ${j.error.field}, expected ${field}` : '';

// Service endpoints.
await check('healthz', 'get', '/healthz', undefined, { status: 200 });
await check('readyz', 'get', '/readyz', undefined, { status: 200 });
await check('models', 'get', '/models', undefined, {
  status: 200, expect: (j) => (j.models.some((m) => m.name === 'iris') ? '' : 'iris is not listed'),
});
await check('models/iris', 'get', '/models/iris', undefined, {
  status: 200, expect: (j) => (j.features.length === 4 && Array.isArray(j.example) ? '' : 'features or example missing'),
});
await check('models/credit (categorical)', 'get', '/models/credit', undefined, {
  status: 200, expect: (j) => (j.features.some((f) => f.type === 'categorical' && f.categories.length) ? '' : 'no categorical feature'),
});
await check('models/unknown -> 404', 'get', '/models/no_such_model', undefined, { status: 404, expect: errCode('not_found') });
await check('POST /healthz -> 405', 'post', '/healthz', '{}', { status: 405, expect: (j, r) => (r.headers.get('allow') ? '' : 'no Allow header') });

// /predict, answers and errors.
await check('predict iris', 'post', '/predict', { model: 'iris', instances: [iris] }, {
  status: 200, expect: (j) => (j.predictions[0] === 'setosa' && j.probabilities[0].length === 3 ? '' : 'wrong prediction'),
});
await check('predict diabetes (regression)', 'post', '/predict', { model: 'diabetes', instances: [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]] }, {
  status: 200, expect: (j) => (typeof j.predictions[0] === 'number' && !j.probabilities ? '' : 'not a regression answer'),
});
await check('predict credit (category names, object row)', 'post', '/predict', {
  model: 'credit', instances: [{ age: 33, income: 41816, debt_ratio: 0.2156, employment: 'employed', region: 'east', late_payments: 1 }],
}, { status: 200 });
await check('predict invalid JSON -> 400', 'post', '/predict', '{"model": ', { status: 400, expect: errCode('invalid_json') });
await check('predict wrong length -> 400', 'post', '/predict', { model: 'iris', instances: [[1, 2, 3]] }, {
  status: 400, expect: errCode('invalid_argument', 'instances[0]'),
});
await check('predict unknown key -> 400', 'post', '/predict', { model: 'iris', instances: [iris], bogus: 1 }, {
  status: 400, expect: errCode('invalid_argument'),
});
await check('predict unknown model -> 404', 'post', '/predict', { model: 'nope', instances: [iris] }, {
  status: 404, expect: errCode('not_found', 'model'),
});
await check('predict text/csv -> 415', 'post', '/predict', 'a,b\n1,2\n', {
  status: 415, headers: { 'Content-Type': 'text/csv' }, expect: errCode('unsupported_media_type'),
});
await check('GET /predict -> 405', 'get', '/predict', undefined, { status: 405, expect: errCode('method_not_allowed') });

// Explanations: checked against the document when the endpoint answers.
await check('explain/lime', 'post', '/explain/lime', { model: 'iris', instance: iris, num_samples: 500, seed: 1 }, { status: 200 });
await check('explain/lime bad discretizer -> 400', 'post', '/explain/lime', { model: 'iris', instance: iris, discretize: 'thirds' }, {
  status: 400, expect: errCode('invalid_argument', 'discretize'),
});
await check('explain/lime repeats (std)', 'post', '/explain/lime', { model: 'iris', instances: [iris, iris], num_samples: 300, repeats: 3, seed: 2 }, {
  status: 200, expect: (j) => (j.explanations.length === 2 && j.explanations[0].labels[0].weights.every((w) => w.std >= 0) ? '' : 'no std'),
});
await check('explain/lime credit (categorical)', 'post', '/explain/lime', {
  model: 'credit', instance: { age: 33, income: 41816, debt_ratio: 0.2156, employment: 'employed', region: 'east', late_payments: 1 }, num_samples: 500, seed: 1,
}, { status: 200 });
await check('explain/lime diabetes (regression)', 'post', '/explain/lime', { model: 'diabetes', instance: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], num_samples: 500, seed: 1 }, { status: 200 });
await check('explain/lime too many samples -> 4xx', 'post', '/explain/lime', { model: 'iris', instance: iris, num_samples: 100000000 }, {
  expect: (j, r) => (r.status === 400 || r.status === 413 ? '' : `status ${r.status}`),
});
await check('explain/gradient integrated gradients on credit', 'post', '/explain/gradient', {
  model: 'credit', instance: [33, 41816, 0.2156, 'employed', 'east', 1], method: 'integrated_gradients',
}, { status: 200 });
await check('explain/shap regression', 'post', '/explain/shap', { model: 'diabetes', instance: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], seed: 1 }, { status: 200 });
await check('importance olden (signed)', 'post', '/importance', { model: 'wine', method: 'olden' }, { status: 200 });
await check('explain/pdp pair, both', 'post', '/explain/pdp', { model: 'iris', features: [2, 3], grid_resolution: 4, kind: 'both' }, { status: 200 });
await check('explain/gradient', 'post', '/explain/gradient', { model: 'iris', instance: iris }, { status: 200 });
await check('explain/gradient smoothgrad', 'post', '/explain/gradient', { model: 'iris', instances: [iris], method: 'smoothgrad', seed: 3 }, { status: 200 });
await check('explain/shap', 'post', '/explain/shap', { model: 'iris', instance: iris, seed: 1 }, { status: 200 });
await check('importance', 'post', '/importance', { model: 'iris', seed: 0 }, { status: 200 });
await check('importance garson', 'post', '/importance', { model: 'iris', method: 'garson' }, { status: 200 });
await check('explain/pdp', 'post', '/explain/pdp', { model: 'iris', features: [0], grid_resolution: 5 }, { status: 200 });
// Text models (a string instance) and tree SHAP: their answers conform to the same schemas.
const review = 'the acting was superb but the ending was dull';
const names = (j) => (Array.isArray(j.target_names) && j.target_names.length === 1 ? '' : 'no target_names');
await check('explain/gradient text', 'post', '/explain/gradient', { model: 'reviews_gru', instance: review, steps: 8, baseline: 'unk' }, { status: 200, expect: names });
await check('explain/occlusion text', 'post', '/explain/occlusion', { model: 'reviews_gru', instance: review, baseline: 'delete' }, { status: 200 });
await check('explain/lime text', 'post', '/explain/lime', { model: 'reviews_gru', instance: review, num_samples: 64, bow: false, mask_string: 'UNK', seed: 1 }, { status: 200 });
await check('explain/shap text', 'post', '/explain/shap', { model: 'reviews_gru', instance: review, nsamples: 32, bow: true, mask_string: null, seed: 1 }, { status: 200, expect: names });
await check('explain/shap tree', 'post', '/explain/shap', { model: 'credit_xgb', instance: [35, 52000, 0.3, 'employed', 'north', 0] }, { status: 200, expect: names });

// Documents, metrics and the V2 routes.
await check('openapi.json', 'get', '/openapi.json', undefined, { status: 200, expect: (j) => (j.openapi ? '' : 'not an OpenAPI document') });
await check('dashboard', 'get', '/', undefined, { status: 200 });
await check('metrics', 'get', '/metrics', undefined, { status: 200 });
await check('v2 server metadata', 'get', '/v2', undefined, { status: 200 });
await check('v2 live', 'get', '/v2/health/live', undefined, { status: 200 });
await check('v2 ready', 'get', '/v2/health/ready', undefined, { status: 200 });
await check('v2 model metadata', 'get', '/v2/models/iris', undefined, { status: 200 });
await check('v2 model ready', 'get', '/v2/models/iris/ready', undefined, { status: 200 });
await check('v2 infer', 'post', '/v2/models/iris/infer', {
  id: '7', inputs: [{ name: 'input-0', shape: [1, 4], datatype: 'FP64', data: iris }],
}, { status: 200 });
await check('POST /v2/health/live -> 405', 'post', '/v2/health/live', '{}', { status: 405 });
await check('v2 infer bad shape -> 400', 'post', '/v2/models/iris/infer', {
  inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP64', data: iris }],
}, { status: 400 });
await check('v2 infer unknown model -> 404', 'post', '/v2/models/nope/infer', {
  inputs: [{ name: 'input-0', shape: [1, 4], datatype: 'FP64', data: iris }],
}, { status: 404 });

// Model management (admin): only against a server started with EXPLAIND_ADMIN_KEY and a
// model folder of its own (tests/test_web.c passes ADMIN_KEY).
const adminKey = process.env.ADMIN_KEY;
if (adminKey) {
  const admin = { Authorization: `Bearer ${adminKey}` };
  const tiny = {
    format: 'explaind.model/v1', task: 'classification',
    features: [{ name: 'x' }, { name: 'colour', type: 'categorical', categories: ['red', 'blue'] }],
    classes: ['no', 'yes'],
    layers: [{ weights: [[1, 0.5, -0.5], [-1, -0.5, 0.5]], bias: [0, 0], activation: 'softmax' }],
    background: { rows: [[0, 'red'], [1, 'blue'], [0.5, 'red'], [2, 'blue']], targets: ['no', 'yes', 'no', 'yes'] },
  };
  await check('PUT model without the key -> 401/403', 'put', '/models/web_tiny', tiny, {
    expect: (j, r) => (r.status === 401 || r.status === 403 ? '' : `status ${r.status}`),
  });
  await check('PUT model (new) -> 201', 'put', '/models/web_tiny', tiny, { status: 201, headers: admin });
  await check('PUT model (replace) -> 200', 'put', '/models/web_tiny', tiny, {
    status: 200, headers: admin, expect: (j) => (j.version === 2 ? '' : `version ${j.version}`),
  });
  await check('PUT If-None-Match: * on an existing model -> 409', 'put', '/models/web_tiny', tiny, {
    status: 409, headers: { ...admin, 'If-None-Match': '*' }, expect: errCode('conflict'),
  });
  await check('PUT a bad bundle -> 400', 'put', '/models/web_tiny', { ...tiny, layers: [] }, { status: 400, headers: admin });
  await check('GET the uploaded model', 'get', '/models/web_tiny', undefined, {
    status: 200, expect: (j) => (j.features[1].type === 'categorical' && j.example ? '' : 'metadata'),
  });
  await check('train from a CSV', 'post', '/models/web_trained/train', {
    csv: 'a,b,label\n0,1,no\n1,0,yes\n0.2,0.9,no\n0.9,0.1,yes\n0.1,0.8,no\n0.8,0.3,yes\n', target: 'label', epochs: 5, seed: 1,
  }, { status: 200, headers: admin });
  await check('train without a target -> 400', 'post', '/models/web_trained/train', { csv: 'a,b\n1,2\n' }, { status: 400, headers: admin });
  await check('DELETE model -> 204', 'delete', '/models/web_tiny', undefined, { status: 204, headers: admin });
  await check('DELETE it again -> 404', 'delete', '/models/web_tiny', undefined, { status: 404, headers: admin });
  await check('DELETE the trained model -> 204', 'delete', '/models/web_trained', undefined, { status: 204, headers: admin });
} else {
  skip('model management', 'no ADMIN_KEY given');
}

console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
