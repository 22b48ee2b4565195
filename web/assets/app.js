// The FastGPU console: a single page over the REST API. Routes live in the URL fragment (#/jobs,
// #/jobs/j-3, …) so the server serves one document; every datum comes from an authenticated API call.
import { api, get, session, setUnauthenticatedHandler } from './api.js';
import { h, clear, errorBox, field } from './dom.js';
import { jobsPage, jobPage } from './jobs.js';
import { gpusPage } from './resources.js';
import { usagePage } from './billing.js';
import { projectsPage, projectPage, tokensPage, auditPage } from './accounts.js';
import { who, setMe } from './who.js';

const main = document.getElementById('main');
let cleanup = null;  // the current page's stop function (timers, log streams)
let firstRender = true;  // a page opened or reloaded keeps the browser's focus; later pages move it to their h1

function stopPage() {
  if (cleanup) {
    try { cleanup(); } catch { /* ignore */ }
  }
  cleanup = null;
}

function loginPage(message) {
  stopPage();
  firstRender = false;  // after logging in, focus goes to the first page's heading
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  const tokenInput = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in to FastGPU'),
    message ? h('p', { class: 'error', role: 'alert' }, message) : null,
    field('API token', tokenInput,
      'fastgpu up writes the admin token to $FASTGPU_HOME/admin.token; `fastgpu token create` makes more. ' +
      'It is kept in this tab only (sessionStorage).'),
    status,
    h('button', { type: 'submit' }, 'Log in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await signIn(tokenInput.value.trim(), status);
  });
  // Service accounts: OAuth2 client credentials give a one-hour access token.
  const idInput = h('input', { name: 'client_id', autocomplete: 'off', required: true, spellcheck: 'false' });
  const secretInput = h('input', { type: 'password', name: 'client_secret', autocomplete: 'off', required: true });
  const saStatus = h('div', { 'aria-live': 'polite' });
  const sa = h('form', { class: 'card narrow', 'aria-labelledby': 'sa-title' },
    h('h2', { id: 'sa-title' }, 'Service account'),
    field('Client ID', idInput), field('Client secret', secretInput), saStatus,
    h('button', { type: 'submit', class: 'secondary' }, 'Log in with client credentials'));
  sa.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: idInput.value.trim(), client_secret: secretInput.value });
      const r = await api('POST', '/oauth/token', body);
      await signIn(r.access_token, saStatus);
    } catch (err) {
      clear(saStatus, errorBox(err));
    }
  });
  clear(main, form, h('details', { class: 'narrow' }, h('summary', {}, 'Log in as a service account'), sa));
  tokenInput.focus();
}

async function signIn(token, status) {
  session.set(token);
  try {
    setMe(await get('/v1/whoami', { quiet401: true }));
  } catch (err) {
    session.clear();
    setMe(null);
    clear(status, errorBox(err.status === 401 ? 'That token was not accepted: check it and try again.' : err));
    return;
  }
  if (!location.hash || location.hash === '#/' || location.hash === '#/login') location.hash = '#/jobs';
  else route();
}

function logout() {
  session.clear();
  setMe(null);
  location.hash = '#/login';
  loginPage();
}

function showChrome() {
  const me = who.me;
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  const roles = me.projects.map((p) => `${p.project}: ${p.role}`).join(', ');
  clear(document.getElementById('who-name'),
    h('span', { class: 'user', title: roles }, me.user), ' ',
    me.admin ? h('span', { class: 'badge' }, 'admin') : null,
    h('span', { class: 'roles' }, roles ? ` (${roles})` : ''));
  document.querySelector('[data-admin]').hidden = !me.admin;
}

const ROUTES = [
  [/^\/jobs\/([A-Za-z0-9_.-]+)$/, (m) => jobPage(main, m[1])],
  [/^\/jobs$/, () => jobsPage(main)],
  [/^\/gpus$/, () => gpusPage(main)],
  [/^\/usage$/, () => usagePage(main)],
  [/^\/projects\/([A-Za-z0-9_.-]+)$/, (m) => projectPage(main, m[1])],
  [/^\/projects$/, () => projectsPage(main)],
  [/^\/tokens$/, () => tokensPage(main)],
  [/^\/audit$/, () => auditPage(main)],
];

async function route() {
  if (!session.token()) return loginPage();
  if (!who.me) {
    try {
      setMe(await get('/v1/whoami'));
    } catch (err) {
      session.clear();
      return loginPage(err.status === 401 ? 'Your session has ended: log in again.' : err.message);
    }
  }
  showChrome();
  const path = location.hash.replace(/^#/, '') || '/jobs';
  stopPage();
  for (const a of document.querySelectorAll('#nav a')) {
    const current = path === '/' + a.dataset.page || path.startsWith('/' + a.dataset.page + '/');
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  for (const [re, render] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    clear(main);
    try {
      cleanup = (await render(m)) || null;
    } catch (err) {
      clear(main, h('h1', {}, 'Something went wrong'), errorBox(err));
    }
    const heading = main.querySelector('h1');
    if (heading) heading.tabIndex = -1;
    if (heading && !firstRender) heading.focus({ preventScroll: true });
    firstRender = false;
    return;
  }
  location.hash = '#/jobs';
}

setUnauthenticatedHandler(() => {
  session.clear();
  setMe(null);
  loginPage('Your session has ended or the token was revoked: log in again.');
});
document.getElementById('logout').addEventListener('click', logout);
window.addEventListener('hashchange', route);
route();
