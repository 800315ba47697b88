// text.js — the dashboard's text view (/text.html): pick a text model, type or pick a
// text, choose a method; the tokens (gradients, occlusion) or words (LIME, SHAP) are
// shaded with a diverging map (blue negative, white 0, red positive, scaled by the
// largest |value|), with a legend and each value on hover (title).
'use strict';

const EXAMPLES = [
  'The acting was superb, but the ending felt rather dull and the script was a waste of two hours.',
  'A MASTERPIECE of a film; I enjoyed it. Wonderful music, charming cast, brilliant camera work!',
  'Boring, disappointing sequel with a terrible plot.',
];
const $ = (id) => document.getElementById(id);

function fmt(x) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}

// Diverging colour of v in [-1, 1]: white to rgb(33,102,172) below 0, to rgb(178,24,43) above.
function colour(v) {
  const t = Math.min(1, Math.abs(v));
  const [r, g, b] = v < 0 ? [33, 102, 172] : [178, 24, 43];
  const mix = (c) => Math.round(255 + (c - 255) * t);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

async function api(path, body) {
  const r = await fetch(path, body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(json.error ? `${json.error.message} (${json.error.field || json.error.code})` : `HTTP ${r.status}`);
  return json;
}

// [{text, value}] pieces of the answer, in text order.
function pieces(method, text, a) {
  if (method === 'lime' || method === 'shap') {
    const weight = new Map();
    if (method === 'lime') {
      for (const w of a.explanations[0].labels[0].weights) for (const p of w.positions) weight.set(p, w.weight);
    } else {
      a.words[0].forEach((w, k) => { for (const p of w.positions) weight.set(p, a.shap_values[0][k]); });
    }
    // split the text into \w+ runs and separators, as the server does
    const out = [];
    const chars = Array.from(text);
    let i = 0;
    const isWord = (c) => /[\p{L}\p{Nd}_]/u.test(c);
    while (i < chars.length) {
      let j = i + 1;
      while (j < chars.length && isWord(chars[j]) === isWord(chars[i])) j++;
      const s = chars.slice(i, j).join('');
      out.push({ text: s, value: isWord(chars[i]) ? (weight.get(i) ?? 0) : null });
      i = j;
    }
    return out;
  }
  return a.tokens[0].map((t, k) => ({ text: t, value: a.attributions[0][k] }));
}

function show(method, text, a) {
  const ps = pieces(method, text, a);
  const max = Math.max(1e-300, ...ps.filter((p) => p.value !== null).map((p) => Math.abs(p.value)));
  const box = $('text-tokens');
  box.replaceChildren();
  const byToken = !(method === 'lime' || method === 'shap');
  for (const p of ps) {
    const span = document.createElement('span');
    span.textContent = p.text;
    if (p.value !== null) {
      span.className = 'tok';
      span.style.backgroundColor = colour(p.value / max);
      if (Math.abs(p.value / max) > 0.6) span.style.color = '#fff'; /* dark shades: light text */
      span.title = `${p.text}: ${fmt(p.value)}`;
      span.dataset.value = String(p.value);
    }
    box.append(span);
    if (byToken) box.append(' ');
  }
  $('text-legend-min').textContent = fmt(-max);
  $('text-legend-max').textContent = fmt(max);
  const bar = $('text-legend-bar');
  bar.style.background = `linear-gradient(to right, ${colour(-1)}, #fff, ${colour(1)})`;
  bar.style.display = 'inline-block';
  bar.style.width = '12em';
  bar.style.height = '1em';
  $('text-legend').hidden = false;
}

async function explain(ev) {
  ev.preventDefault();
  const model = $('text-model').value, method = $('text-method').value, text = $('text-input').value;
  $('text-error').hidden = true;
  $('text-summary').textContent = 'explaining…';
  try {
    let a;
    if (method === 'lime') a = await api('/explain/lime', { model, instance: text, num_samples: 2000, seed: 0 });
    else if (method === 'shap') a = await api('/explain/shap', { model, instance: text, seed: 0 });
    else if (method === 'occlusion') a = await api('/explain/occlusion', { model, instance: text, baseline: 'pad' });
    else a = await api('/explain/gradient', { model, instance: text, method });
    const target = method === 'lime' ? a.explanations[0].labels[0].label : a.targets[0];
    $('text-summary').textContent = `${method} for output ${target}` +
      (a.convergence_delta ? `, convergence delta ${fmt(a.convergence_delta[0])}` : '') +
      (a.warnings ? ` — ${a.warnings.join('; ')}` : '');
    show(method, text, a);
  } catch (e) {
    $('text-summary').textContent = '';
    $('text-error').textContent = e.message;
    $('text-error').hidden = false;
  }
}

async function init() {
  const ex = $('text-example');
  EXAMPLES.forEach((t, i) => ex.append(new Option(t.length > 50 ? `${t.slice(0, 50)}…` : t, String(i))));
  ex.addEventListener('change', () => { $('text-input').value = EXAMPLES[Number(ex.value)]; });
  $('text-input').value = EXAMPLES[0];
  $('text-form').addEventListener('submit', explain);
  try {
    const { models } = await api('/models');
    for (const m of models.filter((x) => x.input_kind === 'text')) $('text-model').append(new Option(m.name, m.name));
    if (!$('text-model').options.length) throw new Error('no text model is loaded');
  } catch (e) {
    $('text-error').textContent = e.message;
    $('text-error').hidden = false;
  }
}
init();
