/* app.js — the explaind dashboard: pick a model, edit an instance, see its prediction,
 * a LIME explanation, gradient or SHAP attributions (a waterfall for SHAP), partial
 * dependence with ICE curves, a SHAP summary over the background and the model's global
 * importance; export any chart (PNG, CSV) and copy any request as curl or Python.
 *
 * Plain DOM and SVG, no framework and no network beyond this server's API (see
 * /openapi.json). The charts are in charts.js (loaded first); every bar is a
 * <g class="bar"> with data-feature (the feature's name) so tests and assistive tools
 * can read them.
 */
'use strict';

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  meta: null,          // GET /models/{name}
  predictTimer: 0,
  predictSeq: 0,       // answers to older /predict calls are dropped
  apiKey: '',          // for servers started with --api-keys; this tab only
  selectSeq: 0,        // a model picked later wins over one still loading
  last: {},            // per panel: the last request {path, body}, for "copy as curl / Python"
};

/* Below this surrogate R², a LIME explanation is flagged: the linear fit does not
 * describe the model around the instance well enough to read its weights. */
const LIME_LOW_SCORE = 0.5;

/* Thrown when the model changed while a request was in flight: its answer is dropped. */
const STALE = Symbol('stale');

/* ---- the API ------------------------------------------------------------------------ */

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
  toString() {
    const where = this.field ? ` (at ${this.field})` : '';
    const what = this.status ? `${this.status} ${this.code}` : this.code;
    return `${what}: ${this.message}${where}`;
  }
}

/* Calls the API; resolves to the decoded JSON, or rejects with an ApiError carrying the
 * server's error code, message and field. */
async function api(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (state.apiKey) init.headers.Authorization = `Bearer ${state.apiKey}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server (${e.message})`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!resp.ok) {
    const err = json && json.error;
    if (err && typeof err === 'object') throw new ApiError(resp.status, err.code || 'error', err.message || '', err.field);
    if (typeof err === 'string') throw new ApiError(resp.status, 'error', err);
    throw new ApiError(resp.status, 'error', resp.statusText || 'request failed');
  }
  if (json === null) throw new ApiError(resp.status, 'invalid_response', 'the server did not answer JSON');
  return json;
}

/* ---- small DOM helpers ------------------------------------------------------------ */

function showError(id, err) {
  const p = $(id);
  if (!err) {
    p.hidden = true;
    p.textContent = '';
    return;
  }
  p.textContent = err instanceof ApiError ? err.toString() : String(err);
  p.hidden = false;
}

function busy(button, on) {
  button.disabled = on;
  button.setAttribute('aria-busy', on ? 'true' : 'false');
}

/* ---- model and instance ------------------------------------------------------------- */

function isClassifier() {
  return state.meta && state.meta.task === 'classification';
}

function buildInstanceForm(meta) {
  const form = $('instance');
  form.textContent = '';
  const example = meta.example || [];
  meta.features.forEach((f, j) => {
    const id = `f-${j}`;
    const wrap = el('div', { class: 'field' });
    wrap.append(el('label', { for: id, text: f.name }));
    let input;
    if (f.type === 'categorical') {
      input = el('select', { id, name: f.name, 'data-index': j });
      for (const c of f.categories || []) input.append(el('option', { value: c, text: c }));
    } else {
      input = el('input', { id, name: f.name, type: 'number', step: 'any', inputmode: 'decimal', 'data-index': j, required: true });
    }
    wrap.append(input);
    if (f.type !== 'categorical' && Number.isFinite(f.min) && Number.isFinite(f.max)) {
      const hint = `${id}-hint`;
      input.setAttribute('aria-describedby', hint);
      wrap.append(el('span', { id: hint, class: 'hint', text: `background ${fmt(f.min)} … ${fmt(f.max)}` }));
    }
    form.append(wrap);
  });
  fillInstance(example);
}

function fillInstance(row) {
  const meta = state.meta;
  meta.features.forEach((f, j) => {
    const input = $(`f-${j}`);
    let v = row[j];
    if (v === undefined || v === null) v = f.type === 'categorical' ? (f.categories || [''])[0] : (f.mean ?? 0);
    if (f.type === 'categorical' && typeof v === 'number') v = (f.categories || [])[v] ?? v;
    input.value = String(v);
    input.removeAttribute('aria-invalid');
  });
}

/* The instance as a row in feature order (categories by name), or throws naming the
 * first field that is not a number. */
function readInstance() {
  const meta = state.meta;
  return meta.features.map((f, j) => {
    const input = $(`f-${j}`);
    if (f.type === 'categorical') return input.value;
    const v = input.value.trim() === '' ? NaN : Number(input.value);
    if (!Number.isFinite(v)) {
      input.setAttribute('aria-invalid', 'true');
      throw new Error(`"${f.name}" must be a number`);
    }
    input.removeAttribute('aria-invalid');
    return v;
  });
}

function fillTargets(meta) {
  const lime = $('lime-label'), attr = $('attr-target');
  lime.textContent = '';
  attr.textContent = '';
  if (meta.task === 'classification') {
    lime.append(el('option', { value: '', text: 'most probable' }));
    attr.append(el('option', { value: 'predicted', text: 'predicted class' }));
    for (const c of meta.classes) {
      lime.append(el('option', { value: c, text: c }));
      attr.append(el('option', { value: c, text: c }));
    }
  } else {
    lime.append(el('option', { value: '', text: 'the predicted value' }));
    attr.append(el('option', { value: 'predicted', text: 'the predicted value' }));
  }
  lime.disabled = attr.disabled = meta.task !== 'classification';
  $('lime-features').value = String(Math.min(10, meta.features.length));
  // PDP: a feature to vary and, for classifiers, the class to plot; the SHAP summary's class.
  const pf = $('pdp-feature'), pc = $('pdp-class'), sc = $('summary-class');
  pf.textContent = pc.textContent = sc.textContent = '';
  meta.features.forEach((f, j) => pf.append(el('option', { value: String(j), text: f.name })));
  const classes = meta.task === 'classification' ? meta.classes : ['value'];
  // Binary classifiers: the PDP reports the positive class only (scikit-learn).
  const pdpClasses = classes.length === 2 ? [classes[1]] : classes;
  for (const c of pdpClasses) pc.append(el('option', { value: c, text: c }));
  for (const c of classes) sc.append(el('option', { value: c, text: c }));
  sc.value = classes[classes.length - 1];
  pc.disabled = sc.disabled = meta.task !== 'classification';
}

function clearResults() {
  for (const id of ['prediction', 'proba-chart', 'lime-summary', 'lime-chart', 'lime-table', 'attr-summary', 'attr-chart', 'imp-summary',
    'imp-chart', 'pdp-summary', 'pdp-chart', 'summary-summary', 'summary-chart'])
    $(id).textContent = '';
  for (const id of ['predict-error', 'lime-error', 'attr-error', 'imp-error', 'pdp-error', 'summary-error', 'instance-error']) showError(id, null);
  $('lime-warning').hidden = true;
  for (const p of ['predict', 'lime', 'attr', 'imp', 'pdp', 'summary']) {
    delete state.last[p];
    $(`${p}-code`).hidden = true;
  }
}

/* Marks explanations of an older instance as such, rather than hiding them. */
function markStale() {
  for (const id of ['lime-summary', 'attr-summary', 'pdp-summary']) {
    const p = $(id);
    if (p.textContent && !p.dataset.stale) {
      p.dataset.stale = '1';
      p.append(el('span', { class: 'stale', text: ' (instance changed since: run it again)' }));
    }
  }
}

function setSummary(id, text) {
  const p = $(id);
  delete p.dataset.stale;
  p.textContent = text;
}

/* Offers only the methods the model's family supports (options marked data-family):
 * tree ensembles have no gradients and no connection weights, but split importances. */
function showFamilyOptions(family) {
  for (const id of ['attr-method', 'imp-method']) {
    const sel = $(id);
    for (const o of sel.options) o.hidden = o.disabled = !!o.dataset.family && o.dataset.family !== family;
    if (sel.selectedOptions[0] && sel.selectedOptions[0].disabled) sel.value = [...sel.options].find((o) => !o.disabled).value;
  }
}

async function selectModel(name) {
  const seq = ++state.selectSeq;
  clearResults();
  showError('global-error', null);
  state.meta = null;
  $('model-info').textContent = 'loading…';
  try {
    const meta = await api('GET', `/models/${encodeURIComponent(name)}`);
    if (seq !== state.selectSeq) return;
    state.meta = meta;
    const kind = meta.task === 'classification' ? `classifies into ${meta.classes.join(', ')}` : 'regression';
    const arch = (meta.layers || []).map((l) => `${l.out} ${l.activation}`).join(' → ');
    $('model-info').textContent = `${meta.features.length} features, ${kind}; ${meta.n_inputs ?? ''} → ${arch}; version ${meta.version}, ${meta.background_rows} background rows.`;
    buildInstanceForm(meta);
    fillTargets(meta);
    showFamilyOptions(meta.family);
    if (history.replaceState) history.replaceState(null, '', `#model=${encodeURIComponent(name)}`);
    await predict();
  } catch (e) {
    if (seq !== state.selectSeq) return;
    $('model-info').textContent = '';
    showError('global-error', e);
  }
}

/* ---- prediction --------------------------------------------------------------------- */

async function predict() {
  if (!state.meta) return;
  const seq = ++state.predictSeq;
  let row;
  try {
    row = readInstance();
    showError('instance-error', null);
  } catch (e) {
    showError('instance-error', e.message);
    return;
  }
  try {
    const req = { model: state.meta.name, instances: [row] };
    remember('predict', '/predict', req);
    const r = await api('POST', '/predict', req);
    if (seq !== state.predictSeq) return;
    showError('predict-error', null);
    renderPrediction(r);
  } catch (e) {
    if (seq !== state.predictSeq) return;
    $('prediction').textContent = '';
    $('proba-chart').textContent = '';
    showError('predict-error', e);
  }
}

function renderPrediction(r) {
  const out = $('prediction');
  out.textContent = '';
  const p = r.predictions[0];
  if (isClassifier()) {
    const probs = r.probabilities ? r.probabilities[0] : [];
    const k = r.label_indices ? r.label_indices[0] : state.meta.classes.indexOf(p);
    out.append(el('p', { class: 'big' }, 'Predicted class: ', el('strong', { id: 'predicted-label', text: String(p) }),
      probs.length ? ` (probability ${fmt(probs[k])})` : ''));
    barChart($('proba-chart'), state.meta.classes.map((c, i) => ({ feature: c, label: c, value: probs[i] ?? 0 })),
      { caption: 'Class probabilities', unsigned: true, labelHeading: 'class', valueHeading: 'probability', axisTitle: 'probability' });
    chartTools($('proba-chart'), `predict-${state.meta.name}`, () => [['class', 'probability'], state.meta.classes.map((c, i) => [c, probs[i]])]);
  } else {
    out.append(el('p', { class: 'big' }, 'Predicted value: ', el('strong', { id: 'predicted-label', text: fmt(p) })));
    $('proba-chart').textContent = '';
  }
}

function schedulePredict() {
  clearTimeout(state.predictTimer);
  markStale();
  state.predictTimer = setTimeout(predict, 200);
}

/* ---- explanations ------------------------------------------------------------------- */

/* A whole number from an input, at least its min attribute; the server checks the upper
 * limits (they are configurable), and its error is shown as any other. */
function intField(id) {
  const input = $(id);
  const v = input.value.trim() === '' ? NaN : Number(input.value);
  const min = Number(input.min || 0);
  if (!Number.isInteger(v) || v < min) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    throw new Error(`${input.labels[0].textContent} must be a whole number of at least ${min}`);
  }
  input.removeAttribute('aria-invalid');
  return v;
}

/* Runs fn(call) with the button busy and errors shown in errId. fn makes its API calls
 * through call(), which drops the answer (throws STALE) when another model was picked
 * meanwhile, so a late answer never lands on the wrong model's page. */
async function run(buttonId, errId, fn) {
  const b = $(buttonId);
  const meta = state.meta;
  const call = async (method, path, body) => {
    try {
      const r = await api(method, path, body);
      if (state.meta !== meta) throw STALE;
      return r;
    } catch (e) {
      if (state.meta !== meta) throw STALE;
      throw e;
    }
  };
  busy(b, true);
  showError(errId, null);
  try {
    await fn(call);
  } catch (e) {
    if (e !== STALE) showError(errId, e instanceof ApiError ? e : e.message || String(e));
  } finally {
    busy(b, false);
  }
}

/* ---- copy as curl / Python ------------------------------------------------------------ */

/* A JSON value as a Python literal (true/false/null become True/False/None). */
function pyLit(v) {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (Array.isArray(v)) return `[${v.map(pyLit).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyLit(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/* The request as a shell command; the key, when one is in use, comes from the
 * environment rather than being printed. */
function asCurl(path, body) {
  const q = (t) => `'${t.replace(/'/g, `'\\''`)}'`;
  const auth = state.apiKey ? ` -H "Authorization: Bearer $EXPLAIND_API_KEY"` : '';
  return `curl -s ${location.origin}${path}${auth} -H 'Content-Type: application/json' -d ${q(JSON.stringify(body))}`;
}

/* The request as a call of the Python client (clients/python). */
const PY_METHODS = { '/predict': 'predict', '/explain/lime': 'lime', '/explain/gradient': 'gradient', '/explain/shap': 'shap', '/importance': 'importance', '/explain/pdp': 'pdp' };
function asPython(path, body) {
  const fn = PY_METHODS[path];
  const args = [pyLit(body.model)];
  const rest = { ...body };
  delete rest.model;
  if (rest.instance !== undefined) args.push(pyLit([rest.instance]));
  else if (rest.instances !== undefined) args.push(pyLit(rest.instances));
  delete rest.instance;
  delete rest.instances;
  if (fn === 'pdp') {
    args.push(pyLit(rest.features.length === 1 ? rest.features[0] : rest.features));
    delete rest.features;
  }
  for (const [k, v] of Object.entries(rest)) args.push(`${k}=${pyLit(v)}`);
  const key = state.apiKey ? ', api_key=os.environ["EXPLAIND_API_KEY"]' : '';
  return `${state.apiKey ? 'import os\n' : ''}from explaind import Client\n` +
    `c = Client(${JSON.stringify(location.origin)}${key})\nr = c.${fn}(${args.join(', ')})\nprint(r.to_frame())`;
}

/* Remembers panel's last request and puts the "copy as" buttons under it. */
function remember(panel, path, body) {
  state.last[panel] = { path, body };
  const box = $(`${panel}-code`);
  box.hidden = true;
  box.textContent = '';
}

function codeTools(panel) {
  const box = $(`${panel}-code`);
  const show = async (kind) => {
    const last = state.last[panel];
    if (!last) return;
    const text = kind === 'curl' ? asCurl(last.path, last.body) : asPython(last.path, last.body);
    box.textContent = text;
    box.dataset.kind = kind;
    box.hidden = false;
    try {
      await navigator.clipboard.writeText(text);
      box.dataset.copied = '1';
    } catch (e) {
      box.dataset.copied = '0'; // no clipboard here: the text is shown to select by hand
    }
  };
  $(`${panel}-curl`).addEventListener('click', () => show('curl'));
  $(`${panel}-python`).addEventListener('click', () => show('python'));
}

/* ---- explanations ------------------------------------------------------------------- */

/* "name = value" for feature j of the instance (what the waterfall and bars show). */
function featureValueLabel(name, j, row) {
  const v = row ? row[j] : undefined;
  return v === undefined ? name : `${name} = ${typeof v === 'number' ? fmt(v) : v}`;
}

async function explainLime(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('lime-run', 'lime-error', async (call) => {
    const row = readInstance();
    const req = {
      model: state.meta.name,
      instance: row,
      num_features: intField('lime-features'),
      num_samples: intField('lime-samples'),
      discretize: $('lime-discretize').value,
      seed: intField('lime-seed'),
    };
    if (isClassifier() && $('lime-label').value) req.labels = [$('lime-label').value];
    $('lime-chart').textContent = '';
    $('lime-table').textContent = '';
    $('lime-warning').hidden = true;
    setSummary('lime-summary', 'explaining…');
    remember('lime', '/explain/lime', req);
    const t0 = performance.now();
    let r;
    try {
      r = await call('POST', '/explain/lime', req);
    } catch (e) {
      if (e !== STALE) setSummary('lime-summary', '');
      throw e;
    }
    const ms = performance.now() - t0;
    const lab = r.explanations[0].labels[0];
    const name = lab.label !== undefined ? String(lab.label) : 'the output';
    setSummary('lime-summary',
      `Explaining ${isClassifier() ? `class “${name}”` : name}: surrogate R² ${fmt(lab.score)}, intercept ${fmt(lab.intercept)}, ` +
      `local prediction ${fmt(lab.local_pred)}; ${r.num_samples ?? req.num_samples} samples, kernel width ${fmt(r.kernel_width)}, ` +
      `seed ${r.seed}; ${Math.round(ms)} ms.`);
    $('lime-summary').dataset.r2 = String(lab.score);
    if (lab.score < LIME_LOW_SCORE) {
      $('lime-warning').textContent = `Low fit: the local surrogate explains only R² = ${fmt(lab.score)} of the model's ` +
        `behaviour around this instance (below ${LIME_LOW_SCORE}). Read these weights with care; try more samples, ` +
        'fewer features or another discretizer.';
      $('lime-warning').hidden = false;
    }
    const items = lab.weights.map((w) => ({
      feature: w.feature, label: w.condition || w.feature, value: w.weight,
      err: w.std, title: `${w.condition || w.feature}: weight ${w.weight}${w.std !== undefined ? ` ± ${w.std}` : ''}`,
    }));
    barChart($('lime-chart'), items, {
      caption: `LIME weights for ${name}`, labelHeading: 'condition', valueHeading: 'weight', axisTitle: 'weight in the local linear model',
      posLabel: isClassifier() ? `supports ${name}` : 'raises the value',
      negLabel: isClassifier() ? `against ${name}` : 'lowers the value',
    });
    chartTools($('lime-chart'), `lime-${state.meta.name}`, () => [['feature', 'condition', 'value', 'weight', 'std'],
      lab.weights.map((w) => [w.feature, w.condition, row[w.feature_index], w.weight, w.std])]);
    // The instance's values of the explained features, beside the weights.
    const body = el('tbody');
    for (const w of lab.weights) {
      const v = row[w.feature_index];
      body.append(el('tr', { 'data-feature': w.feature }, el('th', { scope: 'row', text: w.feature }),
        el('td', { class: 'num', text: typeof v === 'number' ? fmt(v) : String(v) })));
    }
    $('lime-table').append(el('table', { class: 'values' }, el('caption', { text: 'This instance' }),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'feature' }), el('th', { scope: 'col', text: 'value' }))), body));
  });
}

async function explainAttr(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('attr-run', 'attr-error', async (call) => {
    const method = $('attr-method').value;
    const target = $('attr-target').value || 'predicted';
    const seed = intField('attr-seed');
    const k = intField('attr-topk');
    const row = readInstance();
    const base = { model: state.meta.name, instance: row, target };
    $('attr-chart').textContent = '';
    setSummary('attr-summary', 'explaining…');
    const t0 = performance.now();
    let r, values, caption, summary, path, req;
    try {
      if (method === 'shap') {
        path = '/explain/shap';
        req = { ...base, seed };
        const trees = state.meta.trees;
        if (trees && trees.n_groups === 1) delete req.target; /* one raw output: the margin */
        remember('attr', path, req);
        r = await call('POST', path, req);
        values = r.shap_values[0];
        caption = r.method === 'tree' ? 'TreeSHAP values (raw margin)' : 'SHAP values';
        summary = `${r.method === 'tree' ? 'TreeSHAP, path-dependent' : `Kernel SHAP (${r.method})`}: ` +
          `from the expected value ${fmt(r.expected_value[0])}` +
          (r.model_output ? ` to f(x) ${fmt(r.model_output[0])}` : '') + '; the values add up to the difference.';
      } else {
        path = '/explain/gradient';
        req = { ...base, method };
        if (method === 'smoothgrad') req.seed = seed;
        remember('attr', path, req);
        r = await call('POST', path, req);
        values = r.attributions[0];
        caption = `${$('attr-method').selectedOptions[0].textContent} attributions`;
        summary = caption + (r.convergence_delta ? `: convergence delta ${fmt(r.convergence_delta[0])}` : '') + '.';
      }
    } catch (e) {
      if (e !== STALE) setSummary('attr-summary', '');
      throw e;
    }
    const ms = performance.now() - t0;
    const names = r.features || state.meta.features.map((f) => f.name);
    const t = r.targets ? r.targets[0] : 0;
    const oneMargin = state.meta.trees && state.meta.trees.n_groups === 1 && isClassifier();
    const outName = oneMargin ? `log-odds of ${state.meta.classes[state.meta.classes.length - 1]}`
      : isClassifier() ? state.meta.classes[t] : 'the output';
    setSummary('attr-summary', `${summary} Output explained: ${outName}. ${Math.round(ms)} ms.`);
    const all = names.map((n, j) => ({ feature: n, label: featureValueLabel(n, j, row), value: values[j] }))
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
    const items = topK(all, k);
    if (method === 'shap') {
      const fx = r.model_output ? r.model_output[0] : r.expected_value[0] + values.reduce((a, b) => a + b, 0);
      waterfallChart($('attr-chart'), r.expected_value[0], fx, items, {
        caption: `SHAP waterfall for ${outName}`, axisTitle: isClassifier() ? `probability of ${outName}` : 'predicted value',
      });
    } else {
      barChart($('attr-chart'), items, {
        caption: `${caption} for ${outName}`, valueHeading: 'attribution', labelHeading: 'feature = value', axisTitle: 'attribution',
        posLabel: isClassifier() ? `towards ${outName}` : 'raises the value',
        negLabel: isClassifier() ? `away from ${outName}` : 'lowers the value',
        unsigned: method === 'saliency',
      });
    }
    chartTools($('attr-chart'), `${method}-${state.meta.name}`, () => [['feature', 'value', method === 'shap' ? 'shap_value' : 'attribution'],
      names.map((n, j) => [n, row[j], values[j]])]);
  });
}

async function importance(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('imp-run', 'imp-error', async (call) => {
    const method = $('imp-method').value;
    const req = { model: state.meta.name, method, seed: 0 };
    if (method === 'permutation') req.n_repeats = intField('imp-repeats');
    $('imp-chart').textContent = '';
    setSummary('imp-summary', 'computing…');
    remember('imp', '/importance', req);
    const t0 = performance.now();
    let r;
    try {
      r = await call('POST', '/importance', req);
    } catch (e) {
      if (e !== STALE) setSummary('imp-summary', '');
      throw e;
    }
    const ms = performance.now() - t0;
    let text = `${$('imp-method').selectedOptions[0].textContent} importance over ${r.n_rows ?? state.meta.background_rows} background rows`;
    if (r.baseline_score !== null && r.baseline_score !== undefined) text += `; baseline ${r.scoring || 'score'} ${fmt(r.baseline_score)}`;
    setSummary('imp-summary', `${text}. ${Math.round(ms)} ms.`);
    barChart($('imp-chart'), r.importances.map((e) => ({
      feature: e.feature, label: e.feature, value: e.mean, err: e.std,
      title: `${e.feature}: ${e.mean}${e.std !== undefined ? ` ± ${e.std}` : ''}`,
    })), {
      caption: 'Global feature importance', valueHeading: 'importance', axisTitle: method === 'permutation' ? `drop in ${r.scoring || 'score'}` : 'importance',
      unsigned: method !== 'olden',
      posLabel: 'positive', negLabel: 'negative',
    });
    chartTools($('imp-chart'), `importance-${state.meta.name}`, () => [['feature', 'mean', 'std'],
      r.importances.map((e) => [e.feature, e.mean, e.std])]);
  });
}

/* Partial dependence of one feature, with the ICE curves of the background rows. */
async function explainPdp(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('pdp-run', 'pdp-error', async (call) => {
    const j = Number($('pdp-feature').value);
    const f = state.meta.features[j];
    const req = { model: state.meta.name, features: [f.name], kind: 'both', grid_resolution: intField('pdp-grid') };
    $('pdp-chart').textContent = '';
    setSummary('pdp-summary', 'computing…');
    remember('pdp', '/explain/pdp', req);
    let r;
    try {
      r = await call('POST', '/explain/pdp', req);
    } catch (e) {
      if (e !== STALE) setSummary('pdp-summary', '');
      throw e;
    }
    const outs = r.outputs || ['value'];
    let o = 0;
    if (isClassifier() && outs.length > 1) o = Math.max(0, outs.indexOf($('pdp-class').value));
    const grid = r.grid_values[0];
    const cat = f.type === 'categorical';
    const xs = grid.map((g, i) => (typeof g === 'number' && !cat ? g : i));
    const ice = (r.individual ? r.individual[o] : []).slice(0, 100);
    const series = ice.map((ys, n) => ({ name: `ICE row ${n}`, xs, ys, cls: 'ice' }));
    series.push({ name: 'partial dependence (average)', xs, ys: r.average[o], cls: 'pdp-avg' });
    const outName = isClassifier() ? String(outs[o]) : 'predicted value';
    const row = readInstance();
    lineChart($('pdp-chart'), series, {
      caption: `Partial dependence of ${outName} on ${f.name}`, xTitle: cat ? `${f.name} (${grid.join(', ')})` : f.name,
      yTitle: isClassifier() ? `P(${outName})` : outName, marker: cat ? undefined : row[j],
    });
    setSummary('pdp-summary', `${f.name}: ${grid.length} grid points; average over ${r.individual ? r.individual[o].length : '?'} background rows` +
      ` (thick), ${ice.length} ICE curves (thin)${isClassifier() ? `; output ${outName}` : ''}.`);
    chartTools($('pdp-chart'), `pdp-${state.meta.name}-${f.name}`, () => [[f.name, `average ${outName}`],
      grid.map((g, i) => [g, r.average[o][i]])]);
  });
}

/* SHAP summary: Kernel SHAP for background rows (GET /models/{name}?background=N), one
 * dot per row and feature. */
async function shapSummary(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('summary-run', 'summary-error', async (call) => {
    const n = intField('summary-rows');
    $('summary-chart').textContent = '';
    setSummary('summary-summary', 'explaining the background rows…');
    const t0 = performance.now();
    let meta, r;
    try {
      meta = await call('GET', `/models/${encodeURIComponent(state.meta.name)}?background=${n}`);
      const rows = meta.background || [];
      if (!rows.length) throw new Error('this model has no background data');
      const req = { model: state.meta.name, instances: rows, seed: 0 };
      if (isClassifier()) req.target = $('summary-class').value;
      remember('summary', '/explain/shap', req);
      r = await call('POST', '/explain/shap', req);
    } catch (e) {
      if (e !== STALE) setSummary('summary-summary', '');
      throw e;
    }
    const names = r.features || state.meta.features.map((f) => f.name);
    const outName = isClassifier() ? $('summary-class').value : 'the output';
    beeswarmChart($('summary-chart'), r.shap_values, meta.background, names, {
      caption: `SHAP summary over ${meta.background.length} background rows (${outName})`, maxFeatures: intField('attr-topk'),
    });
    setSummary('summary-summary', `Kernel SHAP (${r.method}) for ${meta.background.length} background rows, output ${outName}; ` +
      `features by mean |SHAP|. ${Math.round(performance.now() - t0)} ms.`);
    chartTools($('summary-chart'), `shap-summary-${state.meta.name}`, () => [['row', ...names.flatMap((x) => [x, `shap:${x}`])],
      r.shap_values.map((sv, i) => [i, ...sv.flatMap((v, j) => [meta.background[i][j], v])])]);
  });
}

/* ---- batch jobs (docs/jobs.md) ------------------------------------------------------ */

/* A job over an uploaded CSV: POST /jobs, then its progress from the event stream
 * (EventSource; polling GET /jobs/{id} where the stream is unavailable, e.g. with an API
 * key, which EventSource cannot send), then the results as a download. */
const jobs = { id: '', source: null, timer: 0 };

function jobShow(st) {
  const p = st.progress || {};
  $('jobs-progress').max = p.total || 1;
  $('jobs-progress').value = p.done || 0;
  const rate = p.rate_per_s ? `, ${Math.round(p.rate_per_s)} rows/s` : '';
  const eta = p.eta_s ? `, about ${Math.ceil(p.eta_s)} s left` : '';
  setSummary('jobs-summary', `Job ${st.id}: ${st.status}, ${p.done} of ${p.total} rows${rate}${eta}.`);
  const ended = ['succeeded', 'failed', 'cancelled'].includes(st.status);
  $('jobs-cancel').disabled = ended;
  $('jobs-links').hidden = !(p.done > 0);
  if (st.error && st.status === 'failed') showError('jobs-error', new ApiError(0, st.error.code, st.error.message, st.error.field));
  if (ended) jobStop();
}

function jobStop() {
  if (jobs.source) jobs.source.close();
  jobs.source = null;
  clearInterval(jobs.timer);
  jobs.timer = 0;
}

function jobWatch(id) {
  jobStop();
  const poll = () => {
    jobs.timer = setInterval(async () => {
      try {
        jobShow(await api('GET', `/jobs/${id}`));
      } catch (e) {
        showError('jobs-error', e);
        jobStop();
      }
    }, 500);
  };
  if (state.apiKey || typeof EventSource === 'undefined') return poll();
  const es = new EventSource(`/jobs/${id}/events`);
  jobs.source = es;
  const onEvent = (ev) => jobShow(JSON.parse(ev.data));
  es.addEventListener('progress', onEvent);
  es.addEventListener('end', (ev) => {
    onEvent(ev);
    jobStop();
  });
  es.onerror = () => {
    if (jobs.source !== es) return;
    es.close();
    jobs.source = null;
    poll();
  };
}

async function jobSubmit(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('jobs-run', 'jobs-error', async (call) => {
    const f = $('jobs-file').files[0];
    if (!f) throw new Error('choose a CSV file whose header names the model\'s features');
    const req = { endpoint: $('jobs-endpoint').value, model: state.meta.name, csv: await f.text(), seed: 0 };
    if (req.endpoint === '/predict') delete req.seed;
    const st = await call('POST', '/jobs', req);
    jobs.id = st.id;
    jobShow(st);
    jobWatch(st.id);
  });
}

async function jobDownload(csv) {
  if (!jobs.id) return;
  const headers = { Accept: csv ? 'text/csv' : 'application/x-ndjson' };
  if (state.apiKey) headers.Authorization = `Bearer ${state.apiKey}`;
  try {
    const resp = await fetch(`/jobs/${jobs.id}/results`, { headers });
    if (!resp.ok) throw new ApiError(resp.status, 'error', resp.statusText);
    const url = URL.createObjectURL(await resp.blob());
    const a = el('a', { href: url, download: `job-${jobs.id}.${csv ? 'csv' : 'ndjson'}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    showError('jobs-error', e);
  }
}

/* ---- start -------------------------------------------------------------------------- */

/* Fills the model picker from GET /models and selects the model named in the URL
 * (#model=NAME) or the first one. */
async function loadModels() {
  const picker = $('model');
  showError('global-error', null);
  try {
    const r = await api('GET', '/models');
    state.models = r.models;
    picker.textContent = '';
    if (!r.models.length) {
      picker.append(el('option', { value: '', text: 'no models loaded' }));
      return;
    }
    for (const m of r.models) picker.append(el('option', { value: m.name, text: `${m.name} (${m.task})` }));
    picker.disabled = false;
    const hash = /(?:^#|&)model=([^&]+)/.exec(location.hash);
    const wanted = hash ? decodeURIComponent(hash[1]) : '';
    picker.value = r.models.some((m) => m.name === wanted) ? wanted : r.models[0].name;
    await selectModel(picker.value);
  } catch (e) {
    picker.textContent = '';
    picker.append(el('option', { value: '', text: 'unavailable' }));
    picker.disabled = true;
    if (e instanceof ApiError && e.status === 401) {
      showError('global-error', `${e}. Enter an API key above.`);
      $('api-key').focus();
    } else {
      showError('global-error', e);
    }
  }
}

async function start() {
  const picker = $('model');
  picker.addEventListener('change', () => selectModel(picker.value));
  try {
    state.apiKey = sessionStorage.getItem('explaind.apiKey') || '';
  } catch (e) {
    state.apiKey = '';
  }
  $('api-key').value = state.apiKey;
  $('api-key').addEventListener('change', () => {
    state.apiKey = $('api-key').value.trim();
    try {
      sessionStorage.setItem('explaind.apiKey', state.apiKey);
    } catch (e) {
      /* storage refused: the key lasts until the page is reloaded */
    }
    loadModels();
  });
  $('instance').addEventListener('input', schedulePredict);
  $('instance').addEventListener('change', schedulePredict);
  $('instance').addEventListener('submit', (ev) => ev.preventDefault());
  $('reset').addEventListener('click', () => {
    if (!state.meta) return;
    fillInstance(state.meta.example || []);
    schedulePredict();
  });
  $('lime-form').addEventListener('submit', explainLime);
  $('attr-form').addEventListener('submit', explainAttr);
  $('imp-form').addEventListener('submit', importance);
  $('pdp-form').addEventListener('submit', explainPdp);
  $('summary-form').addEventListener('submit', shapSummary);
  $('jobs-form').addEventListener('submit', jobSubmit);
  $('jobs-cancel').addEventListener('click', async () => {
    if (!jobs.id) return;
    try {
      jobShow(await api('DELETE', `/jobs/${jobs.id}`));
    } catch (e) {
      showError('jobs-error', e);
    }
  });
  $('jobs-ndjson').addEventListener('click', () => jobDownload(false));
  $('jobs-csv').addEventListener('click', () => jobDownload(true));
  for (const p of ['predict', 'lime', 'attr', 'imp', 'pdp', 'summary']) codeTools(p);
  await loadModels();
  document.body.dataset.ready = '1';
}

document.addEventListener('DOMContentLoaded', start);
