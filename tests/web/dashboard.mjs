// dashboard.mjs PORT OUTDIR — the dashboard end to end in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core) against the real server on 127.0.0.1:PORT.
//
// Loads the page, checks the model picker, picks breast_cancer, checks the instance form
// and the prediction against the API, runs LIME (its values table and low-fit warning),
// attributions (top-k with "N other features", the SHAP waterfall from E[f(x)] to f(x)),
// global importance, partial dependence with ICE and the SHAP summary over the
// background, and checks each chart against the API's numbers, its axis and that no
// label is clipped; exports a chart as PNG and CSV, runs the "copy as curl" and "copy as
// Python" text, shows an API error, and saves OUTDIR/dashboard.png plus one picture per
// panel (dashboard-*.png, the ones in docs/dashboard.md). Any request that leaves the server, any
// console error and any page error fails the run. Prints one line per check and a
// closing "N passed, N failed"; exit 1 on any failure. Run by tests/test_web.c.
//
// With API_KEY set (a server started with EXPLAIND_API_KEYS), it checks instead that the
// page loads without a key, reports the API's 401, and works once the key is entered.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [port, outDir] = process.argv.slice(2);
if (!port || !outDir) {
  console.error('usage: node dashboard.mjs PORT OUTDIR');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.DASHBOARD_TIMEOUT_MS || 60000);

let passed = 0, failed = 0;
function check(name, ok, why) {
  if (ok) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${why ? `: ${why}` : ''}`);
  }
  return ok;
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// The page's number format (web/charts.js fmt).
function fmt(x) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}

async function apiPost(path, body) {
  const r = await fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}
async function apiGet(path) {
  const r = await fetch(base + path);
  return { status: r.status, json: await r.json() };
}

async function keyScenario(page, key) {
  const resp = await page.goto(base + '/');
  if (!check('the page loads without a key', resp && resp.status() === 200,
    resp ? `status ${resp.status()} (is xd_static_handle called before the API-key check?)` : 'no answer')) return;
  await page.waitForSelector('body[data-ready="1"]');
  const err = await page.$eval('#global-error', (e) => (e.hidden ? '' : e.textContent));
  check('the API\'s 401 is shown, asking for the key', /^401 unauthenticated: .*API key/.test(err), err);
  await page.fill('#api-key', key);
  await page.press('#api-key', 'Enter');
  await page.dispatchEvent('#api-key', 'change');
  await page.waitForSelector('#predicted-label');
  check('with the key: models load and a prediction shows', (await page.$$('#model option')).length > 1 && await page.$eval('#global-error', (e) => e.hidden));
}

const profile = mkdtempSync(join(tmpdir(), 'explaind-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const offsite = [];
const problems = [];
try {
  // Nothing may leave this server: every other request is aborted and recorded.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(base + '/')) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The error this run provokes on purpose shows up as a failed resource load.
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });

  if (process.env.API_KEY) {
    await keyScenario(page, process.env.API_KEY);
    throw null; // done: skip the full run
  }

  mkdirSync(outDir, { recursive: true });
  // ---- the page and the model picker ----
  const resp = await page.goto(base + '/');
  if (!check('GET / answers 200 text/html', resp && resp.status() === 200 && /text\/html/.test(resp.headers()['content-type'] || ''),
    resp ? `status ${resp.status()} (is xd_static_handle called from xd_api_handle in api/api.c?)` : 'no answer')) {
    throw new Error('no dashboard to test');
  }
  await page.waitForSelector('body[data-ready="1"]');
  const models = (await apiGet('/models')).json.models.map((m) => m.name);
  const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
  check('model picker lists GET /models', same(options, models), `${options} vs ${models}`);

  // Every form control has a label (accessible name).
  const unlabeled = await page.$$eval('input, select', (els) =>
    els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id || e.name));
  check('every control has a label', unlabeled.length === 0, `unlabeled: ${unlabeled.join(', ')}`);

  // ---- credit: categorical features are drop-downs with their categories ----
  await page.selectOption('#model', 'credit');
  await page.waitForFunction(() => document.querySelectorAll('#instance .field').length === 6);
  const credit = (await apiGet('/models/credit')).json;
  const cat = credit.features.findIndex((f) => f.type === 'categorical');
  const catOptions = await page.$$eval(`#f-${cat} option`, (os) => os.map((o) => o.value));
  check('categorical feature is a drop-down of its categories',
    (await page.$eval(`#f-${cat}`, (e) => e.tagName)) === 'SELECT' && same(catOptions, credit.features[cat].categories),
    `options ${catOptions}`);
  check('categorical drop-down prefilled with the example row',
    (await page.$eval(`#f-${cat}`, (e) => e.value)) === credit.example[cat]);

  // ---- credit_xgb: a tree ensemble offers TreeSHAP and split importances, no gradients ----
  await page.selectOption('#model', 'credit_xgb');
  await page.waitForFunction(() => document.querySelectorAll('#instance .field').length === 6);
  // credit has 6 fields too: wait (bounded) for the tree model's own options, which arrive
  // with its metadata; if they never do, the checks below fail and say what was offered
  await page.waitForFunction(() => [...document.querySelectorAll('#imp-method option')]
    .some((o) => o.value === 'total_gain' && !o.disabled), null, { timeout: 15000 }).catch(() => {});
  const offered = async (id) => page.$$eval(`#${id} option`, (os) => os.filter((o) => !o.disabled).map((o) => o.value));
  check('trees: attribution methods are SHAP only', same(await offered('attr-method'), ['shap']),
    `${await offered('attr-method')}`);
  check('trees: importance offers permutation, mean |SHAP| and the split importances',
    same(await offered('imp-method'), ['permutation', 'mean_abs_shap', 'total_gain', 'weight', 'cover']),
    `${await offered('imp-method')}`);
  await page.click('#attr-run');
  await page.waitForSelector('#attr-chart .bar, #attr-error:not([hidden])');
  check('trees: TreeSHAP chart has 6 bars', (await page.$$('#attr-chart .bar')).length === 6,
    await page.textContent('#attr-error'));
  check('trees: the summary names TreeSHAP', /TreeSHAP/.test(await page.textContent('#attr-summary')));

  // ---- diabetes: a regression model shows a value, and LIME explains the value ----
  await page.selectOption('#model', 'diabetes');
  await page.waitForFunction(() => document.querySelectorAll('#instance .field').length === 10);
  const diab = (await apiGet('/models/diabetes')).json;
  await page.waitForSelector('#predicted-label');
  const diabWant = (await apiPost('/predict', { model: 'diabetes', instances: [diab.example] })).json.predictions[0];
  const diabShown = Number(await page.textContent('#predicted-label'));
  check('regression: the predicted value is shown', Math.abs(diabShown - diabWant) <= 1e-3 * Math.abs(diabWant) + 1e-9, `${diabShown} vs ${diabWant}`);
  check('regression: no class to pick', await page.$eval('#lime-label', (e) => e.disabled));
  await page.click('#lime-run');
  await page.waitForSelector('#lime-chart .bar, #lime-error:not([hidden])');
  const diabBars = await page.$$eval('#lime-chart .bar', (bs) => bs.length);
  check('regression: LIME chart has 10 bars', diabBars === 10, await page.textContent('#lime-error'));

  // A LIME answer that arrives after another model was picked must not land on its page.
  await page.fill('#lime-samples', '100000');
  await page.click('#lime-run');

  // ---- breast_cancer: form, prefill, prediction ----
  await page.selectOption('#model', 'breast_cancer');
  await page.waitForFunction(() => document.querySelectorAll('#instance .field').length === 30);
  const meta = (await apiGet('/models/breast_cancer')).json;
  const names = meta.features.map((f) => f.name);
  const labels = await page.$$eval('#instance label', (ls) => ls.map((l) => l.textContent));
  check('instance form has the 30 features, in order', same(labels, names));
  await page.waitForFunction(() => !document.getElementById('lime-run').disabled);
  check('a late answer for the previous model is dropped',
    (await page.$$('#lime-chart .bar')).length === 0 && (await page.$eval('#lime-error', (e) => e.hidden))
    && (await page.textContent('#lime-summary')) === '');
  await page.fill('#lime-samples', '5000');
  const values = await page.$$eval('#instance input', (is) => is.map((i) => Number(i.value)));
  check('instance prefilled with the example row', same(values, meta.example), `${values.slice(0, 3)}…`);
  await page.waitForSelector('#predicted-label');
  const want = (await apiPost('/predict', { model: 'breast_cancer', instances: [meta.example] })).json;
  check('prediction shown is the API\'s', (await page.textContent('#predicted-label')) === want.predictions[0],
    `${await page.textContent('#predicted-label')} vs ${want.predictions[0]}`);
  check('probability chart has one bar per class',
    same(await page.$$eval('#proba-chart .bar', (bs) => bs.map((b) => b.dataset.feature)), meta.classes));
  // The prediction as a Python client call: it runs and prints the same label.
  await page.click('#predict-python');
  const pyPredict = await page.textContent('#predict-code');
  if (existsSync('/usr/bin/python3')) {
    let pout = '';
    try {
      pout = execFileSync('/usr/bin/python3', ['-c', pyPredict.replace('print(r.to_frame())', 'print(r.predictions)')],
        { encoding: 'utf8', timeout: 120000, env: { ...process.env, PYTHONPATH: resolve('../../clients/python') } });
    } catch (e) {
      pout = String(e.stderr || e.message);
    }
    check('copy as Python: the prediction', /c\.predict\("breast_cancer", \[\[/.test(pyPredict) && pout.trim() === `['${want.predictions[0]}']`, pout.slice(0, 200));
  }

  // Editing a value re-predicts; a bad value is reported, not sent.
  const wr = names.indexOf('worst radius');
  await page.fill(`#f-${wr}`, '');
  await page.waitForSelector('#instance-error:not([hidden])');
  check('an empty number is reported', /worst radius/.test(await page.textContent('#instance-error')));
  const edited = meta.example.slice();
  edited[wr] = 40;
  const wantEdited = (await apiPost('/predict', { model: 'breast_cancer', instances: [edited] })).json.predictions[0];
  await page.fill(`#f-${wr}`, '40');
  await page.waitForFunction((w) => document.getElementById('predicted-label')?.textContent === w
    && document.getElementById('instance-error').hidden, wantEdited);
  check('editing a value updates the prediction', true);
  await page.click('#reset');
  await page.waitForFunction((w) => document.getElementById('predicted-label')?.textContent === w, want.predictions[0]);

  // ---- LIME ----
  const limeReq = { model: 'breast_cancer', instance: meta.example, num_features: 10, num_samples: 5000, discretize: 'quartile', seed: 0 };
  const lime = await apiPost('/explain/lime', limeReq);
  if (lime.status === 404 && /no such path/.test(lime.json.error?.message || '')) {
    console.log('skip LIME chart: POST /explain/lime is not implemented yet');
  } else {
    await page.click('#lime-run');
    await page.waitForSelector('#lime-chart .bar, #lime-error:not([hidden])');
    const err = await page.$eval('#lime-error', (e) => (e.hidden ? '' : e.textContent));
    const lab = lime.json.explanations[0].labels[0];
    const bars = await page.$$eval('#lime-chart .bar', (bs) => bs.map((b) => b.dataset.feature));
    check('LIME chart: 10 bars', !err && bars.length === 10, err || `${bars.length} bars`);
    check('LIME chart: the API\'s features, in its order', same(bars, lab.weights.map((w) => w.feature)), `${bars}`);
    const texts = await page.$$eval('#lime-chart .bar .label', (ts) => ts.map((t) => t.textContent));
    check('LIME chart: bars labelled with lime\'s conditions',
      texts.every((t, i) => t.replace('…', '') === lab.weights[i].condition.slice(0, t.replace('…', '').length)), `${texts.slice(0, 2)}`);
    const summary = await page.textContent('#lime-summary');
    check('LIME summary shows the surrogate\'s R²', summary.includes('R²') && Number(await page.$eval('#lime-summary', (e) => e.dataset.r2)) === lab.score, summary);
  }

  // ---- LIME: the instance's values beside the weights, and the low-fit warning ----
  {
    const lab = lime.json.explanations[0].labels[0];
    const rows = await page.$$eval('#lime-table tbody tr', (trs) => trs.map((t) => [t.dataset.feature, t.querySelector('td').textContent]));
    check('LIME: the instance\'s values beside the weights', same(rows.map((r) => r[0]), lab.weights.map((w) => w.feature))
      && rows.every((r, i) => Math.abs(Number(r[1]) - meta.example[lab.weights[i].feature_index]) <= 1e-3 * Math.abs(meta.example[lab.weights[i].feature_index]) + 1e-9),
      JSON.stringify(rows.slice(0, 3)));
    const warn = await page.$eval('#lime-warning', (e) => (e.hidden ? '' : e.textContent));
    check('LIME: a low surrogate R² is flagged (and only then)', (lab.score < 0.5) === (warn !== '') && (!warn || warn.includes(String(lab.score).slice(0, 4))),
      `score ${lab.score}, warning "${warn}"`);
    // The same request as curl: run it, get the API's answer.
    await page.click('#lime-curl');
    const curl = await page.textContent('#lime-code');
    let out = '';
    try {
      out = execFileSync('sh', ['-c', curl], { encoding: 'utf8', timeout: 60000 });
    } catch (e) {
      out = String(e.stdout || e.message);
    }
    check('copy as curl: the command gives the answer shown', curl.startsWith('curl -s ') && same(JSON.parse(out || 'null')?.explanations, lime.json.explanations), curl.slice(0, 120));
  }

  // Every chart label fits its chart (none drawn past the left edge), and a shortened one
  // carries its full text as a hover title.
  async function labelsFit(sel) {
    return page.$$eval(`${sel} svg text.label`, (ts) => ts.filter((t) => {
      const b = t.getBBox(), full = t.parentNode.querySelector(':scope > title')?.textContent || '';
      const text = t.textContent;
      return b.x < -0.5 || (text.endsWith('…') ? !full.startsWith(text.slice(0, -1)) : text !== full);
    }).map((t) => t.textContent));
  }

  // ---- attributions: integrated gradients (top 10 + "N other features"), then the SHAP waterfall ----
  for (const method of ['integrated_gradients', 'shap']) {
    await page.selectOption('#attr-method', method);
    await page.evaluate(() => { document.getElementById('attr-chart').textContent = ''; });
    await page.click('#attr-run');
    await page.waitForSelector('#attr-chart .bar, #attr-error:not([hidden])');
    const err = await page.$eval('#attr-error', (e) => (e.hidden ? '' : e.textContent));
    const body = method === 'shap'
      ? await apiPost('/explain/shap', { model: 'breast_cancer', instance: meta.example, target: 'predicted', seed: 0 })
      : await apiPost('/explain/gradient', { model: 'breast_cancer', instance: meta.example, target: 'predicted', method });
    const values = method === 'shap' ? body.json.shap_values[0] : body.json.attributions[0];
    const order = names.map((n, j) => j).sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]));
    const bars = await page.$$eval('#attr-chart .bar', (bs) => bs.map((b) => [b.dataset.feature, Number(b.dataset.value)]));
    const top = order.slice(0, 10);
    check(`${method}: the 10 largest |values|, then "20 other features"`, !err && bars.length === 11
      && same(bars.slice(0, 10).map((b) => b[0]), top.map((j) => names[j])) && bars[10][0] === '__other__',
      err || `${bars.length} bars: ${bars.map((b) => b[0]).join(', ')}`);
    const rest = order.slice(10).reduce((s, j) => s + values[j], 0);
    check(`${method}: "N other features" is the sum of the rest`, bars.length === 11 && Math.abs(bars[10][1] - rest) <= 1e-9 * (1 + Math.abs(rest))
      && /^20 other features/.test(await page.$eval('#attr-chart .bar.other .label', (t) => t.textContent)), `${bars[10]?.[1]} vs ${rest}`);
    const lbl = await page.$$eval('#attr-chart .bar .lbl > title', (ts) => ts.map((t) => t.textContent));
    check(`${method}: bars show the feature's value`, lbl[0] === `${names[top[0]]} = ${fmt(meta.example[top[0]])}`, lbl[0]);
    check(`${method}: an axis with a scale`, (await page.$$('#attr-chart .x-axis .tick')).length >= 3);
    const clipped = await labelsFit('#attr-chart');
    check(`${method}: no clipped labels`, clipped.length === 0, clipped.join(' | '));
    if (method === 'shap') {
      const base = Number(await page.$eval('#attr-chart g.base', (g) => g.dataset.value));
      const fx = Number(await page.$eval('#attr-chart g.fx', (g) => g.dataset.value));
      const sum = bars.reduce((s, b) => s + b[1], 0);
      check('SHAP waterfall: from E[f(x)] to f(x)', base === body.json.expected_value[0]
        && Math.abs(fx - (body.json.model_output ? body.json.model_output[0] : base + sum)) <= 1e-12 && Math.abs(base + sum - fx) <= 1e-6,
        `base ${base}, sum ${sum}, f(x) ${fx}`);
      await (await page.$('#attr-section')).screenshot({ path: join(outDir, 'dashboard-waterfall.png') });
      // Export: PNG through a canvas, CSV with every feature.
      const [png] = await Promise.all([page.waitForEvent('download'), page.click('#attr-chart [data-export="png"]')]);
      const pngBytes = readFileSync(await png.path());
      check('export: the chart as PNG', png.suggestedFilename() === 'shap-breast_cancer.png' && pngBytes.length > 5000
        && pngBytes.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10])), `${png.suggestedFilename()}, ${pngBytes.length} bytes`);
      const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#attr-chart [data-export="csv"]')]);
      const lines = readFileSync(await csv.path(), 'utf8').trim().split('\n');
      check('export: the chart as CSV', lines[0] === 'feature,value,shap_value' && lines.length === 31
        && Number(lines[1].split(',').pop()) === values[0], `${lines.length} lines: ${lines[0]} / ${lines[1]}`);
      // The request as Python (clients/python): it runs and prints the same values.
      await page.click('#attr-python');
      const py = await page.textContent('#attr-code');
      if (existsSync('/usr/bin/python3')) {
        let pout = '';
        try {
          pout = execFileSync('/usr/bin/python3', ['-c', `${py.replace('print(r.to_frame())', 'import json; print(json.dumps(r.shap_values))')}`],
            { encoding: 'utf8', timeout: 120000, env: { ...process.env, PYTHONPATH: resolve('../../clients/python') } });
        } catch (e) {
          pout = String(e.stderr || e.message);
        }
        check('copy as Python: the client call gives the same SHAP values', py.includes('from explaind import Client') && (() => { try { return same(JSON.parse(pout), body.json.shap_values); } catch (e) { return false; } })(), pout.slice(0, 200));
      }
    }
  }
  // ---- global importance ----
  await page.click('#imp-run');
  await page.waitForSelector('#imp-chart .bar, #imp-error:not([hidden])');
  const impErr = await page.$eval('#imp-error', (e) => (e.hidden ? '' : e.textContent));
  const imp = (await apiPost('/importance', { model: 'breast_cancer', method: 'permutation', seed: 0, n_repeats: 5 })).json;
  const impBars = await page.$$eval('#imp-chart .bar', (bs) => bs.map((b) => b.dataset.feature));
  check('importance chart: the API\'s 30 features, in its order', !impErr && same(impBars, imp.importances.map((e) => e.feature)), impErr || `${impBars.length} bars`);

  // ---- importance: axis; PDP with ICE; the SHAP summary over the background ----
  const impTicks = (await page.$$('#imp-chart .x-axis .tick')).length, impClipped = await labelsFit('#imp-chart');
  check('importance: an axis with a scale, no clipped labels', impTicks >= 3 && impClipped.length === 0, `${impTicks} ticks; ${impClipped.join(' | ')}`);
  await page.selectOption('#pdp-feature', String(wr));
  await page.click('#pdp-run');
  await page.waitForSelector('#pdp-chart path.pdp-avg, #pdp-error:not([hidden])');
  const pdp = (await apiPost('/explain/pdp', { model: 'breast_cancer', features: ['worst radius'], kind: 'both', grid_resolution: 20 })).json;
  const avgShown = await page.$$eval('#pdp-chart details td.num', (ts) => ts.map((t) => Number(t.textContent)));
  check('PDP: the average curve is the API\'s', same(avgShown, pdp.average[0]) && Number(await page.$eval('#pdp-chart path.pdp-avg', (p) => p.dataset.points)) === 20,
    `${avgShown.slice(0, 3)} vs ${pdp.average[0].slice(0, 3)}`);
  check('PDP: one ICE curve per background row (up to 100)', (await page.$$('#pdp-chart path.ice')).length === Math.min(100, pdp.individual[0].length));
  check('PDP: axes with scales on both sides', (await page.$$('#pdp-chart .x-axis .tick')).length >= 3 && (await page.$$('#pdp-chart .y-axis .tick')).length >= 3);
  await (await page.$('#pdp-section')).screenshot({ path: join(outDir, 'dashboard-pdp.png') });

  await page.fill('#summary-rows', '30');
  await page.click('#summary-run');
  await page.waitForSelector('#summary-chart .dot, #summary-error:not([hidden])', { timeout: TIMEOUT * 2 });
  const sumErr = await page.$eval('#summary-error', (e) => (e.hidden ? '' : e.textContent));
  const swarm = await page.$$eval('#summary-chart .swarm-row', (rs) => rs.map((r) => [r.dataset.feature, Number(r.dataset.meanAbs), r.querySelectorAll('.dot').length]));
  check('SHAP summary: 10 features by mean |SHAP|, one dot per background row', !sumErr && swarm.length === 10
    && swarm.every((r, i) => r[2] === 30 && (i === 0 || swarm[i - 1][1] >= r[1])), sumErr || JSON.stringify(swarm.slice(0, 3)));
  const bg = (await apiGet('/models/breast_cancer?background=30')).json.background;
  const sv = (await apiPost('/explain/shap', { model: 'breast_cancer', instances: bg, seed: 0, target: 'malignant' })).json.shap_values;
  const j0 = names.indexOf(swarm[0]?.[0]);
  const dots0 = await page.$$eval('#summary-chart .swarm-row:first-of-type .dot', (ds) => ds.map((d) => Number(d.dataset.value)));
  check('SHAP summary: the dots are the API\'s SHAP values of those rows', j0 >= 0 && same(dots0, sv.map((r) => r[j0])), `${dots0.slice(0, 2)}`);
  await (await page.$('#summary-section')).screenshot({ path: join(outDir, 'dashboard-summary.png') });
  await (await page.$('#lime-section')).screenshot({ path: join(outDir, 'dashboard-lime.png') });

  // ---- a batch job over an uploaded CSV: progress from the event stream, then results ----
  const csvRows = (await apiGet('/models/breast_cancer?background=40')).json.background;
  const csvText = [names.map((x) => (/[",]/.test(x) ? `"${x.replace(/"/g, '""')}"` : x)).join(','),
    ...csvRows.map((r) => r.join(','))].join('\n') + '\n';
  await page.selectOption('#jobs-endpoint', '/explain/shap');
  await page.setInputFiles('#jobs-file', { name: 'rows.csv', mimeType: 'text/csv', buffer: Buffer.from(csvText) });
  await page.click('#jobs-run');
  await page.waitForFunction(() => /succeeded|failed|cancelled/.test(document.getElementById('jobs-summary').textContent)
    || !document.getElementById('jobs-error').hidden, null, { timeout: TIMEOUT * 2 });
  const jobText = await page.textContent('#jobs-summary');
  const bar = await page.$eval('#jobs-progress', (p) => [p.value, p.max]);
  check('batch job: succeeded, the progress bar full', /succeeded, 40 of 40 rows/.test(jobText) && bar[0] === 40 && bar[1] === 40,
    `${jobText} ${bar}`);
  check('batch job: the downloads are offered', await page.isVisible('#jobs-ndjson') && await page.isVisible('#jobs-csv'));
  const jobId = /Job ([0-9a-f]+)/.exec(jobText)?.[1];
  const lines = jobId ? (await (await fetch(`${base}/jobs/${jobId}/results`)).text()).trim().split('\n') : [];
  check('batch job: one result line per CSV row', lines.length === 40 && JSON.parse(lines[39]).index === 39, `${lines.length} lines`);

  // ---- an API error reaches the user ----
  await page.fill('#lime-samples', '1000000');
  await page.click('#lime-run');
  await page.waitForSelector('#lime-error:not([hidden])');
  const limeErr = await page.textContent('#lime-error');
  check('API errors are shown (code and message)', /^4\d\d (invalid_argument|payload_too_large): .+/.test(limeErr), limeErr);
  await page.fill('#lime-samples', '5000');
  await page.click('#lime-run');
  await page.waitForSelector('#lime-error[hidden]', { state: 'attached' });
  await page.waitForSelector('#lime-chart .bar');

  mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true });
  console.log(`screenshot: ${join(outDir, 'dashboard.png')}`);
} catch (e) {
  if (e !== null) check('dashboard run', false, e.message === 'no dashboard to test' ? e.message : e.stack || String(e));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
check('no request left the server', offsite.length === 0, offsite.join(', '));
check('no console or page errors', problems.length === 0, problems.join('; '));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
