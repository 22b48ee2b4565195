// GPUs and nodes: what GET /v1/gpus and GET /v1/nodes report, refreshed every 5 s, with charts of
// utilisation, memory, temperature and power over the last hour drawn from the samples this page has
// taken since the console was opened (kept in memory, one per 5 s, up to an hour).
import { get } from './api.js';
import { h, clear, svg, when, errorBox, table } from './dom.js';

const POLL_MS = 5000;
const HOUR_MS = 3600 * 1000;
const history = new Map();  // gpu uuid -> [{t, util, mem, temp, power}]

function sample(gpus) {
  const t = Date.now();
  for (const g of gpus) {
    const s = history.get(g.uuid) || [];
    s.push({ t, util: g.utilization_pct, mem: g.memory_total_mib ? (100 * g.memory_used_mib) / g.memory_total_mib : 0,
      temp: g.temperature_c, power: g.power_mw / 1000 });
    while (s.length && s[0].t < t - HOUR_MS) s.shift();
    history.set(g.uuid, s);
  }
}

// A small line chart (SVG built through the DOM: allowed by the CSP, unlike inline styles), with its name
// and latest value beside it.
function spark(points, key, max, label, unit) {
  const w = 96, hgt = 20;
  const now = Date.now();
  const xy = points.map((p) => [w - ((now - p.t) / HOUR_MS) * w, hgt - (Math.min(p[key], max) / max) * (hgt - 2) - 1]);
  const last = points.length ? Math.round(points[points.length - 1][key]) : 0;
  const chart = svg('svg', { viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, class: 'spark', 'aria-hidden': 'true' },
    svg('polyline', { points: xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '), fill: 'none' }));
  if (xy.length) {
    const [x, y] = xy[xy.length - 1];
    chart.append(svg('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 2 }));
  }
  return h('div', { class: 'spark-row', title: `${label} over the last hour` },
    h('span', { class: 'spark-label' }, label), chart, h('span', { class: 'spark-value' }, `${last}${unit}`));
}

function meter(value, max, label) {
  return h('meter', { min: '0', max: String(max), value: String(value), 'aria-label': label });
}

export async function gpusPage(main) {
  const gpuSlot = h('div');
  const nodeSlot = h('div');
  const errorSlot = h('div');
  let timer = 0;
  let stopped = false;

  async function refresh() {
    try {
      const [g, n] = await Promise.all([get('/v1/gpus'), get('/v1/nodes')]);
      if (stopped) return;
      sample(g.gpus);
      clear(errorSlot);
      clear(gpuSlot, table('GPUs', ['Node', 'GPU', 'Type', 'Health', 'Utilisation', 'Memory', 'Temperature', 'Power', 'Allocated', 'Jobs', 'Last hour'],
        g.gpus.map((x) => {
          const pts = history.get(x.uuid) || [];
          return h('tr', {},
            h('td', {}, x.node),
            h('td', {}, `#${x.index} ${x.name}`, x.simulated ? h('span', { class: 'badge sim' }, 'simulated') : null,
              h('div', { class: 'muted small-text' }, h('code', {}, x.uuid))),
            h('td', {}, x.type),
            h('td', {}, x.healthy ? h('span', { class: 'badge ok' }, 'healthy') : h('span', { class: 'badge bad' }, 'unhealthy')),
            h('td', {}, meter(x.utilization_pct, 100, `Utilisation of GPU ${x.index}`), ` ${x.utilization_pct}%`),
            h('td', {}, meter(x.memory_used_mib, x.memory_total_mib || 1, `Memory of GPU ${x.index}`),
              ` ${x.memory_used_mib} / ${x.memory_total_mib} MiB`),
            h('td', {}, `${x.temperature_c} °C`),
            h('td', {}, `${(x.power_mw / 1000).toFixed(0)} W`),
            h('td', {}, (x.allocated_milli / 1000).toString()),
            h('td', {}, (x.jobs || []).map((id) => [h('a', { href: `#/jobs/${id}` }, id), ' '])),
            h('td', { class: 'charts' },
              spark(pts, 'util', 100, 'util', '%'), spark(pts, 'mem', 100, 'mem', '%'),
              spark(pts, 'temp', 100, 'temp', ' °C'), spark(pts, 'power', 700, 'power', ' W')));
        }), { empty: 'No GPUs registered.' }));
      clear(nodeSlot, table('Nodes', ['Name', 'Address', 'Health', 'GPUs', 'Last heartbeat', 'Labels'],
        n.nodes.map((x) => h('tr', {},
          h('td', {}, x.name, x.simulated ? h('span', { class: 'badge sim' }, 'simulated') : null),
          h('td', {}, x.address || ''),
          h('td', {}, x.healthy ? h('span', { class: 'badge ok' }, 'healthy') : h('span', { class: 'badge bad' }, 'down'),
            x.draining ? h('span', { class: 'badge' }, 'draining') : null),
          h('td', {}, String(x.gpu_count)),
          h('td', {}, when(x.last_heartbeat)),
          h('td', {}, Object.entries(x.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ')))),
        { empty: 'No nodes.' }));
    } catch (err) {
      if (!stopped) clear(errorSlot, errorBox(err));
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }
  clear(main, h('h1', {}, 'GPUs and nodes'),
    h('p', { class: 'muted' }, 'Refreshed every 5 seconds. Charts show the last hour this console has watched (utilisation, memory, temperature, power).'),
    errorSlot, h('h2', {}, 'GPUs'), gpuSlot, h('h2', {}, 'Nodes'), nodeSlot);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
