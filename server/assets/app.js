// pedigree dashboard: a thin client of the JSON API (/v1). No framework, no build step.
// The API key lives in sessionStorage and goes out as `Authorization: Bearer`; the server checks
// the key's role on every request, so hiding write controls from viewers is a courtesy only.
'use strict';

const KEY_STORAGE = 'pedigree.key';
const ROLES = { viewer: 0, analyst: 1, admin: 2 };
const MAX_TEXTS_PER_REQUEST = 200; // below the server's default --max-texts (256)
const JOB_UPLOAD_BYTES = 4 * 1024 * 1024; // larger JSONL files go through a batch job

const app = {
  key: sessionStorage.getItem(KEY_STORAGE),
  who: null,
  timers: [],
  blobs: [],
  profiles: null,
};

// ---------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  describe() {
    if (this.status === 403) return `Refused by the server (403 ${this.code}): ${this.message}`;
    if (this.status === 0) return this.message;
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (app.key) headers.Authorization = 'Bearer ' + app.key;
  let resp;
  try {
    resp = await fetch(path, { method: opts.method || 'GET', headers, body: opts.body });
  } catch (e) {
    throw new ApiError(0, 'network', 'The server did not answer: ' + e.message);
  }
  if (!resp.ok) {
    let code = 'error';
    let message = resp.statusText || 'request failed';
    try {
      const j = await resp.json();
      code = j.error.code;
      message = j.error.message;
    } catch (_) { /* not the JSON error shape */ }
    throw new ApiError(resp.status, code, message);
  }
  if (opts.as === 'blob') return resp.blob();
  if (resp.status === 204) return null;
  const ct = resp.headers.get('content-type') || '';
  return ct.includes('json') ? resp.json() : resp.text();
}

function postJson(path, value) {
  return api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });
}

/** Build an element: h('a', {href: '#/x', class: 'c'}, 'text', child, …). Text is never parsed as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'hidden') el.hidden = true;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function canWrite() {
  return app.who && ROLES[app.who.role] >= ROLES.analyst;
}

/** A control that changes something: hidden from viewers (the server refuses them anyway). */
function writeControl(el) {
  el.classList.add('write');
  if (!canWrite()) el.hidden = true;
  return el;
}

function flash(message, kind = 'error') {
  const f = document.getElementById('flash');
  f.textContent = message;
  f.className = kind;
  f.hidden = !message;
}

function fmtP(p) {
  if (p === null || p === undefined || Number.isNaN(p)) return '–';
  if (p === 0) return '0';
  return p < 1e-3 ? p.toExponential(2) : p.toPrecision(3);
}

function fmtNum(x, digits = 3) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function fmtTime(ms) {
  if (!ms) return '–';
  const s = (Date.now() - ms) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

function timeCell(ms) {
  return h('td', { title: ms ? new Date(ms).toISOString() : '' }, fmtTime(ms));
}

function decisionBadge(decision) {
  const d = decision || 'no verdict';
  return h('span', { class: 'badge decision-' + d.replace(/\s+/g, '-') }, d);
}

function progressBar(fraction, label) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  const bar = h('div', { class: 'bar' });
  bar.style.width = `${pct.toFixed(1)}%`; // CSSOM, not a style attribute: the CSP forbids inline styles
  return h('div', { class: 'progress', role: 'progressbar', 'aria-valuenow': pct.toFixed(0), 'aria-valuemin': 0, 'aria-valuemax': 100 },
    bar, h('span', {}, label || `${pct.toFixed(0)}%`));
}

/** Fetch an authenticated SVG and show it as an <img> (blob: URL; scripts in it never run). */
async function loadPlot(img, path) {
  img.classList.add('loading');
  try {
    const blob = await api(path, { as: 'blob' });
    const url = URL.createObjectURL(blob);
    app.blobs.push(url);
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error('the plot is not a valid image'));
      img.src = url;
    });
    img.classList.remove('loading');
    img.dataset.loaded = 'true';
  } catch (e) {
    img.classList.remove('loading');
    img.replaceWith(h('p', { class: 'plot-error muted' }, 'Plot unavailable: ' + (e.describe ? e.describe() : e.message)));
  }
}

/** A polling timer that stops when the page changes. */
function every(ms, fn) {
  const t = setInterval(fn, ms);
  app.timers.push(t);
  return t;
}

async function profiles() {
  if (!app.profiles) app.profiles = await api('/v1/profiles');
  return app.profiles;
}

// ---------------------------------------------------------------- highlighting

/**
 * The text with its evidence spans marked. Spans are character offsets counted in Unicode
 * scalar values (the detector's convention); JavaScript strings index UTF-16 code units, so the
 * text is split into code points first.
 */
function highlighted(text, score) {
  const chars = Array.from(text);
  const marks = [];
  for (const e of (score && score.evidence) || []) {
    if (!e.span) continue;
    const cls = e.kind === 'identity' ? 'claim' : (e.weight >= 0 ? 'up' : 'down');
    marks.push({ start: e.span[0], end: e.span[1], cls, title: `${e.kind}: ${e.label} (${e.weight >= 0 ? '+' : ''}${fmtNum(e.weight)})` });
  }
  for (const c of (score && score.claims) || []) {
    // A cue (generic disclaimer, cutoff) names no family: it is not labelled as a claim.
    const what = c.class === 'cue' ? `identity cue (${c.kind}; not a claim)` : `identity claim (${c.kind}, ${c.family})`;
    marks.push({ start: c.span[0], end: c.span[1], cls: 'claim', title: `${what}: ${c.text}` });
  }
  const rank = { claim: 3, up: 2, down: 1 };
  const bounds = new Set([0, chars.length]);
  for (const m of marks) {
    m.start = Math.max(0, Math.min(chars.length, m.start));
    m.end = Math.max(m.start, Math.min(chars.length, m.end));
    bounds.add(m.start);
    bounds.add(m.end);
  }
  const cuts = [...bounds].sort((a, b) => a - b);
  const out = h('div', { class: 'sample-text' });
  let prev = null; // [best mark, <mark> element, titles]: adjacent pieces of one highlight stay one element
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [a, b] = [cuts[i], cuts[i + 1]];
    const seg = chars.slice(a, b).join('');
    const cover = marks.filter((m) => m.start <= a && m.end >= b && m.start < m.end);
    if (!cover.length) {
      out.append(seg);
      prev = null;
      continue;
    }
    const best = cover.reduce((x, y) => (rank[y.cls] > rank[x.cls] ? y : x));
    if (prev && prev[0] === best) {
      prev[1].append(seg);
      cover.forEach((m) => prev[2].add(m.title));
    } else {
      prev = [best, h('mark', { class: best.cls }, seg), new Set(cover.map((m) => m.title))];
      out.append(prev[1]);
    }
    prev[1].title = [...prev[2]].join('\n');
  }
  return out;
}

// ---------------------------------------------------------------- sign-in

function renderSignIn(main, message) {
  const input = h('input', { id: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'pdg_…', required: true });
  const err = h('p', { id: 'signin-error', class: 'error-text' }, message || '');
  const form = h('form', { id: 'signin', class: 'card signin' },
    h('h1', {}, 'Sign in to pedigree'),
    h('p', { class: 'muted' }, 'Paste an API key. Keys are created with ', h('code', {}, 'pedigree keys create --role viewer|analyst|admin'),
      ' or by an admin through ', h('code', {}, 'POST /v1/keys'), '. The key is kept in this tab only (sessionStorage).'),
    h('label', { for: 'key' }, 'API key'),
    input,
    h('button', { id: 'signin-submit', type: 'submit', class: 'primary' }, 'Sign in'),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    app.key = input.value.trim();
    try {
      app.who = await api('/v1/whoami');
      sessionStorage.setItem(KEY_STORAGE, app.key);
      showIdentity();
      if (!location.hash || location.hash === '#/signin') location.hash = '#/suspects';
      else route();
    } catch (e) {
      app.key = null;
      app.who = null;
      err.textContent = e.status === 401 ? 'This key is unknown or revoked.' : e.describe();
    }
  });
  main.append(form);
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  app.key = null;
  app.who = null;
  app.profiles = null;
  showIdentity();
  history.replaceState(null, '', '#/signin');
  route(message);
}

function showIdentity() {
  const signedIn = !!app.who;
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  if (signedIn) {
    document.getElementById('who-name').textContent = app.who.name;
    const role = document.getElementById('who-role');
    role.textContent = app.who.role;
    role.className = 'badge role-' + app.who.role;
  }
}

// ---------------------------------------------------------------- suspects list

async function renderSuspects(main) {
  const [list, prof] = await Promise.all([api('/v1/suspects?order=strength&limit=500'), profiles()]);
  const rows = list.suspects.map((s, i) => {
    const v = s.verdict || {};
    const stale = s.verdict && s.verdict_n !== s.samples;
    return h('tr', { 'data-suspect': s.id },
      h('td', { class: 'num' }, i + 1),
      h('td', {}, h('a', { href: `#/suspects/${encodeURIComponent(s.id)}` }, s.name), s.description ? h('div', { class: 'muted small' }, s.description) : null),
      // Identity evidence first: explicit claims by family, never replaced by a style label.
      h('td', { class: 'identity-cell' }, explicitClaimsText(v.identity)),
      h('td', {}, decisionBadge(v.decision)),
      h('td', { class: 'num' }, fmtP(v.p_value)),
      h('td', { class: 'num' }, s.strength === null || s.strength === undefined ? '–' : fmtNum(s.strength, 2)),
      h('td', { class: 'num' }, s.samples, stale ? h('span', { class: 'muted small', title: 'the verdict covers fewer samples; open the suspect to refresh it' }, ` (verdict: ${s.verdict_n})`) : null),
      h('td', {}, v.teacher || '–'),
      h('td', {}, s.profile),
      timeCell(s.updated_ms));
  });
  const table = list.suspects.length
    ? h('table', { id: 'suspects', class: 'data' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Suspect'), h('th', { title: 'explicit self-identification by family (e.g. "developed by OpenAI"); generic disclaimers are not counted' }, 'Identity claims'),
        h('th', { title: 'style is triage and never decides; the served-output membership test does' }, 'Style verdict'), h('th', {}, 'Style p-value'),
        h('th', { title: '−log10 p of the style test: a ranking, not a decision' }, 'Strength'), h('th', {}, 'Samples'), h('th', { title: 'the family whose style is nearest: a style label, not an identity' }, 'Style-nearest family'), h('th', {}, 'Profile'), h('th', {}, 'Last update'))),
      h('tbody', {}, rows))
    : h('p', { id: 'no-suspects', class: 'empty' }, 'No suspects yet.', canWrite() ? ' Create one below and add samples of its responses.' : '');

  const name = h('input', { id: 'suspect-name', required: true, maxlength: 200, placeholder: 'e.g. rival-chat-7b' });
  const desc = h('input', { id: 'suspect-description', maxlength: 10000, placeholder: 'optional' });
  const sel = h('select', { id: 'suspect-profile' }, prof.profiles.map((p) => h('option', { value: p.name, selected: p.name === prof.default }, p.name + (p.builtin ? ' (built-in)' : ''))));
  const form = writeControl(h('form', { id: 'new-suspect', class: 'card inline-form' },
    h('h2', {}, 'New suspect'),
    h('label', {}, 'Name', name), h('label', {}, 'Description', desc), h('label', {}, 'Profile', sel),
    h('button', { type: 'submit', class: 'primary', id: 'suspect-create' }, 'Create')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const s = await postJson('/v1/suspects', { name: name.value, description: desc.value, profile: sel.value || null });
      location.hash = `#/suspects/${encodeURIComponent(s.id)}`;
    } catch (e) {
      flash(e.describe());
    }
  });
  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Suspects'), h('p', { class: 'muted' }, 'Ranked by style strength (−log10 p against known independent models): triage for follow-up, not a decision. Identity claims are shown first; decisions come from the served-output membership test.')),
    h('div', { class: 'card' }, table),
    form);
}

// ---------------------------------------------------------------- one suspect

function parsePasted(text) {
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  const looksJsonl = lines.length > 0 && lines.every((l) => l.trim().startsWith('{'));
  if (looksJsonl) {
    return lines.map((l, i) => {
      let v;
      try { v = JSON.parse(l); } catch (e) { throw new Error(`line ${i + 1} is not JSON: ${e.message}`); }
      if (typeof v.text !== 'string') throw new Error(`line ${i + 1} has no string "text"`);
      return { text: v.text, prompt: typeof v.prompt === 'string' ? v.prompt : undefined };
    });
  }
  return text.split(/^\s*---\s*$/m).map((t) => t.trim()).filter((t) => t).map((t) => ({ text: t }));
}

function parseFileText(name, text) {
  if (/\.json$/i.test(name)) {
    const v = JSON.parse(text);
    const arr = Array.isArray(v) ? v : v.samples;
    if (!Array.isArray(arr)) throw new Error('expected a JSON array of samples or {"samples": [...]}');
    return arr.map((s) => (typeof s === 'string' ? { text: s } : { text: s.text, prompt: s.prompt }));
  }
  return parsePasted(text);
}

async function sendSamples(id, samples, source) {
  let added = 0;
  let duplicates = 0;
  for (let i = 0; i < samples.length; i += MAX_TEXTS_PER_REQUEST) {
    const r = await postJson(`/v1/suspects/${encodeURIComponent(id)}/samples`, { samples: samples.slice(i, i + MAX_TEXTS_PER_REQUEST), source });
    added += r.added;
    duplicates += r.duplicates;
  }
  return { added, duplicates };
}

function addSamplesCard(s, reload) {
  const result = h('p', { id: 'samples-result', class: 'result', 'aria-live': 'polite' });
  const show = (msg, ok) => { result.textContent = msg; result.className = 'result ' + (ok ? 'ok' : 'error-text'); };
  const area = h('textarea', { id: 'samples-text', rows: 6, placeholder: 'Paste one response, or several separated by a line with only ---, or JSONL lines {"text": …, "prompt": …}' });
  const paste = h('form', { id: 'add-samples' },
    h('label', { for: 'samples-text' }, 'Paste responses'), area,
    h('button', { id: 'samples-submit', type: 'submit', class: 'primary' }, 'Add samples'));
  paste.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let samples;
    try { samples = parsePasted(area.value); } catch (e) { show('Not sent: ' + e.message, false); return; }
    if (!samples.length) { show('Nothing to add: paste at least one response.', false); return; }
    show(`Scoring ${samples.length} sample(s)…`, true);
    try {
      const r = await sendSamples(s.id, samples, 'dashboard:paste');
      area.value = '';
      show(`Added ${r.added} sample(s), ${r.duplicates} duplicate(s).`, true);
      await reload();
    } catch (e) {
      show(e.describe ? e.describe() : e.message, false);
    }
  });
  const file = h('input', { id: 'samples-file', type: 'file', accept: '.jsonl,.ndjson,.json,.txt,text/plain,application/json' });
  const upload = h('form', { id: 'upload-samples' },
    h('label', { for: 'samples-file' }, 'Or upload a file (JSONL, JSON array, or text with --- separators)'), file,
    h('button', { id: 'samples-upload', type: 'submit' }, 'Upload'));
  upload.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = file.files[0];
    if (!f) { show('Choose a file first.', false); return; }
    try {
      if (/\.(jsonl|ndjson)$/i.test(f.name) && f.size > JOB_UPLOAD_BYTES) {
        const fd = new FormData();
        fd.append('file', f, f.name);
        const r = await api(`/v1/jobs?suspect=${encodeURIComponent(s.id)}`, { method: 'POST', body: fd });
        result.replaceChildren(`Large file: scoring as job ${r.job.id} — follow it on the `, h('a', { href: '#/jobs' }, 'Jobs page'), '.');
        result.className = 'result ok';
        return;
      }
      const samples = parseFileText(f.name, await f.text());
      if (!samples.length) { show('The file holds no samples.', false); return; }
      show(`Scoring ${samples.length} sample(s) from ${f.name}…`, true);
      const r = await sendSamples(s.id, samples, `dashboard:file:${f.name}`);
      show(`Added ${r.added} sample(s) from ${f.name}, ${r.duplicates} duplicate(s).`, true);
      await reload();
    } catch (e) {
      show(e.describe ? e.describe() : 'Not sent: ' + e.message, false);
    }
  });
  return writeControl(h('section', { class: 'card', id: 'add-samples-card' }, h('h2', {}, 'Add samples'), paste, upload, result));
}

/** "openai 12 · anthropic 1" from an identity evidence object, or "–". */
function explicitClaimsText(identity) {
  const c = (identity && identity.explicit_claims) || {};
  const parts = Object.entries(c).sort((a, b) => b[1] - a[1]).map(([f, n]) => `${f} ${n}`);
  return parts.length ? parts.join(' · ') : '–';
}

/**
 * Identity evidence, shown before any style figure: explicit self-identification by family over
 * the suspect's samples, with examples; generic disclaimers and cutoffs only as cues.
 */
function identityCard(v) {
  const card = (...body) => h('section', { class: 'card', id: 'identity' }, h('h2', {}, 'Identity evidence'), ...body);
  const e = v && v.identity;
  if (!e) return card(h('p', { class: 'empty', id: 'identity-empty' }, 'Appears once the suspect has samples.'));
  const cues = Object.entries(e.cues || {}).map(([k, n]) => `${k} ${n}`).join(' · ');
  const rate = e.explicit_rate === null || e.explicit_rate === undefined ? '–' : `${e.answers_with_explicit_claim} of ${e.answers} ${e.scope} (${(e.explicit_rate * 100).toFixed(0)}%)`;
  const stat = (label, value, id, title) => h('div', { class: 'stat', title: title || '' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, value));
  return card(
    h('div', { class: 'stats' },
      stat('Explicit claims by family', explicitClaimsText(e), 'identity-explicit', '"I am ChatGPT", "developed by OpenAI", "我是由OpenAI开发的"'),
      stat('With an explicit claim', rate, 'identity-rate'),
      stat('Style cues (not claims)', cues || '–', 'identity-cues', 'generic "As an AI language model" disclaimers and knowledge cutoffs name no family')),
    h('p', { id: 'identity-summary' }, e.summary || ''),
    (e.examples || []).length ? h('ul', { class: 'claims', id: 'identity-examples' }, e.examples.map((x) => h('li', {},
      h('span', { class: 'badge claim' }, `${x.kind} → ${x.family}`), ' ', h('q', {}, x.text),
      x.prompt ? h('span', { class: 'muted small' }, ' — prompt: ', x.prompt) : null))) : null,
    // The summary says it already when there are claims; say it once.
    (e.summary || '').includes('not a decision') ? null : h('p', { class: 'muted small' }, 'Claims are strong evidence to report, but not a decision: models trained on web text sometimes claim to be ChatGPT.'),
    h('p', { class: 'muted small' }, 'No style figure overrides the identity evidence.'));
}

function verdictCard(s, v) {
  if (!v) {
    return h('section', { class: 'card', id: 'verdict' }, h('h2', {}, 'Style triage'),
      h('p', { class: 'empty' }, decisionBadge(null), ' No samples yet: add responses of this model to rank it against known independent models.'));
  }
  const stat = (label, value, id, title) => h('div', { class: 'stat', title: title || '' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, value));
  const t = v.triage || {};
  const known = t.reference_models !== undefined;
  return h('section', { class: 'card', id: 'verdict' },
    h('h2', {}, 'Style triage'),
    h('p', { id: 'verdict-triage' }, t.summary || 'Style evidence ranks suspects but cannot decide distillation — the decision needs the served-output membership test.'),
    h('div', { class: 'stats' },
      stat('Decision', decisionBadge(v.decision), 'verdict-decision', 'style evidence never decides; the served-output membership test does'),
      stat('Rank', known ? `${t.rank} of ${t.reference_models + 1}` : '–', 'verdict-rank', 'among the known independent reference models and this suspect; 1 = most upstream-like'),
      stat('Percentile', known ? `${Math.round(t.percentile * 100)}%` : '–', 'verdict-percentile', `of ${t.reference_models} reference models (${t.reference_families} families) less upstream-like than this suspect`),
      stat('Smallest supported p', known ? fmtP(t.min_p_value) : '–', 'verdict-min-p', '1/(K+1) for K reference models: below it a p-value rests on the assumed shape of the null, not on data'),
      stat('p-value', fmtP(v.p_value), 'verdict-p', 'one-sided, against the random-effects null of independent models: a ranking number'),
      stat('α', String(v.alpha), 'verdict-alpha'),
      stat('Samples N', String(v.n), 'verdict-n'),
      stat('Mean score', fmtNum(v.statistic), 'verdict-stat'),
      stat('Effect size', fmtNum(v.effect_size, 2), 'verdict-effect', (v.prompt_aligned ? 'prompt-aligned; ' : '') + '(statistic − null mean) / s.d. of an independent model\'s mean over n responses'),
      stat('Style-nearest family', v.teacher || '–', 'verdict-teacher', 'a style label: it never overrides the identity evidence')),
    h('div', { class: 'families' }, (v.families || []).slice(0, 6).map((f) =>
      h('div', { class: 'family-row' }, h('span', { class: 'family-name' }, f.family), progressBar(f.prob, (f.prob * 100).toFixed(1) + '%')))),
    errorCheckLine(v));
}

// The decision rule's measured error rates (the profile's calibration models, each left out):
// what an analyst quotes beside the decision.
function errorCheckLine(v) {
  const c = v.error_check;
  if (!c) return null;
  return h('p', { class: 'muted', id: 'verdict-error-check' },
    `Error check at α = ${v.alpha}, on the profile's own models each left out: flags ${c.independents_flagged} of ${c.independents} known independent models (false alarms) and ${c.upstream_flagged} of ${c.upstream_models} upstream models (power).`);
}

function evidenceCard(v) {
  const items = (v && v.top_evidence) || [];
  const list = items.map((t, i) => {
    const sc = t.score;
    const features = (sc.evidence || []).filter((e) => !e.span).slice(0, 6);
    return h('article', { class: 'evidence', 'data-sample': t.sample_id },
      h('div', { class: 'evidence-head' },
        h('strong', {}, `#${i + 1}`),
        h('span', {}, `score ${fmtNum(sc.score)}`),
        h('span', {}, `FPR ${fmtP(sc.fpr)}`),
        h('span', {}, `family ${sc.family}`),
        h('span', { class: 'muted' }, t.source)),
      t.prompt ? h('div', { class: 'prompt muted' }, 'Prompt: ', t.prompt) : null,
      highlighted(t.text, sc),
      (sc.claims || []).length ? h('ul', { class: 'claims' }, sc.claims.map((c) => h('li', {}, h('span', { class: 'badge claim' }, c.class === 'cue' ? `cue: ${c.kind}` : `${c.kind} → ${c.family}`), ' ', c.text))) : null,
      features.length ? h('div', { class: 'chips' }, features.map((e) => h('span', { class: 'chip ' + (e.weight >= 0 ? 'up' : 'down') }, `${e.label} ${e.weight >= 0 ? '+' : ''}${fmtNum(e.weight, 2)}`))) : null);
  });
  return h('section', { class: 'card', id: 'evidence' },
    h('h2', {}, 'Most upstream-like samples'),
    h('p', { class: 'muted small' }, 'Highlights: ', h('mark', { class: 'up' }, 'towards the upstream'), ' ', h('mark', { class: 'down' }, 'away from it'), ' ', h('mark', { class: 'claim' }, 'identity claim'), '. Hover a highlight for its weight.'),
    list.length ? list : h('p', { class: 'empty' }, 'No samples yet.'));
}

function samplesCard(samples, total) {
  return h('section', { class: 'card', id: 'samples' },
    h('h2', {}, samples.length < total ? `Samples (first ${samples.length} of ${total})` : `Samples (${total})`),
    samples.length ? h('table', { class: 'data compact' },
      h('thead', {}, h('tr', {}, h('th', {}, 'id'), h('th', {}, 'Text'), h('th', {}, 'Score'), h('th', {}, 'FPR'), h('th', {}, 'Family'), h('th', {}, 'Source'), h('th', {}, 'Added'))),
      h('tbody', {}, samples.map((x) => {
        const sc = x.score || {};
        const preview = x.text.length > 140 ? x.text.slice(0, 140) + '…' : x.text;
        return h('tr', {}, h('td', { class: 'num' }, x.id), h('td', { title: x.text.slice(0, 2000) }, preview), h('td', { class: 'num' }, fmtNum(sc.score)),
          h('td', { class: 'num' }, fmtP(sc.fpr)), h('td', {}, sc.family || '–'), h('td', {}, x.source), timeCell(x.added_ms));
      }))) : h('p', { class: 'empty' }, 'No samples yet.'));
}

/** One probe campaign (GET /v1/campaigns): target, state, probes done of the planned number, look. */
function campaignRow(c) {
  const spec = c.spec || {};
  const ep = spec.endpoint || {};
  const p = c.probes || {};
  const budget = spec.budget && spec.budget.max_requests;
  const planned = Math.min(p.total || 0, budget || Infinity);
  const finished = (p.answered || 0) + (p.failed || 0);
  let host = ep.base_url || '';
  try { host = new URL(ep.base_url).host; } catch (_) { /* keep as is */ }
  const state = c.state || '–';
  return h('tr', { 'data-campaign': c.id, 'data-state': state },
    h('td', {}, h('div', {}, ep.model || c.id), h('div', { class: 'muted small' }, `${host} · ${spec.probes || 'probes'}`)),
    h('td', {}, h('span', { class: 'badge state-' + state }, state), c.error ? h('div', { class: 'error-text small' }, c.error) : null),
    h('td', { class: 'campaign-progress' }, planned ? progressBar(finished / planned, `${finished} / ${planned}`) : '–',
      h('div', { class: 'muted small' }, `answered ${p.answered || 0} · failed ${p.failed || 0} · in flight ${p.in_flight || 0}`)),
    h('td', { class: 'num' }, fmtP(c.p_value)),
    h('td', {}, c.decision ? decisionBadge(c.decision) : '–', c.teacher ? h('div', { class: 'muted small' }, 'style-nearest ' + c.teacher) : null),
    h('td', {}, c.stop_reason || '–'),
    timeCell(c.updated_ms));
}

function campaignsCard(s, onProgress) {
  const body = h('div', { id: 'campaigns-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const card = h('section', { class: 'card', id: 'campaigns' }, h('h2', {}, 'Probe campaigns'),
    h('p', { class: 'muted small' }, 'Campaigns send probe prompts to the suspect\'s endpoint and add the answers as samples (start one with ', h('code', {}, 'pedigree probe'), ' or ', h('code', {}, 'POST /v1/campaigns'), '). Running campaigns refresh every 2 s.'),
    body);
  let timer = null;
  let lastAnswered = null;
  let wasRunning = false;
  const load = async () => {
    let list;
    try {
      list = (await api('/v1/campaigns?limit=1000')).campaigns || [];
    } catch (e) {
      if (e.status === 404 || e.status === 405 || e.status === 501) {
        body.replaceChildren(h('p', { class: 'muted', id: 'campaigns-unavailable' }, 'Probe campaigns are not available on this server.'));
      } else {
        body.replaceChildren(h('p', { class: 'error-text' }, e.describe()));
      }
      return;
    }
    list = list.filter((c) => c.suspect_id === s.id);
    if (!list.length) {
      body.replaceChildren(h('p', { class: 'empty' }, 'No probe campaigns for this suspect.'));
    } else {
      body.replaceChildren(h('table', { class: 'data compact', id: 'campaigns-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Target'), h('th', {}, 'State'), h('th', {}, 'Probes'), h('th', {}, 'p-value'), h('th', {}, 'Decision'), h('th', {}, 'Stop reason'), h('th', {}, 'Updated'))),
        h('tbody', {}, list.map(campaignRow))));
    }
    const running = list.some((c) => c.state === 'queued' || c.state === 'running');
    const answered = list.reduce((n, c) => n + ((c.probes && c.probes.answered) || 0), 0);
    if (running && !timer) {
      timer = every(2000, load);
    } else if (!running && timer) {
      clearInterval(timer);
      timer = null;
    }
    // New answers are new samples: let the page refresh its verdict when a campaign finishes.
    const finished = wasRunning && !running;
    if (onProgress && !running && (finished || (lastAnswered !== null && answered !== lastAnswered))) onProgress();
    lastAnswered = answered;
    wasRunning = running;
  };
  load();
  return card;
}

// ---------------------------------------------------------------- membership

/** `text` with the char spans `[start, end)` (Unicode scalar values, as the API counts) marked. */
function markedSpans(text, spans, cls) {
  const chars = Array.from(text || '');
  const sorted = spans.map((s) => [Math.max(0, s[0]), Math.min(chars.length, s[1])]).filter((s) => s[1] > s[0]).sort((a, b) => a[0] - b[0]);
  const merged = [];
  for (const s of sorted) {
    const last = merged[merged.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else merged.push([s[0], s[1]]);
  }
  const out = [];
  let at = 0;
  for (const [a, b] of merged) {
    if (a > at) out.push(chars.slice(at, a).join(''));
    out.push(h('mark', { class: cls }, chars.slice(a, b).join('')));
    at = b;
  }
  if (at < chars.length) out.push(chars.slice(at).join(''));
  return h('div', { class: 'sample-text' }, out);
}

/** The latest served-output membership result: the decision an exact test supports. */
function membershipCard(m, base) {
  if (!m) {
    return h('section', { class: 'card', id: 'membership' }, h('h2', {}, 'Served-output membership test'),
      h('p', { class: 'empty', id: 'membership-empty' }, 'Not run yet. Upload the answers served to the suspect\'s account and fresh answers of the same snapshot (',
        h('code', {}, 'POST /v1/served-logs'), '), then run ', h('code', {}, 'POST /v1/suspects/{id}/membership'), ' or a served-log campaign. This is the test that decides; the style evidence below is triage.'));
  }
  const r = m.report || {};
  const stat = (label, value, id, title) => h('div', { class: 'stat', title: title || '' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, value));
  const img = h('img', { id: 'plot-membership', class: 'plot', alt: 'Membership p-value against the number of prompts compared' });
  loadPlot(img, `${base}/plots/membership.svg`);
  const texts = r.evidence_texts || [];
  const prompts = (r.evidence || []).map((e, i) => {
    const t = texts[i] || {};
    const segs = e.segments || [];
    return h('article', { class: 'evidence membership-evidence', 'data-prompt-index': i },
      h('div', { class: 'evidence-head' }, h('strong', {}, `#${i + 1}`),
        h('span', {}, `evidence ${fmtNum(e.evidence, 1)}`),
        h('span', {}, `served-specific n-grams reused ${e.served_specific[0]} / ${e.served_specific[1]}`),
        h('span', {}, `fresh-specific ${e.fresh_specific[0]} / ${e.fresh_specific[1]}`)),
      h('div', { class: 'prompt muted' }, 'Prompt: ', e.prompt),
      h('div', { class: 'side-by-side' },
        h('div', {}, h('div', { class: 'label' }, 'Suspect\'s answer'), markedSpans(t.suspect, segs.map((s) => s.suspect), 'shared')),
        h('div', {}, h('div', { class: 'label' }, 'Answer served to the account'), markedSpans(t.served, segs.map((s) => s.served), 'shared'))));
  });
  const controls = (r.controls || []).map((c) => `${c.name}: p ${fmtP(c.p_value)} on ${c.prompts} prompts`).join(' · ');
  return h('section', { class: 'card', id: 'membership' },
    h('h2', {}, 'Served-output membership test'),
    h('div', { class: 'grid-2' }, h('div', {}, h('div', { class: 'stats' },
      stat('Decision', decisionBadge(m.decision), 'membership-decision', 'trained_on_served: p ≤ α and the exchangeability checks passed; not_detected is never a finding of independence'),
      stat('p-value', fmtP(m.p_value), 'membership-p', `${r.p_method || ''}; smallest reportable ${fmtP(r.p_resolution)}`),
      stat('α', String(r.alpha), 'membership-alpha'),
      stat('Prompts compared', String(m.prompts), 'membership-prompts', `${r.informative_prompts} carry evidence`),
      stat('Effect', fmtNum(r.effect, 3), 'membership-effect', `served-specific reuse ${fmtNum(r.served_reuse)} − fresh-specific reuse ${fmtNum(r.fresh_reuse)}`),
      stat('Guard p', fmtP(r.guard && r.guard.p_value), 'membership-guard', 'exchangeability of served and fresh answers (paired two-sample test)')),
    h('p', { id: 'membership-reason' }, r.reason || ''),
    controls ? h('p', { class: 'muted small', id: 'membership-controls' }, 'Negative controls: ', controls) : null,
    h('p', { class: 'muted small' }, `Served log ${m.served_log}${m.account ? ' · account ' + m.account : ''}${m.campaign_id ? ' · campaign ' + m.campaign_id : ''} · ${fmtTime(m.created_ms)}. The null assumes: ${r.null_assumes || ''}`)),
    img),
    h('h3', {}, 'Prompts that weigh most'),
    h('p', { class: 'muted small' }, h('mark', { class: 'shared' }, 'Shared with the served answer'), ' and with no fresh answer.'),
    prompts.length ? prompts : h('p', { class: 'empty' }, 'No prompt carries evidence.'));
}

async function renderSuspect(main, id) {
  const base = `/v1/suspects/${encodeURIComponent(id)}`;
  const s = await api(base);
  const container = h('div', { id: 'suspect', 'data-id': s.id });
  main.append(container);
  // Built once, kept across reloads: the pasted text and last result; the campaigns' polling.
  let addCard = null;
  let campaigns = null;
  const reload = async () => {
    const [fresh, samples, mem] = await Promise.all([api(base), api(`${base}/samples?limit=50`), api(`${base}/membership?limit=1`)]);
    const latest = (mem.results || [])[0] || null;
    let v = null;
    if (fresh.samples > 0) v = await api(`${base}/verdict?top=5`);
    const scoresImg = h('img', { id: 'plot-scores', class: 'plot', alt: 'Score distribution of this suspect against the independent-model null' });
    const growthImg = h('img', { id: 'plot-growth', class: 'plot', alt: 'p-value as the number of samples grows' });
    const del = writeControl(h('button', { type: 'button', class: 'danger', id: 'suspect-delete' }, 'Delete suspect'));
    del.addEventListener('click', async () => {
      if (!confirm(`Delete suspect “${fresh.name}” and its ${fresh.samples} samples?`)) return;
      try {
        await api(base, { method: 'DELETE' });
        location.hash = '#/suspects';
      } catch (e) { flash(e.describe()); }
    });
    container.replaceChildren(
      h('div', { class: 'page-head' },
        h('p', { class: 'crumbs' }, h('a', { href: '#/suspects' }, 'Suspects'), ' / '),
        // The exact test's decision when there is one; else the style triage's (undecided).
        h('h1', { id: 'suspect-name-title' }, fresh.name, ' ', decisionBadge(latest ? latest.decision : v && v.decision)),
        h('p', { class: 'muted' }, fresh.description || '', fresh.description ? ' · ' : '', `profile ${fresh.profile} · ${fresh.samples} samples · updated ${fmtTime(fresh.updated_ms)}`),
        del),
      identityCard(v),
      membershipCard(latest, base),
      h('div', { class: 'grid-2' },
        verdictCard(fresh, v),
        h('section', { class: 'card' }, h('h2', {}, 'Scores vs independent models'), scoresImg)),
      h('div', { class: 'grid-2' },
        h('section', { class: 'card' }, h('h2', {}, 'Evidence growing with N'),
          v ? growthImg : h('p', { class: 'empty', id: 'growth-empty' }, 'Appears once the suspect has samples.')),
        addCard || (addCard = addSamplesCard(fresh, reload))),
      evidenceCard(v),
      campaigns || (campaigns = campaignsCard(fresh, () => reload().catch((e) => flash(e.describe ? e.describe() : String(e))))),
      samplesCard(samples.samples, fresh.samples));
    loadPlot(scoresImg, `${base}/plots/scores.svg`);
    if (v) loadPlot(growthImg, `${base}/plots/growth.svg`);
  };
  await reload();
}

// ---------------------------------------------------------------- profiles

function summary(value, depth = 0) {
  if (value === null || value === undefined) return '–';
  if (Array.isArray(value)) {
    if (value.every((x) => typeof x !== 'object' || x === null)) return value.join(', ');
    return h('ul', { class: 'kv-list' }, value.slice(0, 20).map((x) => h('li', {}, summary(x, depth + 1))));
  }
  if (typeof value === 'object') {
    if (depth >= 2) return JSON.stringify(value).slice(0, 200);
    return h('dl', { class: 'kv' }, Object.entries(value).map(([k, v]) => [h('dt', {}, k), h('dd', {}, summary(v, depth + 1))]));
  }
  return typeof value === 'number' && !Number.isInteger(value) ? value.toPrecision(4) : String(value);
}

async function renderProfiles(main) {
  const list = await profiles();
  app.profiles = null; // refresh next time
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Profiles'),
    h('p', { class: 'muted' }, 'What each profile detects, what it was trained on, and how well it separates unseen upstream models from unseen independent ones.')));
  for (const p of list.profiles) {
    const meta = p.meta || {};
    const img = h('img', { class: 'plot roc', alt: `Calibration ROC of ${p.name}`, 'data-profile': p.name });
    main.append(h('section', { class: 'card profile', 'data-profile': p.name },
      h('h2', {}, p.name, ' ', p.builtin ? h('span', { class: 'badge' }, 'built-in') : null, p.name === list.default ? h('span', { class: 'badge' }, 'default') : null),
      h('div', { class: 'grid-2' },
        h('div', {},
          h('dl', { class: 'kv' },
            h('dt', {}, 'Upstream'), h('dd', {}, p.upstream),
            h('dt', {}, 'Families'), h('dd', {}, h('div', { class: 'chips' }, (meta.families || []).map((f) => h('span', { class: 'chip' + (f === p.upstream ? ' up' : '') }, f)))),
            h('dt', {}, 'Features'), h('dd', {}, (meta.features || []).join(', ') || '–'),
            h('dt', {}, 'Created'), h('dd', {}, meta.created || fmtTime(p.created_ms)),
            h('dt', {}, 'Format'), h('dd', {}, String(meta.format_version ?? '–'))),
          h('h3', {}, 'Training summary'), summary(meta.training),
          h('details', {}, h('summary', {}, 'Calibration summary'), summary(meta.calibration))),
        h('div', {}, img))));
    loadPlot(img, `/v1/profiles/${encodeURIComponent(p.name)}/plots/roc.svg`);
  }
}

// ---------------------------------------------------------------- jobs

async function downloadResults(job) {
  try {
    const blob = await api(`/v1/jobs/${encodeURIComponent(job.id)}/results`, { as: 'blob' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: `${job.id}.jsonl` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) { flash(e.describe()); }
}

async function renderJobs(main) {
  const detail = h('section', { class: 'card', id: 'job-detail', hidden: true });
  const holder = h('div', { class: 'card' });
  main.append(h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'), h('p', { class: 'muted' }, 'Batch scoring, corpus audits and profile builds, newest first. Running jobs refresh every 2 s.')), holder, detail);
  const showDetail = async (job) => {
    try {
      const j = await api(`/v1/jobs/${encodeURIComponent(job.id)}`);
      detail.hidden = false;
      detail.replaceChildren(h('h2', {}, `Job ${j.id}`),
        h('div', { class: 'grid-2' },
          h('div', {}, h('h3', {}, 'Parameters'), summary(j.params)),
          h('div', {}, h('h3', {}, 'Result'), j.result ? summary(j.result) : h('p', { class: 'muted' }, j.state === 'done' ? 'Per-line results: use Download.' : 'Not finished.'))));
    } catch (e) { flash(e.describe()); }
  };
  let timer = null;
  const load = async () => {
    const { jobs } = await api('/v1/jobs?limit=200');
    if (!jobs.length) {
      holder.replaceChildren(h('p', { class: 'empty', id: 'no-jobs' }, 'No jobs yet. Upload a large JSONL file on a suspect page, or use POST /v1/jobs.'));
      return;
    }
    holder.replaceChildren(h('table', { id: 'jobs', class: 'data' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Kind'), h('th', {}, 'State'), h('th', {}, 'Progress'), h('th', {}, 'Target'), h('th', {}, 'Created'), h('th', {}, 'Updated'), h('th', {}, ''))),
      h('tbody', {}, jobs.map((j) => {
        const label = j.total ? `${j.done} / ${j.total}` : `${j.done}`;
        const target = j.params && (j.params.suspect_id || j.params.suspect || j.params.name);
        const cancel = writeControl(h('button', { type: 'button', class: 'small' }, 'Cancel'));
        cancel.addEventListener('click', async () => {
          try { await api(`/v1/jobs/${encodeURIComponent(j.id)}/cancel`, { method: 'POST' }); await load(); } catch (e) { flash(e.describe()); }
        });
        const open = h('button', { type: 'button', class: 'small' }, 'Details');
        open.addEventListener('click', () => showDetail(j));
        const dl = h('button', { type: 'button', class: 'small' }, 'Download');
        dl.addEventListener('click', () => downloadResults(j));
        return h('tr', { 'data-job': j.id },
          h('td', {}, h('code', {}, j.id)), h('td', {}, j.kind),
          h('td', {}, h('span', { class: 'badge state-' + j.state }, j.state), j.error ? h('div', { class: 'error-text small' }, j.error) : null),
          h('td', {}, j.progress === null || j.progress === undefined ? label : progressBar(j.progress, label)),
          h('td', {}, target ? (j.params.suspect_id || j.params.suspect ? h('a', { href: `#/suspects/${encodeURIComponent(target)}` }, target) : target) : '–'),
          timeCell(j.created_ms), timeCell(j.updated_ms),
          h('td', { class: 'actions' }, open, j.state === 'done' ? dl : null, j.state === 'queued' || j.state === 'running' ? cancel : null));
      }))));
    const running = jobs.some((j) => j.state === 'queued' || j.state === 'running');
    if (running && !timer) {
      timer = every(2000, () => load().catch((e) => flash(e.describe ? e.describe() : String(e))));
    } else if (!running && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
  await load();
}

// ---------------------------------------------------------------- router

async function route(message) {
  app.timers.forEach(clearInterval);
  app.timers = [];
  app.blobs.forEach((u) => URL.revokeObjectURL(u));
  app.blobs = [];
  flash('');
  delete document.body.dataset.page;
  const main = document.getElementById('main');
  main.replaceChildren();
  const hash = location.hash || '#/suspects';
  if (!app.key) {
    renderSignIn(main, typeof message === 'string' ? message : '');
    document.body.dataset.page = 'signin';
    return;
  }
  if (!app.who) {
    try {
      app.who = await api('/v1/whoami');
    } catch (e) {
      if (e.status === 401) { signOut('Your key was not accepted (unknown or revoked). Sign in again.'); return; }
      main.append(h('p', { class: 'error-text' }, e.describe()));
      return;
    }
    showIdentity();
  }
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.nav === parts[0]));
  try {
    if (parts[0] === 'suspects' && parts[1]) await renderSuspect(main, parts[1]);
    else if (parts[0] === 'profiles') await renderProfiles(main);
    else if (parts[0] === 'jobs') await renderJobs(main);
    else if (parts[0] === 'signin') { location.hash = '#/suspects'; return; }
    else await renderSuspects(main);
    document.body.dataset.page = parts[0] && parts[1] ? 'suspect' : (parts[0] || 'suspects');
  } catch (e) {
    if (e.status === 401) { signOut('Your key is no longer accepted. Sign in again.'); return; }
    main.append(h('p', { class: 'error-text', id: 'page-error' }, e.describe ? e.describe() : String(e)));
  }
}

document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', () => route());
route();
