// Projects (members, secrets), your API tokens, and the audit log for admins. Forms appear only for
// callers whose role allows the change (owners manage members; members set secrets).
import { get, post, put, del, query, enc } from './api.js';
import { h, clear, when, errorBox, field, select, table, toast } from './dom.js';
import { who } from './who.js';

export async function projectsPage(main) {
  const r = await get('/v1/projects');
  clear(main, h('h1', {}, 'Projects'),
    table('Your projects', ['Project', 'Your role', 'Description', 'Budget'],
      r.projects.map((p) => h('tr', {},
        h('td', {}, h('a', { href: `#/projects/${p.name}` }, p.name)),
        h('td', {}, who.role(p.name) || (who.admin ? 'admin' : '')),
        h('td', {}, p.description || ''),
        h('td', {}, p.budget?.monthly_limit_micro ? '$' + (p.budget.monthly_limit_micro / 1e6).toFixed(2) + ' / month' : '—'))),
      { empty: 'You are in no project yet.' }));
}

function membersSection(project, reload) {
  const section = h('section', { 'aria-labelledby': 'members-title' }, h('h2', { id: 'members-title' }, 'Members'));
  const manage = who.canManage(project);
  get(`/v1/projects/${enc(project)}/members`).then((r) => {
    section.append(table('Members', manage ? ['User', 'Role', 'Actions'] : ['User', 'Role'],
      r.members.map((m) => h('tr', {}, h('td', {}, m.user), h('td', {}, m.role),
        manage ? h('td', {}, h('button', { type: 'button', class: 'danger small', 'aria-label': `Remove ${m.user} from ${project}`,
          onclick: async () => {
            try { await del(`/v1/projects/${enc(project)}/members/${enc(m.user)}`); toast(`Removed ${m.user}`); reload(); } catch (err) { toast(err.message, 'error'); }
          } }, 'Remove')) : null))));
    if (manage) {
      const user = h('input', { name: 'user', required: true, autocomplete: 'off' });
      const role = select('role', [['viewer', 'viewer'], ['member', 'member'], ['owner', 'owner']], 'member');
      const status = h('div', { 'aria-live': 'polite' });
      const form = h('form', { class: 'filters', 'aria-label': 'Add or change a member' },
        field('User', user), field('Role', role), h('button', { type: 'submit' }, 'Add or change member'), status);
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        try { await put(`/v1/projects/${enc(project)}/members/${enc(user.value.trim())}`, { role: role.value }); toast(`${user.value} is now ${role.value}`); reload(); } catch (err) { clear(status, errorBox(err)); }
      });
      section.append(form);
    }
  }).catch((err) => section.append(errorBox(err)));
  return section;
}

function secretsSection(project, reload) {
  const section = h('section', { 'aria-labelledby': 'secrets-title' }, h('h2', { id: 'secrets-title' }, 'Secrets'),
    h('p', { class: 'muted' }, 'Names only: values are never shown again once set.'));
  const write = who.canWrite(project);
  get(`/v1/projects/${enc(project)}/secrets`).then((r) => {
    section.append(table('Secrets', write ? ['Name', 'Updated', 'By', 'Actions'] : ['Name', 'Updated', 'By'],
      r.secrets.map((s) => h('tr', {}, h('td', {}, h('code', {}, s.name)), h('td', {}, when(s.updated_at)), h('td', {}, s.updated_by),
        write ? h('td', {}, h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete secret ${s.name}`,
          onclick: async () => {
            try { await del(`/v1/projects/${enc(project)}/secrets/${enc(s.name)}`); toast(`Deleted ${s.name}`); reload(); } catch (err) { toast(err.message, 'error'); }
          } }, 'Delete')) : null)), { empty: 'No secrets.' }));
    if (write) {
      const name = h('input', { name: 'name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_.-]+' });
      const value = h('input', { name: 'value', type: 'password', required: true, autocomplete: 'new-password' });
      const status = h('div', { 'aria-live': 'polite' });
      const form = h('form', { class: 'filters', 'aria-label': 'Set a secret' },
        field('Secret name', name), field('Value', value), h('button', { type: 'submit' }, 'Set secret'), status);
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        try { await put(`/v1/projects/${enc(project)}/secrets/${enc(name.value.trim())}`, { value: value.value }); toast(`Secret ${name.value} set`); reload(); } catch (err) { clear(status, errorBox(err)); }
      });
      section.append(form);
    }
  }).catch((err) => section.append(errorBox(err)));
  return section;
}

export async function projectPage(main, project) {
  const p = await get(`/v1/projects/${enc(project)}`);
  const reload = () => projectPage(main, project);
  const quota = Object.entries(p.quota?.max_gpus || {}).map(([t, n]) => `${n} × ${t}`).join(', ');
  clear(main,
    h('p', {}, h('a', { href: '#/projects' }, '← All projects')),
    h('h1', {}, 'Project ' + p.name),
    h('dl', { class: 'props card' },
      h('dt', {}, 'Your role'), h('dd', {}, who.role(p.name) || (who.admin ? 'admin' : '—')),
      h('dt', {}, 'Description'), h('dd', {}, p.description || '—'),
      h('dt', {}, 'GPU quota'), h('dd', {}, quota || 'none'),
      h('dt', {}, 'Monthly budget'), h('dd', {}, p.budget?.monthly_limit_micro ? '$' + (p.budget.monthly_limit_micro / 1e6).toFixed(2) + (p.budget.hard ? ' (hard)' : '') : 'none')),
    membersSection(project, reload),
    secretsSection(project, reload));
  main.querySelector('h1').focus({ preventScroll: true });
}

export async function tokensPage(main) {
  const list = h('div');
  const status = h('div', { 'aria-live': 'polite' });
  async function load() {
    try {
      const r = await get('/v1/tokens');
      clear(list, table('Your API tokens', ['ID', 'Name', 'Created', 'Expires', 'State', 'Actions'],
        r.tokens.map((t) => h('tr', {}, h('td', {}, h('code', {}, t.id)), h('td', {}, t.name || ''), h('td', {}, when(t.created_at)),
          h('td', {}, when(t.expires_at) || 'never'), h('td', {}, t.revoked_at ? 'revoked' : 'active'),
          h('td', {}, t.revoked_at || t.id === who.me.token_id ? '' : h('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke token ${t.id}`,
            onclick: async () => { try { await del(`/v1/tokens/${enc(t.id)}`); toast(`Revoked ${t.id}`); load(); } catch (err) { toast(err.message, 'error'); } } }, 'Revoke')))),
        { empty: 'No tokens.' }));
    } catch (err) {
      clear(list, errorBox(err));
    }
  }
  const name = h('input', { name: 'name', autocomplete: 'off' });
  const expires = h('input', { name: 'expires_in', placeholder: 'e.g. 30d (empty: never)', spellcheck: 'false' });
  const form = h('form', { class: 'filters', 'aria-label': 'Create a token' },
    field('Name', name), field('Expires in', expires), h('button', { type: 'submit' }, 'Create token'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    if (name.value.trim()) body.name = name.value.trim();
    if (expires.value.trim()) body.expires_in = expires.value.trim();
    try {
      const t = await post('/v1/tokens', body);
      const out = h('input', { readonly: true, value: t.token, class: 'mono', id: 'new-token' });
      clear(status, h('div', { class: 'card ok' }, field('New token (shown once: copy it now)', out)));
      out.select();
      load();
    } catch (err) {
      clear(status, errorBox(err));
    }
  });
  clear(main, h('h1', {}, 'API tokens'),
    who.me.service_account ? h('p', { class: 'muted' }, 'Service accounts get tokens from POST /oauth/token.') : form,
    status, list);
  await load();
}

export async function auditPage(main) {
  if (!who.admin) {
    clear(main, h('h1', {}, 'Audit log'), h('p', {}, 'Only admins may read the audit log.'));
    return;
  }
  const list = h('div');
  const verifyOut = h('p', { 'aria-live': 'polite' });
  let after = 0;
  async function load() {
    try {
      const r = await get('/v1/audit' + query({ after, limit: 100 }));
      clear(list, table(`Audit rows after #${after}`, ['#', 'When', 'Actor', 'Source', 'Action', 'Target', 'Result', 'Detail'],
        r.records.map((a) => h('tr', {}, h('td', {}, String(a.seq)), h('td', {}, when(a.at)), h('td', {}, a.actor), h('td', {}, a.source),
          h('td', {}, a.action), h('td', {}, a.target), h('td', {}, a.result), h('td', {}, a.detail))), { empty: 'No more rows.' }),
      h('div', { class: 'actions' },
        after > 0 ? h('button', { type: 'button', class: 'secondary', onclick: () => { after = Math.max(0, after - 100); load(); } }, 'Previous 100') : null,
        r.records.length === 100 ? h('button', { type: 'button', class: 'secondary', onclick: () => { after = r.records[99].seq; load(); } }, 'Next 100') : null));
    } catch (err) {
      clear(list, errorBox(err));
    }
  }
  const verify = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    try {
      const v = await get('/v1/audit/verify');
      verifyOut.textContent = v.ok ? `Hash chain intact (${v.rows} rows).` : `Hash chain broken at #${v.first_bad_seq}: ${v.problem}`;
    } catch (err) { verifyOut.textContent = err.message; }
  } }, 'Verify the hash chain');
  clear(main, h('h1', {}, 'Audit log'), h('div', { class: 'actions' }, verify, verifyOut), list);
  await load();
}
