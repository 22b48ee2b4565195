// Usage and bills: spend of a month by project and GPU type (GET /v1/usage), each project's budget and
// credit balance, and its invoice as CSV (GET /v1/projects/{p}/bill?format=csv).
import { get, api, query, enc } from './api.js';
import { h, clear, money, errorBox, field, table, download, toast } from './dom.js';
import { who } from './who.js';

function thisMonth() {
  const d = new Date();
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

function sumBy(rows, key) {
  const m = new Map();
  for (const r of rows) {
    const s = m.get(r[key]) || { cost: 0, hours: 0 };
    s.cost += r.cost_micro;
    s.hours += r.gpu_hours_milli;
    m.set(r[key], s);
  }
  return [...m.entries()].sort((a, b) => b[1].cost - a[1].cost);
}

async function invoiceCsv(project, month) {
  try {
    const res = await api('GET', `/v1/projects/${enc(project)}/bill` + query({ month, format: 'csv' }), undefined, { raw: true });
    download(`invoice-${project}-${month}.csv`, await res.blob());
    toast(`Invoice for ${project}, ${month} downloaded`);
  } catch (err) {
    toast(`Cannot download the invoice: ${err.message}`, 'error');
  }
}

export async function usagePage(main) {
  const monthInput = h('input', { type: 'month', name: 'month', value: thisMonth(), required: true });
  const body = h('div');
  async function load() {
    const month = monthInput.value || thisMonth();
    try {
      const usage = await get('/v1/usage' + query({ month }));
      const projects = await who.projects();
      let details = [];
      try {
        details = (await get('/v1/projects')).projects;
      } catch { /* budgets unknown */ }
      const byProject = sumBy(usage.rows, 'project');
      const byType = sumBy(usage.rows, 'gpu_type');
      const cards = await Promise.all(projects.map(async (p) => {
        const info = details.find((d) => d.name === p);
        const spent = byProject.find(([name]) => name === p)?.[1].cost || 0;
        const limit = info?.budget?.monthly_limit_micro || 0;
        let credit = null;
        try { credit = (await get(`/v1/projects/${enc(p)}/credits`)).balance_micro; } catch { /* not visible */ }
        return h('section', { class: 'card project-bill', 'aria-label': `Project ${p}` },
          h('h3', {}, p),
          h('p', {}, `Spent in ${month}: `, h('strong', {}, money(spent))),
          limit
            ? h('div', { class: 'budget' },
              h('label', { for: `budget-${p}` }, `Budget: ${money(spent)} of ${money(limit)} a month` + (info.budget.hard ? ' (hard limit)' : '')),
              h('meter', { id: `budget-${p}`, min: '0', max: String(limit), value: String(Math.min(spent, limit)), high: String(limit * 0.8), optimum: '0' }))
            : h('p', { class: 'muted' }, 'No monthly budget set.'),
          credit !== null ? h('p', {}, 'Credit balance: ', money(credit)) : null,
          h('button', { type: 'button', class: 'secondary', 'data-invoice': p, onclick: () => invoiceCsv(p, month) },
            `Download invoice CSV (${p}, ${month})`));
      }));
      clear(body,
        h('p', {}, 'Total: ', h('strong', { id: 'usage-total' }, money(usage.total_micro))),
        h('div', { class: 'two-col' },
          table('Spend by project', ['Project', 'GPU-hours', 'Cost'],
            byProject.map(([p, s]) => h('tr', {}, h('td', {}, p), h('td', {}, (s.hours / 1000).toFixed(3)), h('td', {}, money(s.cost)))),
            { empty: 'No usage this month.' }),
          table('Spend by GPU type', ['GPU type', 'GPU-hours', 'Cost'],
            byType.map(([t, s]) => h('tr', {}, h('td', {}, t), h('td', {}, (s.hours / 1000).toFixed(3)), h('td', {}, money(s.cost)))),
            { empty: 'No usage this month.' })),
        h('h2', {}, 'Projects'),
        h('div', { class: 'cards' }, cards));
    } catch (err) {
      clear(body, errorBox(err));
    }
  }
  const form = h('form', { class: 'filters', 'aria-label': 'Month' }, field('Month', monthInput),
    h('button', { type: 'submit', class: 'secondary' }, 'Show'));
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  clear(main, h('h1', {}, 'Usage and bills'), form, body);
  await load();
}
