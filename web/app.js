/* app.js — the explaind dashboard: pick a model, edit an instance, see its prediction,
 * a LIME explanation, gradient or SHAP attributions and the model's global importance.
 *
 * Plain DOM and SVG, no framework and no network beyond this server's API (see
 * /openapi.json). Charts are drawn as SVG by barChart(); every bar is a <g class="bar">
 * with data-feature (the feature's name) so tests and assistive tools can read them.
 */
'use strict';

const $ = (id) => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';

const state = {
  models: [],
  meta: null,          // GET /models/{name}
  predictTimer: 0,
  predictSeq: 0,       // answers to older /predict calls are dropped
  apiKey: '',          // for servers started with --api-keys; this tab only
  selectSeq: 0,        // a model picked later wins over one still loading
};

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

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

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

/* Numbers for people: 4 significant digits, no exponent for ordinary magnitudes. */
function fmt(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}

/* ---- charts ------------------------------------------------------------------------- */

/* Draws a horizontal bar chart into container.
 *   items: [{feature, label, value, err?, title?}] in display order
 *   opts:  {caption, posLabel, negLabel, unsigned}
 * Signed charts grow bars both ways from a zero line (orange: positive, blue: negative);
 * err draws a ±err whisker. */
function barChart(container, items, opts) {
  container.textContent = '';
  if (!items.length) {
    container.append(el('p', { class: 'muted', text: 'Nothing to show.' }));
    return;
  }
  // Sized to the container so text keeps its CSS size (12px) whatever the layout.
  const W = Math.max(360, Math.round(container.clientWidth || 760));
  const rowH = 22, top = 8, valueW = 64, pad = 8;
  // Labels get what the longest needs (about 6.6px a character), between 30% and 55%.
  const longest = Math.max(...items.map((it) => it.label.length));
  const labelW = Math.round(Math.min(W * 0.55, Math.max(W * 0.3, longest * 6.6 + 8)));
  const maxChars = Math.floor(labelW / 6.6);
  const H = top + items.length * rowH + 26;
  const plotX0 = labelW + pad, plotX1 = W - valueW - pad;
  let lo = 0, hi = 0;
  for (const it of items) {
    const e = it.err || 0;
    lo = Math.min(lo, it.value - e);
    hi = Math.max(hi, it.value + e);
  }
  if (lo === hi) hi = lo + 1;
  const x = (v) => plotX0 + ((v - lo) / (hi - lo)) * (plotX1 - plotX0);
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, width: String(W), height: String(H), role: 'img',
    'aria-label': opts.caption || 'bar chart', class: 'bars',
  });
  root.append(svg('title', {}, opts.caption || 'bar chart'));
  const desc = items.map((it) => `${it.label}: ${fmt(it.value)}`).join('; ');
  root.append(svg('desc', {}, desc));
  const zero = x(0);
  items.forEach((it, i) => {
    const y = top + i * rowH;
    const g = svg('g', { class: 'bar', 'data-feature': it.feature, 'data-value': String(it.value) });
    g.append(svg('title', {}, it.title || `${it.label}: ${it.value}`));
    const label = it.label.length > maxChars ? it.label.slice(0, maxChars - 1) + '…' : it.label;
    g.append(svg('text', { x: labelW, y: y + rowH / 2, class: 'label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, label));
    const x0 = Math.min(zero, x(it.value)), x1 = Math.max(zero, x(it.value));
    const cls = opts.unsigned ? 'pos neutral' : it.value >= 0 ? 'pos' : 'neg';
    g.append(svg('rect', { x: x0, y: y + 3, width: Math.max(1, x1 - x0), height: rowH - 6, class: cls }));
    if (it.err) {
      const ya = y + rowH / 2;
      g.append(svg('line', { x1: x(it.value - it.err), x2: x(it.value + it.err), y1: ya, y2: ya, class: 'whisker' }));
    }
    g.append(svg('text', { x: W - valueW, y: y + rowH / 2, class: 'value', 'dominant-baseline': 'middle' }, fmt(it.value)));
    root.append(g);
  });
  root.append(svg('line', { x1: zero, x2: zero, y1: top, y2: top + items.length * rowH, class: 'axis' }));
  const yl = top + items.length * rowH + 16;
  if (!opts.unsigned && opts.negLabel) root.append(svg('text', { x: 2, y: yl, class: 'legend neg-text' }, `◀ ${opts.negLabel}`));
  if (!opts.unsigned && opts.posLabel)
    root.append(svg('text', { x: W - 2, y: yl, class: 'legend pos-text', 'text-anchor': 'end' }, `${opts.posLabel} ▶`));
  container.append(root, dataTable(items, opts));
}

/* The chart's numbers as a table, folded under it: for screen readers, keyboards and
 * copying. */
function dataTable(items, opts) {
  const hasErr = items.some((it) => it.err !== undefined);
  const head = el('tr', {}, el('th', { scope: 'col', text: opts.labelHeading || 'feature' }),
    el('th', { scope: 'col', text: opts.valueHeading || 'value' }), hasErr ? el('th', { scope: 'col', text: '±' }) : null);
  const table = el('table', {}, el('caption', { class: 'sr-only', text: opts.caption || '' }), el('thead', {}, head));
  const body = el('tbody');
  for (const it of items)
    body.append(el('tr', {}, el('td', { text: it.label }), el('td', { class: 'num', text: String(it.value) }),
      hasErr ? el('td', { class: 'num', text: it.err !== undefined ? String(it.err) : '' }) : null));
  table.append(body);
  return el('details', { class: 'data' }, el('summary', { text: 'Show the numbers' }), table);
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
}

function clearResults() {
  for (const id of ['prediction', 'proba-chart', 'lime-summary', 'lime-chart', 'attr-summary', 'attr-chart', 'imp-summary', 'imp-chart'])
    $(id).textContent = '';
  for (const id of ['predict-error', 'lime-error', 'attr-error', 'imp-error', 'instance-error']) showError(id, null);
}

/* Marks explanations of an older instance as such, rather than hiding them. */
function markStale() {
  for (const id of ['lime-summary', 'attr-summary']) {
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
    const r = await api('POST', '/predict', { model: state.meta.name, instances: [row] });
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
      { caption: 'Class probabilities', unsigned: true, labelHeading: 'class', valueHeading: 'probability' });
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

async function explainLime(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('lime-run', 'lime-error', async (call) => {
    const req = {
      model: state.meta.name,
      instance: readInstance(),
      num_features: intField('lime-features'),
      num_samples: intField('lime-samples'),
      discretize: $('lime-discretize').value,
      seed: intField('lime-seed'),
    };
    if (isClassifier() && $('lime-label').value) req.labels = [$('lime-label').value];
    $('lime-chart').textContent = '';
    setSummary('lime-summary', 'explaining…');
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
    barChart($('lime-chart'), lab.weights.map((w) => ({
      feature: w.feature, label: w.condition || w.feature, value: w.weight,
      err: w.std, title: `${w.condition || w.feature}: weight ${w.weight}${w.std !== undefined ? ` ± ${w.std}` : ''}`,
    })), {
      caption: `LIME weights for ${name}`, labelHeading: 'condition', valueHeading: 'weight',
      posLabel: isClassifier() ? `supports ${name}` : 'raises the value',
      negLabel: isClassifier() ? `against ${name}` : 'lowers the value',
    });
  });
}

async function explainAttr(ev) {
  ev.preventDefault();
  if (!state.meta) return;
  await run('attr-run', 'attr-error', async (call) => {
    const method = $('attr-method').value;
    const target = $('attr-target').value || 'predicted';
    const seed = intField('attr-seed');
    const base = { model: state.meta.name, instance: readInstance(), target };
    $('attr-chart').textContent = '';
    setSummary('attr-summary', 'explaining…');
    const t0 = performance.now();
    let r, values, caption, summary;
    try {
      if (method === 'shap') {
        const req = { ...base, seed };
        const trees = state.meta.trees;
        if (trees && trees.n_groups === 1) delete req.target; /* one raw output: the margin */
        r = await call('POST', '/explain/shap', req);
        values = r.shap_values[0];
        caption = r.method === 'tree' ? 'TreeSHAP values (raw margin)' : 'SHAP values';
        summary = `${r.method === 'tree' ? 'TreeSHAP, path-dependent' : `Kernel SHAP (${r.method})`}: ` +
          `expected value ${fmt(r.expected_value[0])}` +
          (r.model_output ? `, f(x) ${fmt(r.model_output[0])}` : '') + `; values add up to their difference.`;
      } else {
        const req = { ...base, method };
        if (method === 'smoothgrad') req.seed = seed;
        r = await call('POST', '/explain/gradient', req);
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
    const items = names.map((n, j) => ({ feature: n, label: n, value: values[j] }))
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
    barChart($('attr-chart'), items, {
      caption: `${caption} for ${outName}`, valueHeading: method === 'shap' ? 'SHAP value' : 'attribution',
      posLabel: isClassifier() ? `towards ${outName}` : 'raises the value',
      negLabel: isClassifier() ? `away from ${outName}` : 'lowers the value',
      unsigned: method === 'saliency',
    });
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
      caption: 'Global feature importance', valueHeading: 'importance',
      unsigned: method !== 'olden',
      posLabel: 'positive', negLabel: 'negative',
    });
  });
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
  await loadModels();
  document.body.dataset.ready = '1';
}

document.addEventListener('DOMContentLoaded', start);
