// image_view.mjs PORT OUTDIR — the dashboard's image view (/image.html) in headless
// Chromium (Debian's /usr/bin/chromium driven by playwright-core) against the real server.
//
// Picks shapes and one of its background pictures, runs integrated gradients, Grad-CAM and
// LIME (and Kernel SHAP, saliency, occlusion on an uploaded PNG of another size and saliency
// on an uploaded JPEG), and checks: the overlay <img>
// is the API's PNG for the same request, decoded at the right size (the picture plus the
// legend strip for heatmaps) and not blank (pixel variance > 0, read through a canvas);
// the legend shows the API's range with numbers and its colour bar has, at every column
// the PNG's own strip samples, that strip's colour (so the page's table is the server's);
// the probabilities are /predict's; LIME's weights are the API's and its outlines are
// drawn; a bad parameter shows the server's message; a file that is not an image is
// refused. Saves OUTDIR/dashboard-image.png and OUTDIR/dashboard-image-lime.png
// (docs/dashboard.md). Any request that leaves the server, console error or page error
// fails the run. Prints one line per check and "N passed, N failed"; exit 1 on any
// failure. Run by tests/test_web.c.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [port, outDir] = process.argv.slice(2);
if (!port || !outDir) {
  console.error('usage: node image_view.mjs PORT OUTDIR');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
const MODEL = 'shapes', PICK = 3;
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
async function apiGet(path) { return (await fetch(base + path)).json(); }
async function apiPost(path, body) {
  const r = await fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return r.json();
}
// core/render.h: the legend strip is clamp(H / 6, 8, 32) rows.
const legendRows = (H) => Math.min(32, Math.max(8, Math.floor(H / 6)));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1150, height: 760 } });
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) problems.push(`outside request: ${r.url()}`); });

  await page.goto(`${base}/`);
  check('dashboard links the image view', (await page.getAttribute('#image-view-link', 'href')) === '/image.html');
  await page.goto(`${base}/image.html`);
  await page.waitForFunction(() => document.querySelectorAll('#image-thumbs img').length > 0, null, { timeout: 30000 });
  const { models } = await apiGet('/models');
  const want = models.filter((m) => m.input_kind === 'image').map((m) => m.name);
  const listed = await page.$$eval('#image-model option', (os) => os.map((o) => o.value));
  check('image models listed (and only they)', JSON.stringify(listed) === JSON.stringify(want), `${listed} vs ${want}`);
  const info = await apiGet(`/models/${MODEL}?background=16`);
  const { channels: C, height: H, width: W } = info.input;
  const thumbs = await page.$$eval('#image-thumbs img', (is) => is.map((i) => i.getAttribute('src')));
  check('one thumbnail per background picture', thumbs.length === info.background.length && info.background.length > 0 &&
    thumbs.every((s, i) => s === `data:image/png;base64,${info.background[i].b64}`), `${thumbs.length}`);
  const targets = await page.$$eval('#image-target option', (os) => os.map((o) => o.value));
  check('class choices', targets.length === info.classes.length + 1);
  await page.click(`#image-thumbs img[data-index="${PICK}"]`);
  check('clicking a thumbnail picks it', (await page.inputValue('#image-pick')) === String(PICK) &&
    (await page.textContent('#image-chosen')) === `chosen: background ${PICK}`);
  const instance = { b64: info.background[PICK].b64 };

  // Runs the chosen method; the overlay's size, its pixels' variance and the colours it holds.
  const run = async (method, setup) => {
    await page.selectOption('#image-method', method);
    if (setup) await setup();
    await page.click('#image-run');
    await page.waitForFunction(() => !document.getElementById('image-summary').textContent.startsWith('explaining'), null,
      { timeout: 120000 });
    return page.evaluate(() => {
      const img = document.getElementById('image-overlay');
      const cv = document.createElement('canvas');
      cv.width = img.naturalWidth;
      cv.height = img.naturalHeight;
      const ctx = cv.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, cv.width, cv.height).data;
      let s = 0, s2 = 0, yellow = 0;
      for (let i = 0; i < d.length; i += 4) {
        const v = d[i] + d[i + 1] + d[i + 2];
        s += v;
        s2 += v * v;
        if (d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 0) yellow++;
      }
      const n = d.length / 4;
      return {
        w: img.naturalWidth, h: img.naturalHeight, variance: s2 / n - (s / n) ** 2, yellow, src: img.getAttribute('src'),
        orig: document.getElementById('image-original').getAttribute('src'),
        error: document.getElementById('image-error').hidden ? null : document.getElementById('image-error').textContent,
        pixels: { width: cv.width, data: Array.from(d) },
      };
    });
  };
  const legend = () => page.evaluate(() => {
    const cv = document.getElementById('image-legend-bar');
    const d = cv.getContext('2d').getImageData(0, 0, 256, 1).data;
    const cols = [];
    for (let i = 0; i < 256; i++) cols.push([d[i * 4], d[i * 4 + 1], d[i * 4 + 2]]);
    return {
      hidden: document.getElementById('image-legend').hidden, cols, colormap: cv.dataset.colormap,
      min: document.getElementById('image-legend-min').textContent, max: document.getElementById('image-legend-max').textContent,
      zero: document.getElementById('image-legend-zero').hidden ? null : document.getElementById('image-legend-zero').textContent,
    };
  });
  // The legend's colour bar against the PNG's own strip (core/render.c: row H + 2 onwards,
  // column x has the colour of t = x / (W - 1), entry min(floor(t·256), 255)).
  const barMatchesStrip = (shot, lg) => {
    const row = H + 2;
    for (let x = 0; x < W; x++) {
      const k = Math.min(255, Math.floor((x / (W - 1)) * 256));
      const o = (row * shot.pixels.width + x) * 4;
      const png = shot.pixels.data.slice(o, o + 3);
      if (png.join() !== lg.cols[k].join()) return `column ${x}: PNG ${png} vs legend entry ${k} ${lg.cols[k]}`;
    }
    return null;
  };
  const probsShown = () => page.$$eval('#image-probs td[data-value]', (cs) => cs.map((c) => Number(c.dataset.value)));

  // integrated gradients: the API's PNG, right size, not blank, legend with the API's numbers
  let shot = await run('integrated_gradients');
  let a = await apiPost('/explain/gradient', { model: MODEL, instance, render: true, method: 'integrated_gradients', steps: 50, baseline: 'black' });
  check('IG: no error', shot.error === null, shot.error);
  check('IG: overlay is the API\'s PNG', shot.src === `data:image/png;base64,${a.images[0]}`);
  check('IG: overlay size W x (H + legend)', shot.w === W && shot.h === H + legendRows(H), `${shot.w}x${shot.h}`);
  check('IG: overlay not blank', shot.variance > 0, `${shot.variance}`);
  check('IG: original shown', shot.orig === `data:image/png;base64,${instance.b64}`);
  let lg = await legend();
  check('IG: legend shown, diverging', !lg.hidden && lg.colormap === 'coolwarm' && a.legends[0].colormap === 'coolwarm');
  check('IG: legend numbers are the API\'s range', lg.min === fmt(a.legends[0].min) && lg.max === fmt(a.legends[0].max) &&
    /\d/.test(lg.min) && /\d/.test(lg.max) && lg.zero === '0', `${lg.min} … ${lg.max}`);
  const m = Math.max(...a.heatmaps[0].flat().map(Math.abs));
    // the server renders the heatmap in float
  check('IG: range is ±max |heatmap|', a.legends[0].max === Math.fround(m) && a.legends[0].min === -Math.fround(m),
    `${JSON.stringify(a.legends[0])} vs ${m}`);
  let bad = barMatchesStrip(shot, lg);
  check('IG: legend colours equal the PNG\'s colour bar', bad === null, bad);
  const pred = await apiPost('/predict', { model: MODEL, instance });
  const shownP = await probsShown();
  check('prediction: /predict\'s probabilities', shownP.length === pred.probabilities[0].length &&
    shownP.every((v, i) => v === pred.probabilities[0][i]));
  check('prediction: the predicted class first in bold', (await page.textContent('#image-probs tr.best td')) === pred.predictions[0]);
  check('IG: summary names the method and class', (await page.textContent('#image-summary')).startsWith(`integrated gradients for ${pred.predictions[0]}`));
  await page.screenshot({ path: `${outDir}/dashboard-image.png`, fullPage: true });

  // Grad-CAM for another class: unsigned map, viridis legend from its min
  shot = await run('grad_cam', () => page.selectOption('#image-target', '1'));
  a = await apiPost('/explain/gradient', { model: MODEL, instance, render: true, method: 'grad_cam', target: 1 });
  check('Grad-CAM: overlay is the API\'s PNG', shot.src === `data:image/png;base64,${a.images[0]}`);
  check('Grad-CAM: overlay size and not blank', shot.w === W && shot.h === H + legendRows(H) && shot.variance > 0);
  lg = await legend();
  check('Grad-CAM: sequential legend with the API\'s numbers', lg.colormap === 'viridis' && lg.min === fmt(a.legends[0].min) &&
    lg.max === fmt(a.legends[0].max) && a.legends[0].min >= 0, JSON.stringify(a.legends[0]));
  bad = barMatchesStrip(shot, lg);
  check('Grad-CAM: legend colours equal the PNG\'s colour bar', bad === null, bad);
  check('Grad-CAM: summary names the chosen class', (await page.textContent('#image-summary')).includes(info.classes[1]));
  await page.selectOption('#image-target', '');

  // LIME: the API's PNG (same seed), outlines drawn, weights listed
  shot = await run('lime', async () => { await page.fill('#image-num-samples', '500'); await page.fill('#image-seed', '0'); });
  a = await apiPost('/explain/lime', { model: MODEL, instance, render: true, seed: 0, num_samples: 500 });
  check('LIME: no error', shot.error === null, shot.error);
  check('LIME: overlay is the API\'s PNG', shot.src === `data:image/png;base64,${a.images[0]}`);
  check('LIME: overlay size W x H', shot.w === W && shot.h === H, `${shot.w}x${shot.h}`);
  check('LIME: not blank, outlines drawn', shot.variance > 0 && shot.yellow > 0, `${shot.variance} ${shot.yellow}`);
  const ws = await page.$$eval('#image-weights td[data-value]', (cs) => cs.map((c) => Number(c.dataset.value)));
  const aw = a.explanations[0].labels[0].weights;
  check('LIME: the API\'s weights in its order', ws.length === Math.min(8, aw.length) && ws.every((w, k) => w === aw[k].weight));
  check('LIME: heat legend hidden, segments shown', (await legend()).hidden && !(await page.$eval('#image-segments', (e) => e.hidden)));
  await page.screenshot({ path: `${outDir}/dashboard-image-lime.png`, fullPage: true });

  // Kernel SHAP over the same segments: its PNG, the SHAP values by |value|
  shot = await run('shap');
  a = await apiPost('/explain/shap', { model: MODEL, instance, render: true, seed: 0 });
  check('SHAP: overlay is the API\'s PNG, W x H, outlines drawn', shot.src === `data:image/png;base64,${a.images[0]}` &&
    shot.w === W && shot.h === H && shot.yellow > 0);
  const sv = await page.$$eval('#image-weights td[data-value]', (cs) => cs.map((c) => Number(c.dataset.value)));
  const top = [...a.shap_values[0]].sort((x, y) => Math.abs(y) - Math.abs(x)).slice(0, 8);
  check('SHAP: the largest |values| listed', sv.length === top.length && sv.every((v, k) => v === top[k]));

  // saliency: unsigned, viridis from min to max
  shot = await run('saliency');
  a = await apiPost('/explain/gradient', { model: MODEL, instance, render: true, method: 'saliency' });
  check('saliency: overlay is the API\'s PNG, viridis legend', shot.src === `data:image/png;base64,${a.images[0]}` &&
    (await legend()).colormap === 'viridis');

  // an uploaded PNG of another size (56x40 RGBA): resized by the server; occlusion
  const up = readFileSync('../golden/graph/shapes_rgba_56x40.png');
  await page.setInputFiles('#image-file', '../golden/graph/shapes_rgba_56x40.png');
  await page.waitForFunction(() => document.getElementById('image-chosen').textContent === 'chosen: shapes_rgba_56x40.png' &&
    !document.querySelector('#image-thumbs img.on'), null, { timeout: 10000 });
  shot = await run('occlusion');
  a = await apiPost('/explain/occlusion', { model: MODEL, instance: { b64: up.toString('base64') }, render: true, window: [C, 4, 4], strides: [C, 2, 2] });
  check('upload: original shown', shot.orig === `data:image/png;base64,${up.toString('base64')}`);
  check('upload + occlusion: overlay is the API\'s PNG at the model size', shot.src === `data:image/png;base64,${a.images[0]}` &&
    shot.w === W && shot.h === H + legendRows(H) && shot.variance > 0, `${shot.w}x${shot.h}`);
  // and a JPEG
  const jpg = readFileSync('../golden/graph/shapes_jpeg_32x32.jpg');
  await page.setInputFiles('#image-file', '../golden/graph/shapes_jpeg_32x32.jpg');
  await page.waitForFunction(() => document.getElementById('image-chosen').textContent === 'chosen: shapes_jpeg_32x32.jpg',
    null, { timeout: 10000 });
  shot = await run('saliency');
  a = await apiPost('/explain/gradient', { model: MODEL, instance: { b64: jpg.toString('base64') }, render: true, method: 'saliency' });
  check('upload JPEG: original and the API\'s PNG', shot.orig === `data:image/jpeg;base64,${jpg.toString('base64')}` &&
    shot.src === `data:image/png;base64,${a.images[0]}` && shot.variance > 0);
  check('no console error, page error or outside request', problems.length === 0, problems.join('; '));

  // errors: a bad parameter shows the server's message; a file that is not an image is refused
  problems.length = 0;
  const expect = await apiPost('/explain/gradient', { model: MODEL, instance, method: 'integrated_gradients', steps: 0, render: true });
  await page.click(`#image-thumbs img[data-index="${PICK}"]`);
  shot = await run('integrated_gradients', () => page.fill('#image-steps', '0'));
  check('API error shown as the server sent it', shot.error === `400 ${expect.error.code}: ${expect.error.message} (at steps)`, shot.error);
  check('only the provoked 400 logged', problems.every((p) => p.includes('status of 400')), problems.join('; '));
  await page.fill('#image-steps', '50');
  const dir = mkdtempSync(join(tmpdir(), 'xd-image-view-'));
  writeFileSync(join(dir, 'notes.txt'), 'not a picture');
  await page.setInputFiles('#image-file', join(dir, 'notes.txt'));
  await page.waitForSelector('#image-error:not([hidden])', { timeout: 10000 });
  check('a file that is not PNG or JPEG is refused', (await page.textContent('#image-error')).includes('not a PNG or JPEG'));
} catch (e) {
  check('run', false, e.stack);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
