/* charts.js — the dashboard's charts as SVG, and their export (PNG, CSV).
 *
 * Loaded before app.js. No library: every chart is plain SVG sized to its container so
 * text keeps its CSS size, with a numeric axis (ticks from niceTicks), labels that never
 * overflow (shortened with "…", the full text in a <title> shown on hover) and, under
 * it, the numbers as a table. Every mark that a test or an assistive tool reads carries
 * data-* attributes (data-feature, data-value).
 */
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const CHAR_W = 6.6; // px per character of the 12px labels (a safe average for system fonts)

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

/* Numbers for people: 4 significant digits, no exponent for ordinary magnitudes. */
function fmt(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}

/* About n "nice" ticks (1, 2 or 5 times a power of ten) covering [lo, hi], at least 3
 * when the range allows it (a smaller nice step is taken until it does). */
function niceTicks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const at = (step) => {
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  };
  const raw = (hi - lo) / Math.max(1, n);
  let p = Math.pow(10, Math.floor(Math.log10(raw)));
  const mult = [1, 2, 5, 10];
  let i = mult.findIndex((m) => m * p >= raw);
  let ticks = at(mult[i] * p);
  for (let guard = 0; ticks.length < 3 && guard < 6; guard++) {
    if (--i < 0) {
      i = 2;
      p /= 10;
    }
    ticks = at(mult[i] * p);
  }
  // Rounding noise (0.30000000000000004) off the labels.
  return ticks.map((v) => Number(v.toPrecision(12)));
}

/* A label that fits maxChars: shortened with "…"; the full text is the <title> (hover). */
function labelText(parent, attrs, text, maxChars) {
  const short = text.length > maxChars ? text.slice(0, Math.max(1, maxChars - 1)) + '…' : text;
  const g = svg('g', { class: 'lbl' });
  g.append(svg('title', {}, text));
  const t = svg('text', attrs, short);
  g.append(t);
  parent.append(g);
  return t;
}

/* A horizontal numeric axis at y from x0 to x1 for the scale x(v), with ticks and their
 * values, and an optional title under it. */
function xAxis(root, x, lo, hi, y, title, W) {
  const g = svg('g', { class: 'x-axis' });
  g.append(svg('line', { x1: x(lo), x2: x(hi), y1: y, y2: y, class: 'axis' }));
  for (const v of niceTicks(lo, hi, Math.max(2, Math.floor((x(hi) - x(lo)) / 70)))) {
    g.append(svg('line', { x1: x(v), x2: x(v), y1: y, y2: y + 4, class: 'axis' }));
    g.append(svg('text', { x: x(v), y: y + 15, class: 'tick', 'text-anchor': 'middle' }, fmt(v)));
  }
  if (title) g.append(svg('text', { x: (x(lo) + x(hi)) / 2, y: y + 29, class: 'axis-title', 'text-anchor': 'middle' }, title));
  root.append(g);
  return g;
}

function chartRoot(W, H, caption, cls) {
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: String(W), height: String(H), role: 'img', 'aria-label': caption, class: cls });
  root.append(svg('title', {}, caption));
  return root;
}

/* Keeps the k largest |value| items and folds the rest into one "N other features" item
 * (data-feature "__other__", value = their sum). k <= 0 or k >= items: all of them. */
function topK(items, k) {
  if (!(k > 0) || items.length <= k + 1) return items;
  const sorted = [...items].sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  const rest = sorted.slice(k);
  const sum = rest.reduce((s, it) => s + it.value, 0);
  const n = rest.length;
  return sorted.slice(0, k).concat([{
    feature: '__other__', label: `${n} other features`, value: sum, other: n,
    title: `${n} other features (sum): ${sum}\n${rest.map((r) => r.label).join(', ')}`,
  }]);
}

/* Horizontal bars.
 *   items: [{feature, label, value, err?, title?}] in display order
 *   opts:  {caption, posLabel, negLabel, unsigned, axisTitle, labelHeading, valueHeading}
 * Signed charts grow bars both ways from a zero line (orange: positive, blue: negative);
 * err draws a ±err whisker. */
function barChart(container, items, opts) {
  container.textContent = '';
  if (!items.length) {
    container.append(el('p', { class: 'muted', text: 'Nothing to show.' }));
    return;
  }
  const W = Math.max(360, Math.round(container.clientWidth || 760));
  const rowH = 22, top = 8, valueW = 64, pad = 8;
  const longest = Math.max(...items.map((it) => it.label.length));
  const labelW = Math.round(Math.min(W * 0.5, Math.max(W * 0.28, longest * CHAR_W + 8)));
  const maxChars = Math.floor((labelW - 4) / CHAR_W);
  const plotH = items.length * rowH;
  const H = top + plotH + 50;
  const plotX0 = labelW + pad, plotX1 = W - valueW - pad;
  let lo = 0, hi = 0;
  for (const it of items) {
    const e = it.err || 0;
    lo = Math.min(lo, it.value - e);
    hi = Math.max(hi, it.value + e);
  }
  if (lo === hi) hi = lo + 1;
  const x = (v) => plotX0 + ((v - lo) / (hi - lo)) * (plotX1 - plotX0);
  const root = chartRoot(W, H, opts.caption || 'bar chart', 'bars');
  root.append(svg('desc', {}, items.map((it) => `${it.label}: ${fmt(it.value)}`).join('; ')));
  const zero = x(0);
  items.forEach((it, i) => {
    const y = top + i * rowH;
    const g = svg('g', { class: it.other ? 'bar other' : 'bar', 'data-feature': it.feature, 'data-value': String(it.value) });
    g.append(svg('title', {}, it.title || `${it.label}: ${it.value}`));
    labelText(g, { x: labelW, y: y + rowH / 2, class: 'label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, it.label, maxChars);
    const x0 = Math.min(zero, x(it.value)), x1 = Math.max(zero, x(it.value));
    const cls = it.other ? 'other-fill' : opts.unsigned ? 'pos neutral' : it.value >= 0 ? 'pos' : 'neg';
    g.append(svg('rect', { x: x0, y: y + 3, width: Math.max(1, x1 - x0), height: rowH - 6, class: cls }));
    if (it.err) {
      const ya = y + rowH / 2;
      g.append(svg('line', { x1: x(it.value - it.err), x2: x(it.value + it.err), y1: ya, y2: ya, class: 'whisker' }));
    }
    g.append(svg('text', { x: W - valueW, y: y + rowH / 2, class: 'value', 'dominant-baseline': 'middle' }, fmt(it.value)));
    root.append(g);
  });
  root.append(svg('line', { x1: zero, x2: zero, y1: top, y2: top + plotH, class: 'axis zero' }));
  xAxis(root, x, lo, hi, top + plotH + 2, opts.axisTitle, W);
  const yl = H - 4;
  if (!opts.unsigned && opts.negLabel) root.append(svg('text', { x: 2, y: yl, class: 'legend neg-text' }, `◀ ${opts.negLabel}`));
  if (!opts.unsigned && opts.posLabel)
    root.append(svg('text', { x: W - 2, y: yl, class: 'legend pos-text', 'text-anchor': 'end' }, `${opts.posLabel} ▶`));
  container.append(root, dataTable(items.map((it) => [it.label, it.value, it.err]), [opts.labelHeading || 'feature', opts.valueHeading || 'value', '±'], opts.caption));
}

/* SHAP waterfall (shap.plots.waterfall): from the base value E[f(x)] each feature's SHAP
 * value moves the output, largest |value| at the top, to f(x) at the bottom. Labels
 * read "feature = value". items: [{feature, label, value}] (topK may fold the smallest). */
function waterfallChart(container, base, fx, items, opts) {
  container.textContent = '';
  const W = Math.max(360, Math.round(container.clientWidth || 760));
  const rowH = 24, top = 22, valueW = 64, pad = 8;
  const longest = Math.max(12, ...items.map((it) => it.label.length));
  const labelW = Math.round(Math.min(W * 0.45, Math.max(W * 0.28, longest * CHAR_W + 8)));
  const maxChars = Math.floor((labelW - 4) / CHAR_W);
  // Bottom to top as shap draws it: the smallest step starts from the base value.
  const order = [...items].reverse();
  let run = base;
  const steps = order.map((it) => {
    const s = { ...it, from: run, to: run + it.value };
    run += it.value;
    return s;
  }).reverse();
  const ends = steps.flatMap((s) => [s.from, s.to]).concat([base, fx]);
  let lo = Math.min(...ends), hi = Math.max(...ends);
  const span = hi - lo || 1;
  lo -= span * 0.05;
  hi += span * 0.05;
  const plotX0 = labelW + pad, plotX1 = W - valueW - pad;
  const x = (v) => plotX0 + ((v - lo) / (hi - lo)) * (plotX1 - plotX0);
  const plotH = steps.length * rowH;
  const H = top + plotH + 48;
  const root = chartRoot(W, H, opts.caption || 'SHAP waterfall', 'bars waterfall');
  root.append(svg('desc', {}, `base ${fmt(base)}; ` + steps.map((s) => `${s.label}: ${fmt(s.value)}`).join('; ') + `; f(x) ${fmt(fx)}`));
  // f(x) on top, E[f(x)] at the bottom, as dashed guides.
  const gx = svg('g', { class: 'fx', 'data-value': String(fx) });
  gx.append(svg('line', { x1: x(fx), x2: x(fx), y1: top - 4, y2: top + plotH, class: 'guide' }));
  gx.append(svg('text', { x: x(fx), y: top - 8, class: 'tick', 'text-anchor': 'middle' }, `f(x) = ${fmt(fx)}`));
  root.append(gx);
  steps.forEach((s, i) => {
    const y = top + i * rowH;
    const g = svg('g', { class: s.other ? 'bar other' : 'bar', 'data-feature': s.feature, 'data-value': String(s.value) });
    g.append(svg('title', {}, s.title || `${s.label}: ${s.value >= 0 ? '+' : ''}${s.value}`));
    labelText(g, { x: labelW, y: y + rowH / 2, class: 'label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, s.label, maxChars);
    const x0 = Math.min(x(s.from), x(s.to)), x1 = Math.max(x(s.from), x(s.to));
    const cls = s.value >= 0 ? 'pos' : 'neg';
    // An arrow-ended bar pointing the way the feature moves the output.
    const tip = Math.min(6, (x1 - x0) / 2), yt = y + 3, yb = y + rowH - 3, ym = y + rowH / 2;
    const d = s.value >= 0
      ? `M${x0},${yt} L${x1 - tip},${yt} L${x1},${ym} L${x1 - tip},${yb} L${x0},${yb} Z`
      : `M${x1},${yt} L${x0 + tip},${yt} L${x0},${ym} L${x0 + tip},${yb} L${x1},${yb} Z`;
    g.append(svg('path', { d, class: cls }));
    g.append(svg('text', { x: W - valueW, y: ym, class: `value ${cls}-text`, 'dominant-baseline': 'middle' },
      `${s.value >= 0 ? '+' : ''}${fmt(s.value)}`));
    if (i + 1 < steps.length)
      g.append(svg('line', { x1: x(s.from), x2: x(s.from), y1: yb, y2: yb + 6, class: 'connector' }));
    root.append(g);
  });
  const gb = svg('g', { class: 'base', 'data-value': String(base) });
  gb.append(svg('line', { x1: x(base), x2: x(base), y1: top, y2: top + plotH + 2, class: 'guide' }));
  root.append(gb);
  xAxis(root, x, lo, hi, top + plotH + 2, `${opts.axisTitle || 'model output'} (E[f(x)] = ${fmt(base)})`, W);
  container.append(root, dataTable([['E[f(x)] (base value)', base, undefined]].concat(steps.map((s) => [s.label, s.value, undefined]),
    [['f(x)', fx, undefined]]), ['feature = value', 'SHAP value', ''], opts.caption));
}

/* Lines over a numeric x: PDP (thick) with ICE curves (thin), axes on both sides.
 * series: [{name, xs, ys, cls}] */
function lineChart(container, series, opts) {
  container.textContent = '';
  const W = Math.max(360, Math.round(container.clientWidth || 760));
  const H = 280, left = 64, right = 16, top = 12, bottom = 46;
  const xs = series.flatMap((s) => s.xs), ys = series.flatMap((s) => s.ys);
  let xlo = Math.min(...xs), xhi = Math.max(...xs), ylo = Math.min(...ys), yhi = Math.max(...ys);
  if (xlo === xhi) xhi = xlo + 1;
  if (ylo === yhi) yhi = ylo + 1;
  const yp = (yhi - ylo) * 0.05;
  ylo -= yp;
  yhi += yp;
  const x = (v) => left + ((v - xlo) / (xhi - xlo)) * (W - left - right);
  const y = (v) => top + (1 - (v - ylo) / (yhi - ylo)) * (H - top - bottom);
  const root = chartRoot(W, H, opts.caption || 'line chart', 'lines');
  const gy = svg('g', { class: 'y-axis' });
  gy.append(svg('line', { x1: left, x2: left, y1: y(ylo), y2: y(yhi), class: 'axis' }));
  for (const v of niceTicks(ylo, yhi, 5)) {
    gy.append(svg('line', { x1: left - 4, x2: W - right, y1: y(v), y2: y(v), class: 'grid' }));
    gy.append(svg('text', { x: left - 6, y: y(v), class: 'tick', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, fmt(v)));
  }
  gy.append(svg('text', { x: 12, y: (y(ylo) + y(yhi)) / 2, class: 'axis-title', 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${(y(ylo) + y(yhi)) / 2})` }, opts.yTitle || ''));
  root.append(gy);
  for (const s of series) {
    const d = s.xs.map((v, i) => `${i ? 'L' : 'M'}${x(v).toFixed(1)},${y(s.ys[i]).toFixed(1)}`).join(' ');
    const p = svg('path', { d, class: s.cls, 'data-name': s.name, 'data-points': String(s.xs.length) });
    p.append(svg('title', {}, s.name));
    root.append(p);
  }
  xAxis(root, x, xlo, xhi, y(ylo), opts.xTitle, W);
  if (opts.marker !== undefined && Number.isFinite(opts.marker) && opts.marker >= xlo && opts.marker <= xhi) {
    root.append(svg('line', { x1: x(opts.marker), x2: x(opts.marker), y1: top, y2: y(ylo), class: 'guide marker' }));
    root.append(svg('text', { x: x(opts.marker) + 4, y: top + 10, class: 'tick' }, `this instance: ${fmt(opts.marker)}`));
  }
  const main = series.find((s) => s.cls === 'pdp-avg');
  container.append(root, dataTable(main ? main.xs.map((v, i) => [fmt(v), main.ys[i], undefined]) : [], [opts.xTitle || 'x', opts.yTitle || 'y', ''], opts.caption));
}

/* Feature value t in [0, 1] as shap's colour map: blue (low) through purple to red (high). */
function swarmColour(t) {
  const a = [0, 139, 251], b = [255, 0, 82];
  return `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * t)).join(',')})`;
}

/* SHAP summary (shap.plots.beeswarm): one row per feature (largest mean |SHAP| on top),
 * one dot per explained row at its SHAP value, stacked where dots collide, coloured by
 * the feature's value in that row (blue low, red high; grey for categories).
 * values: [rows][features]; data: [rows][features]; names: [features]. */
function beeswarmChart(container, values, data, names, opts) {
  container.textContent = '';
  const W = Math.max(360, Math.round(container.clientWidth || 760));
  const nf = names.length, k = Math.min(nf, opts.maxFeatures || 12);
  const mean = names.map((_, j) => values.reduce((s, r) => s + Math.abs(r[j]), 0) / values.length);
  const order = names.map((_, j) => j).sort((a, b) => mean[b] - mean[a]).slice(0, k);
  const rowH = 30, top = 8, pad = 8, right = 24;
  const labelW = Math.round(Math.min(W * 0.35, Math.max(W * 0.2, Math.max(...order.map((j) => names[j].length)) * CHAR_W + 8)));
  const maxChars = Math.floor((labelW - 4) / CHAR_W);
  const all = order.flatMap((j) => values.map((r) => r[j]));
  let lo = Math.min(0, ...all), hi = Math.max(0, ...all);
  if (lo === hi) hi = lo + 1;
  const x = (v) => labelW + pad + ((v - lo) / (hi - lo)) * (W - labelW - pad - right);
  const plotH = k * rowH;
  const H = top + plotH + 62;
  const root = chartRoot(W, H, opts.caption || 'SHAP summary', 'bars beeswarm');
  root.append(svg('line', { x1: x(0), x2: x(0), y1: top, y2: top + plotH, class: 'axis zero' }));
  order.forEach((j, i) => {
    const yc = top + i * rowH + rowH / 2;
    const g = svg('g', { class: 'swarm-row', 'data-feature': names[j], 'data-mean-abs': String(mean[j]) });
    labelText(g, { x: labelW, y: yc, class: 'label', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, names[j], maxChars);
    const col = data.map((r) => r[j]);
    const num = col.every((v) => typeof v === 'number');
    const vmin = num ? Math.min(...col) : 0, vmax = num ? Math.max(...col) : 1;
    // Stack dots into 4-px bins so that collisions spread vertically, as a beeswarm.
    const bins = new Map();
    values.forEach((r, n) => {
      const px = x(r[j]), b = Math.round(px / 4);
      const c = bins.get(b) || 0;
      bins.set(b, c + 1);
      const off = (c % 2 ? 1 : -1) * Math.ceil(c / 2) * 3;
      const t = num && vmax > vmin ? (col[n] - vmin) / (vmax - vmin) : 0.5;
      const fill = num ? swarmColour(t) : 'rgb(140,140,140)';
      const dot = svg('circle', { cx: px.toFixed(1), cy: (yc + Math.max(-rowH / 2 + 3, Math.min(rowH / 2 - 3, off))).toFixed(1), r: 2.6,
        class: 'dot', fill, 'data-value': String(r[j]), 'data-x': String(col[n]) });
      dot.append(svg('title', {}, `${names[j]} = ${typeof col[n] === 'number' ? fmt(col[n]) : col[n]}: SHAP ${fmt(r[j])}`));
      g.append(dot);
    });
    root.append(g);
  });
  xAxis(root, x, lo, hi, top + plotH + 2, opts.axisTitle || 'SHAP value (impact on the model output)', W);
  // Colour legend: feature value low → high.
  const lx = W - right - 150, ly = H - 10;
  const grad = svg('linearGradient', { id: 'swarm-grad' });
  grad.append(svg('stop', { offset: '0', 'stop-color': swarmColour(0) }), svg('stop', { offset: '0.5', 'stop-color': swarmColour(0.5) }),
    svg('stop', { offset: '1', 'stop-color': swarmColour(1) }));
  const defs = svg('defs');
  defs.append(grad);
  root.append(defs, svg('rect', { x: lx + 40, y: ly - 8, width: 70, height: 8, fill: 'url(#swarm-grad)' }),
    svg('text', { x: lx + 36, y: ly, class: 'legend', 'text-anchor': 'end' }, 'feature value: low'),
    svg('text', { x: lx + 114, y: ly, class: 'legend' }, 'high'));
  container.append(root, dataTable(order.map((j) => [names[j], mean[j], undefined]), ['feature', 'mean |SHAP|', ''], opts.caption));
}

/* The chart's numbers as a table, folded under it: for screen readers, keyboards and
 * copying. rows: [[label, value, err?]]; heads: [label, value, err] headings. */
function dataTable(rows, heads, caption) {
  const hasErr = rows.some((r) => r[2] !== undefined);
  const head = el('tr', {}, el('th', { scope: 'col', text: heads[0] }), el('th', { scope: 'col', text: heads[1] }),
    hasErr ? el('th', { scope: 'col', text: heads[2] }) : null);
  const table = el('table', {}, el('caption', { class: 'sr-only', text: caption || '' }), el('thead', {}, head));
  const body = el('tbody');
  for (const r of rows)
    body.append(el('tr', {}, el('td', { text: String(r[0]) }), el('td', { class: 'num', text: String(r[1]) }),
      hasErr ? el('td', { class: 'num', text: r[2] !== undefined ? String(r[2]) : '' }) : null));
  table.append(body);
  return el('details', { class: 'data' }, el('summary', { text: 'Show the numbers' }), table);
}

/* ---- export ------------------------------------------------------------------------- */

function csvCell(v) {
  const s = v === undefined || v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function toCsv(header, rows) {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

function download(name, blob) {
  const a = el('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => {
    URL.revokeObjectURL(a.href);
    a.remove();
  }, 1000);
}

/* The chart's SVG as a PNG at 2x: the page's CSS does not reach an SVG drawn as an image,
 * so each element's computed fill, stroke and font are copied inline first. */
async function svgToPng(svgEl, name) {
  const clone = svgEl.cloneNode(true);
  const src = [svgEl, ...svgEl.querySelectorAll('*')], dst = [clone, ...clone.querySelectorAll('*')];
  src.forEach((s, i) => {
    const cs = getComputedStyle(s);
    for (const p of ['fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'opacity', 'font-size', 'font-family', 'font-weight'])
      dst[i].style.setProperty(p, cs.getPropertyValue(p));
  });
  clone.setAttribute('xmlns', SVG_NS);
  const w = Number(svgEl.getAttribute('width')), h = Number(svgEl.getAttribute('height'));
  const bg = getComputedStyle(document.body).backgroundColor || '#fff';
  // A data: URL (the page's Content-Security-Policy allows images from 'self' and data:).
  const url = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(new XMLSerializer().serializeToString(clone))}`;
  const img = new Image();
  await new Promise((ok, bad) => {
    img.onload = ok;
    img.onerror = () => bad(new Error('the chart could not be drawn'));
    img.src = url;
  });
  const c = document.createElement('canvas');
  c.width = w * 2;
  c.height = h * 2;
  const ctx = c.getContext('2d');
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.scale(2, 2);
  ctx.drawImage(img, 0, 0, w, h);
  const blob = await new Promise((ok) => c.toBlob(ok, 'image/png'));
  download(name, blob);
}

/* Export buttons under a chart: PNG (the SVG drawn on a canvas) and CSV (csv() gives
 * [header, rows]). */
function chartTools(container, base, csv) {
  const png = el('button', { type: 'button', class: 'tool', 'data-export': 'png', text: 'PNG' });
  const csvB = el('button', { type: 'button', class: 'tool', 'data-export': 'csv', text: 'CSV' });
  png.addEventListener('click', () => {
    const s = container.querySelector('svg');
    if (s) svgToPng(s, `${base}.png`).catch((e) => console.warn(e.message));
  });
  csvB.addEventListener('click', () => {
    const [header, rows] = csv();
    download(`${base}.csv`, new Blob([toCsv(header, rows)], { type: 'text/csv' }));
  });
  container.append(el('div', { class: 'tools', role: 'group', 'aria-label': 'export the chart' },
    el('span', { class: 'muted', text: 'Export: ' }), png, csvB));
}
