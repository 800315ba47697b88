// Run one ONNX graph with ONNX Runtime (CPU, one thread) on given inputs and print every
// graph output as JSON: the second opinion the graph engine's tests compare against.
//
//   node tests/onnxrt/run.mjs MODEL.onnx INPUTS.json [--opt=disabled|basic|extended|all]
//
// INPUTS.json: {"<input name>": {"dtype": "float32|float64|int64|int32|bool",
//                                "shape": [...], "data": [... row-major ...]}, ...}
// stdout:      {"<output name>": {"dtype": ..., "shape": [...], "data": [...]}, ...}
// Non-finite values are written as the strings "NaN", "Infinity" and "-Infinity" (JSON has
// no literal for them). Graph optimizations are off by default, so every node runs as
// written (fusions such as LayerNorm or GELU may round differently from the plain ops);
// --opt picks another level. Exit status 2 on a usage or input error, 1 when the runtime
// refuses the graph or the inputs (its message on stderr).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

const ARRAY = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array,
  bool: Uint8Array, uint8: Uint8Array, int8: Int8Array,
};

function fail(code, msg) {
  process.stderr.write(`run.mjs: ${msg}\n`);
  process.exit(code);
}

function toTensor(name, spec) {
  const Arr = ARRAY[spec.dtype];
  if (!Arr) fail(2, `${name}.dtype: expected one of ${Object.keys(ARRAY).join(', ')}, got ${spec.dtype}`);
  if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    fail(2, `${name}.shape: expected a list of non-negative integers`);
  }
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (!Array.isArray(spec.data) || spec.data.length !== n) {
    fail(2, `${name}.data: expected ${n} values for shape [${spec.shape}], got ${spec.data?.length}`);
  }
  let data;
  if (spec.dtype === 'int64') data = BigInt64Array.from(spec.data, (v) => BigInt(v));
  else if (spec.dtype === 'bool') data = Uint8Array.from(spec.data, (v) => (v ? 1 : 0));
  else data = Arr.from(spec.data, (v) => (typeof v === 'string' ? Number(v) : v));
  return new ort.Tensor(spec.dtype, data, spec.shape);
}

function fromTensor(t) {
  const data = Array.from(t.data, (v) => {
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'boolean') return v;
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '-Infinity';
    return t.type === 'bool' ? v !== 0 : v;
  });
  return { dtype: t.type, shape: Array.from(t.dims), data };
}

const args = process.argv.slice(2);
const opt = (args.find((a) => a.startsWith('--opt=')) ?? '--opt=disabled').slice(6);
const files = args.filter((a) => !a.startsWith('--'));
if (files.length !== 2) fail(2, 'usage: node run.mjs MODEL.onnx INPUTS.json [--opt=disabled|basic|extended|all]');
if (!['disabled', 'basic', 'extended', 'all'].includes(opt)) fail(2, `--opt: unknown level ${opt}`);

let spec;
try {
  spec = JSON.parse(readFileSync(files[1], 'utf8'));
} catch (e) {
  fail(2, `${files[1]}: ${e.message}`);
}
const feeds = {};
for (const [name, s] of Object.entries(spec)) feeds[name] = toTensor(name, s);

try {
  const session = await ort.InferenceSession.create(files[0], {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: opt, executionProviders: ['cpu'],
  });
  const results = await session.run(feeds);
  const out = {};
  for (const name of session.outputNames) out[name] = fromTensor(results[name]);
  process.stdout.write(JSON.stringify(out) + '\n');
} catch (e) {
  fail(1, e.message);
}
