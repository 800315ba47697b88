// text_view.mjs PORT OUTDIR — the dashboard's text view (/text.html) in headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core) against the real server.
//
// Picks reviews_bert, runs integrated gradients, occlusion and LIME on the example text and
// checks that every token (or word) shown carries the API's value (data-value and the hover
// title), that the shading's sign follows the value, that the legend shows ±max|value|,
// that an API error is shown, and saves OUTDIR/dashboard-text.png (docs/dashboard.md). Any
// request that leaves the server, console error or page error fails the run. Prints one
// line per check and "N passed, N failed"; exit 1 on any failure. Run by tests/test_web.c.
import { chromium } from 'playwright-core';

const [port, outDir] = process.argv.slice(2);
if (!port || !outDir) {
  console.error('usage: node text_view.mjs PORT OUTDIR');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
let passed = 0, failed = 0;
function check(name, ok, why) {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}${why ? `: ${why}` : ''}`); }
  return ok;
}
function fmt(x) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}
async function apiPost(path, body) {
  const r = await fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return r.json();
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 520 } });
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith(base)) problems.push(`outside request: ${r.url()}`); });
  await page.goto(`${base}/text.html`);
  await page.waitForFunction(() => document.getElementById('text-model').options.length > 0, null, { timeout: 30000 });
  const models = await page.$$eval('#text-model option', (os) => os.map((o) => o.value));
  check('text models listed', models.includes('reviews_bert') && models.includes('reviews_gru'), JSON.stringify(models));
  await page.selectOption('#text-model', 'reviews_bert');
  const text = await page.inputValue('#text-input');

  const run = async (method) => {
    await page.selectOption('#text-method', method);
    await page.click('#text-run');
    await page.waitForFunction(() => !document.getElementById('text-summary').textContent.startsWith('explaining'), null,
      { timeout: 60000 });
    return page.$$eval('#text-tokens .tok', (ss) => ss.map((s) => ({ text: s.textContent, value: Number(s.dataset.value),
      title: s.title, bg: getComputedStyle(s).backgroundColor })));
  };
  const signOk = (t) => {
    const [r, , b] = t.bg.match(/\d+/g).map(Number);
    return t.value === 0 || (t.value > 0 ? r >= b : b >= r);
  };

  // integrated gradients: one shaded span per token, values equal to the API's
  let shown = await run('integrated_gradients');
  let a = await apiPost('/explain/gradient', { model: 'reviews_bert', instance: text, method: 'integrated_gradients' });
  check('IG: one span per token', shown.length === a.tokens[0].length, `${shown.length} vs ${a.tokens[0].length}`);
  check('IG: token strings', shown.every((t, k) => t.text === a.tokens[0][k]));
  check('IG: values', shown.every((t, k) => Math.abs(t.value - a.attributions[0][k]) <= 1e-12 * Math.max(1, Math.abs(t.value))));
  check('IG: hover titles', shown.every((t) => t.title === `${t.text}: ${fmt(t.value)}`));
  check('IG: diverging colours follow the sign', shown.every(signOk));
  const max = Math.max(...a.attributions[0].map(Math.abs));
  check('legend shows ±max|value|', (await page.textContent('#text-legend-max')) === fmt(max) &&
    (await page.textContent('#text-legend-min')) === fmt(-max));
  await page.screenshot({ path: `${outDir}/dashboard-text.png`, fullPage: true });

  shown = await run('occlusion');
  a = await apiPost('/explain/occlusion', { model: 'reviews_bert', instance: text, baseline: 'pad' });
  check('occlusion: values', shown.length === a.attributions[0].length &&
    shown.every((t, k) => Math.abs(t.value - a.attributions[0][k]) <= 1e-12 * Math.max(1, Math.abs(t.value))));

  shown = await run('lime');
  a = await apiPost('/explain/lime', { model: 'reviews_bert', instance: text, num_samples: 2000, seed: 0 });
  const w = new Map(a.explanations[0].labels[0].weights.map((x) => [x.feature, x.weight]));
  check('LIME: every word shaded', shown.length === (text.match(/\w+/g) || []).length, `${shown.length}`);
  check('LIME: word weights', shown.every((t) => Math.abs(t.value - (w.get(t.text) ?? 0)) <= 1e-12));
  check('LIME: colours follow the sign', shown.every(signOk));

  check('no console error, page error or outside request', problems.length === 0, problems.join('; '));
  problems.length = 0;
  await page.fill('#text-input', '?!');
  await page.click('#text-run');
  await page.waitForSelector('#text-error:not([hidden])', { timeout: 30000 });
  check('API error shown', (await page.textContent('#text-error')).includes('no word'));
  // the browser logs the provoked 400 itself; nothing else may appear
  check('only the provoked 400 logged', problems.every((p) => p.includes('status of 400')), problems.join('; '));
} catch (e) {
  check('run', false, e.stack);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
