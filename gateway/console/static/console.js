// riskgate console: passkey ceremonies, forms posted as JSON with the CSRF token,
// the rule editor's live validation and backtest, and the decisions feed polling.
'use strict';

const b64uToBuf = (s) => {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
};
const bufToB64u = (buf) => {
  let s = '';
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};
const csrfToken = () => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
};
const postJSON = async (path, body) => {
  const r = await fetch(path, {method: 'POST', credentials: 'same-origin',
    headers: {'content-type': 'application/json', 'x-csrf-token': csrfToken()},
    body: JSON.stringify(body)});
  let doc = {};
  try { doc = await r.json(); } catch (e) { doc = {error: 'bad_response', message: 'unexpected answer'}; }
  return {status: r.status, ok: r.ok, doc};
};
const showError = (form, doc) => {
  const el = form.querySelector('[data-error]');
  if (el) el.textContent = doc.message ? `${doc.message} (${doc.error})` : '';
};

const creationOptions = (o) => ({...o, challenge: b64uToBuf(o.challenge),
  user: {...o.user, id: b64uToBuf(o.user.id)},
  excludeCredentials: (o.excludeCredentials || []).map((c) => ({...c, id: b64uToBuf(c.id)}))});
const requestOptions = (o) => ({...o, challenge: b64uToBuf(o.challenge),
  allowCredentials: (o.allowCredentials || []).map((c) => ({...c, id: b64uToBuf(c.id)}))});
const registrationJSON = (c) => ({id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
  authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults(),
  response: {clientDataJSON: bufToB64u(c.response.clientDataJSON),
             attestationObject: bufToB64u(c.response.attestationObject),
             transports: c.response.getTransports ? c.response.getTransports() : []}});
const assertionJSON = (c) => ({id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
  authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults(),
  response: {clientDataJSON: bufToB64u(c.response.clientDataJSON),
             authenticatorData: bufToB64u(c.response.authenticatorData),
             signature: bufToB64u(c.response.signature),
             userHandle: c.response.userHandle ? bufToB64u(c.response.userHandle) : null}});

const ceremony = async (form, begin, complete, extra, run) => {
  showError(form, {});
  const started = await postJSON(begin, extra);
  if (!started.ok) return showError(form, started.doc);
  let response;
  try {
    response = await run(started.doc.publicKey);
  } catch (e) {
    return showError(form, {error: e.name, message: 'the passkey prompt was cancelled or refused'});
  }
  const done = await postJSON(complete, {...extra, ceremony: started.doc.ceremony, response});
  if (!done.ok) return showError(form, done.doc);
  window.location.assign(done.doc.redirect);
};

const signIn = (form) => ceremony(form, '/console/login/begin', '/console/login/complete',
  {name: form.querySelector('[name=name]').value, next: form.dataset.next},
  async (o) => assertionJSON(await navigator.credentials.get({publicKey: requestOptions(o)})));

const enrol = (form) => ceremony(form, '/console/enrol/begin', '/console/enrol/complete',
  {token: form.dataset.token},
  async (o) => registrationJSON(await navigator.credentials.create({publicKey: creationOptions(o)})));

const submitAjax = async (form, submitter) => {
  const body = {};
  for (const [k, v] of new FormData(form).entries()) body[k] = v;
  if (submitter && submitter.name) body[submitter.name] = submitter.value;
  showError(form, {});
  const r = await postJSON(form.getAttribute('action'), body);
  if (!r.ok) {
    if (r.doc.problems) showProblems(r.doc.problems);
    return showError(form, r.doc);
  }
  if (r.doc.redirect) window.location.assign(r.doc.redirect); else window.location.reload();
};

// Rule editor -------------------------------------------------------------
const showProblems = (problems) => {
  const box = document.getElementById('problems');
  if (!box) return;
  box.replaceChildren();
  box.className = problems.length ? 'problems invalid' : 'problems valid';
  if (!problems.length) { box.textContent = 'The rule set is valid.'; return; }
  const list = document.createElement('ul');
  for (const p of problems) {
    const li = document.createElement('li');
    const where = p.text_line ? `line ${p.text_line}, column ${p.text_column}` : 'position unknown';
    const rule = p.rule ? ` in rule ${p.rule} (expression ${p.line}:${p.column})` : '';
    li.textContent = `${where}${rule}: ${p.kind}: ${p.message}`;
    list.append(li);
  }
  box.append(list);
};

const initEditor = () => {
  const text = document.getElementById('rules-text');
  if (!text) return;
  let timer = null;
  let sent = 0;
  const check = async () => {
    const mine = ++sent;
    const r = await postJSON('/console/rules/validate', {text: text.value});
    if (mine !== sent) return;  // a newer check is under way
    showProblems(r.ok ? r.doc.problems : [{kind: r.doc.error, message: r.doc.message}]);
  };
  text.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(check, 300); });
  check();
  document.getElementById('backtest-button').addEventListener('click', async () => {
    const out = document.getElementById('backtest');
    out.textContent = 'Backtesting…';
    const r = await postJSON('/console/rules/backtest', {text: text.value});
    if (r.ok) { out.innerHTML = r.doc.html; return; }  // server-rendered, escaped
    out.textContent = `${r.doc.message} (${r.doc.error})`;
    if (r.doc.problems) showProblems(r.doc.problems);
  });
};

// Decisions feed ------------------------------------------------------------
const initFeed = () => {
  const table = document.getElementById('feed');
  if (!table || !table.dataset.poll) return;
  setInterval(async () => {
    const r = await fetch(table.dataset.poll, {credentials: 'same-origin'});
    if (r.ok && (r.headers.get('content-type') || '').startsWith('text/html')) {
      table.querySelector('tbody').innerHTML = await r.text();  // server-rendered, escaped
    }
  }, 5000);
};

document.addEventListener('DOMContentLoaded', () => {
  const signin = document.getElementById('signin');
  if (signin) signin.addEventListener('submit', (e) => { e.preventDefault(); signIn(signin); });
  const enrolForm = document.getElementById('enrol');
  if (enrolForm) enrolForm.addEventListener('submit', (e) => { e.preventDefault(); enrol(enrolForm); });
  for (const form of document.querySelectorAll('form[data-ajax]')) {
    form.addEventListener('submit', (e) => { e.preventDefault(); submitAjax(form, e.submitter); });
  }
  initEditor();
  initFeed();
});
