// Jobs: the list (filters, live every 2 s), the submit form, cancel, and one job's detail with its
// events, GPUs, cost so far and its output followed live.
import { get, post, api, query, enc } from './api.js';
import { h, clear, badge, when, duration, money, toast, errorBox, field, select } from './dom.js';
import { who } from './who.js';

const POLL_MS = 2000;
const STATES = ['QUEUED', 'SCHEDULED', 'STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'PREEMPTED', 'LOST'];
const ACTIVE = 'QUEUED,SCHEDULED,STARTING,RUNNING';
const terminal = (s) => ['SUCCEEDED', 'FAILED', 'CANCELLED', 'LOST'].includes(s);

function elapsedMs(job) {
  if (!job.started_at_ms) return null;
  const end = job.finished_at_ms || Date.now();
  return Math.max(0, end - job.started_at_ms);
}

// Asks before cancelling, in the page (no window.confirm): the button becomes "Confirm cancel".
function cancelButton(job, onDone) {
  const btn = h('button', { type: 'button', class: 'danger small', 'aria-label': `Cancel job ${job.id}` }, 'Cancel');
  let armed = false;
  let timer = 0;
  btn.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      btn.textContent = 'Confirm cancel';
      btn.setAttribute('aria-label', `Confirm: cancel job ${job.id}`);
      timer = setTimeout(() => {
        armed = false;
        btn.textContent = 'Cancel';
        btn.setAttribute('aria-label', `Cancel job ${job.id}`);
      }, 5000);
      return;
    }
    clearTimeout(timer);
    btn.disabled = true;
    try {
      await post(`/v1/jobs/${enc(job.id)}/cancel`);
      toast(`Cancelling ${job.id}`);
    } catch (err) {
      toast(`Cannot cancel ${job.id}: ${err.message}`, 'error');
    }
    onDone?.();
  });
  return btn;
}

async function submitForm(projects, gpuTypes, onSubmitted) {
  const writable = projects.filter((p) => who.canWrite(p));
  if (!writable.length) {
    return h('p', { class: 'muted' }, 'You can view jobs but not submit them: your role in every project is viewer.');
  }
  const command = h('input', { name: 'command', required: true, placeholder: 'python3 train.py --epochs 3', spellcheck: 'false' });
  const name = h('input', { name: 'name', placeholder: 'optional' });
  const gpus = h('input', { name: 'gpus', type: 'number', min: '0', step: '0.25', value: '1', required: true });
  const gpuType = select('gpu_type', [['', 'Any type'], ...gpuTypes.map((t) => [t, t])], '');
  const memory = h('input', { name: 'memory_mib', type: 'number', min: '0', step: '1', placeholder: '0 = no limit' });
  const runtime = h('input', { name: 'runtime', placeholder: 'e.g. 30m, 24h', spellcheck: 'false' });
  const project = select('project', writable.map((p) => [p, p]), writable.includes('default') ? 'default' : writable[0]);
  const priority = h('input', { name: 'priority', type: 'number', min: '0', max: '100', step: '1', value: '50' });
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Submit job');
  const form = h('form', { class: 'grid-form', 'aria-label': 'Submit a job' },
    field('Command', command, 'Run with sh -c on the node.'),
    field('Name', name),
    field('GPUs', gpus, 'Whole GPUs or a fraction (0.25).'),
    field('GPU type', gpuType),
    field('Memory (MiB)', memory),
    field('Runtime limit', runtime),
    field('Project', project),
    field('Priority (0–100)', priority),
    h('div', { class: 'actions' }, button, status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { command: command.value, gpus: gpus.value || '1', project: project.value };
    if (name.value.trim()) body.name = name.value.trim();
    if (gpuType.value) body.gpu_type = gpuType.value;
    if (memory.value) body.memory_mib = Number(memory.value);
    if (runtime.value.trim()) body.runtime = runtime.value.trim();
    if (priority.value !== '') body.priority = Number(priority.value);
    button.disabled = true;
    clear(status);
    try {
      const job = await api('POST', '/v1/jobs', body);
      clear(status, h('p', { class: 'ok' }, 'Submitted ', h('a', { href: `#/jobs/${job.id}` }, job.id), ` (${job.state})`));
      onSubmitted?.(job);
    } catch (err) {
      clear(status, errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export async function jobsPage(main) {
  const projects = await who.projects();
  let gpuTypes = [];
  try {
    gpuTypes = [...new Set((await get('/v1/gpus')).gpus.map((g) => g.type))].sort();
  } catch { /* the form still works without the list */ }
  const stateFilter = select('state', [['', 'All states'], [ACTIVE, 'Active (queued or running)'], ...STATES.map((s) => [s, s])], '');
  const projectFilter = select('project', [['', 'All my projects'], ...projects.map((p) => [p, p])], '');
  const updated = h('span', { class: 'muted small-text', 'aria-live': 'off' });
  const errorSlot = h('div');
  const tbody = h('tbody');
  const tableEl = h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Jobs' },
    h('table', { id: 'jobs-table' },
      h('caption', {}, 'Jobs, newest first (updated every 2 seconds)'),
      h('thead', {}, h('tr', {}, ['ID', 'Name', 'Project', 'User', 'State', 'GPUs', 'Node', 'Created', 'Runtime', 'Actions']
        .map((x) => h('th', { scope: 'col' }, x)))),
      tbody));
  let timer = 0;
  let stopped = false;
  const rows = new Map();  // job id -> { sig, tr }

  function row(job) {
    const canCancel = !terminal(job.state) && who.canWrite(job.project);
    return h('tr', { 'data-job': job.id, 'data-state': job.state },
      h('td', {}, h('a', { href: `#/jobs/${job.id}` }, job.id)),
      h('td', {}, job.name || ''),
      h('td', {}, job.project),
      h('td', {}, job.user),
      h('td', {}, badge(job.state), job.reason && !terminal(job.state) ? h('div', { class: 'muted small-text' }, job.reason) : null),
      h('td', {}, job.gpus + (job.gpu_type ? ' × ' + job.gpu_type : '')),
      h('td', {}, job.node || ''),
      h('td', {}, when(job.created_at)),
      h('td', {}, duration(elapsedMs(job))),
      h('td', {}, canCancel ? cancelButton(job, refresh) : ''));
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const r = await get('/v1/jobs' + query({ state: stateFilter.value, project: projectFilter.value, limit: 100 }));
      if (stopped) return;
      clear(errorSlot);
      const seen = new Set();
      let prev = null;
      for (const job of r.jobs) {
        seen.add(job.id);
        const sig = JSON.stringify([job.state, job.node, job.reason, job.started_at_ms, job.finished_at_ms,
          Math.floor((elapsedMs(job) || 0) / 1000)]);
        let entry = rows.get(job.id);
        if (!entry || entry.sig !== sig) {
          const focusedInRow = entry && entry.tr.contains(document.activeElement);
          const tr = row(job);
          if (entry && focusedInRow && entry.sig.split(',')[0] === sig.split(',')[0]) {
            // Same state: keep the row the user is on (e.g. an armed cancel button); only refresh its runtime.
            entry.tr.children[8].textContent = tr.children[8].textContent;
            entry.sig = sig;
          } else {
            if (entry) entry.tr.replaceWith(tr);
            entry = { sig, tr };
            rows.set(job.id, entry);
          }
        }
        const want = prev ? prev.nextSibling : tbody.firstChild;
        if (want !== entry.tr) tbody.insertBefore(entry.tr, want);
        prev = entry.tr;
      }
      for (const [id, entry] of rows) {
        if (!seen.has(id)) { entry.tr.remove(); rows.delete(id); }
      }
      tbody.querySelector('.empty-row')?.remove();
      if (!r.jobs.length) tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: 10, class: 'muted' }, 'No jobs match.')));
      updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
    } catch (err) {
      if (!stopped) clear(errorSlot, errorBox(err));
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  const onFilter = () => { for (const e of rows.values()) e.tr.remove(); rows.clear(); refresh(); };
  stateFilter.addEventListener('change', onFilter);
  projectFilter.addEventListener('change', onFilter);

  clear(main,
    h('h1', {}, 'Jobs'),
    h('details', { class: 'card', open: true },
      h('summary', {}, 'Submit a job'),
      await submitForm(projects, gpuTypes, () => refresh())),
    h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters' },
      field('State', stateFilter), field('Project', projectFilter), updated),
    errorSlot,
    tableEl);
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

// A job's output: GET /v1/jobs/{id}/logs?follow=true streams until the job ends; a long log from its last lines
// (tail: the page never holds more than that of what was written before it opened).
const LOG_TAIL_LINES = 2000;
function followLogs(id, pre, status, signal) {
  let offset = 0;
  const decoder = new TextDecoder();
  async function run() {
    status.textContent = 'Following output…';
    try {
      const res = await api('GET', `/v1/jobs/${enc(id)}/logs` + query({ follow: 'true', offset, tail: String(LOG_TAIL_LINES) }),
        undefined, { raw: true, signal });
      const start = Number(res.headers.get('X-FastGPU-Log-Offset') || 0);
      if (start > 0) {
        offset = start;
        status.textContent = `Following output (from the last ${LOG_TAIL_LINES.toLocaleString('en')} lines; \`fastgpu job logs ${id}\` prints all of it)…`;
      }
      const reader = res.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        offset += value.length;
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
        pre.append(decoder.decode(value, { stream: true }));
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
      status.textContent = 'End of output (the job has ended).';
    } catch (err) {
      if (signal.aborted) return;
      status.textContent = 'Output unavailable: ' + err.message;
    }
  }
  run();
}

function gpuHours(job) {
  const ms = elapsedMs(job);
  if (ms === null) return 0;
  return (job.gpus_milli / 1000) * (ms / 3600000);
}

export async function jobPage(main, id) {
  const [prices, gpus] = await Promise.all([
    get('/v1/prices').catch(() => ({ prices: [] })),
    get('/v1/gpus').catch(() => ({ gpus: [] })),
  ]);
  const heading = h('h1', {}, 'Job ' + id);
  const summary = h('div', { class: 'card' });
  const events = h('ol', { class: 'timeline', 'aria-label': 'State changes' });
  const pre = h('pre', { class: 'log', id: 'job-log', tabindex: '0', role: 'log', 'aria-label': `Output of job ${id}` });
  const logStatus = h('p', { class: 'muted small-text', 'aria-live': 'polite' });
  const actions = h('div', { class: 'actions' });
  const errorSlot = h('div');
  const ctrl = new AbortController();
  let timer = 0;
  let stopped = false;
  let lastSig = '';

  function priceOf(job) {
    let type = job.gpu_type;
    if (!type && job.assigned_gpus?.length) type = gpus.gpus.find((g) => g.uuid === job.assigned_gpus[0])?.type;
    const p = prices.prices.find((x) => x.gpu_type === type);
    return p ? { type, micro: p.price_per_gpu_hour_micro } : null;
  }

  function render(job) {
    const price = priceOf(job);
    const hours = gpuHours(job);
    const items = [
      ['State', h('span', {}, badge(job.state), job.reason ? ' ' + job.reason : '')],
      ['Exit', job.exit_code !== null && job.exit_code !== undefined ? `code ${job.exit_code}` : job.signal ? `signal ${job.signal}` : '—'],
      ['Project', job.project], ['User', job.user], ['Name', job.name || '—'],
      ['Command', h('code', {}, job.command.join(' '))],
      ['GPUs requested', job.gpus + (job.gpu_type ? ' × ' + job.gpu_type : ' (any type)')],
      ['Memory', job.memory_mib ? job.memory_mib + ' MiB' : 'no limit'],
      ['Runtime limit', job.runtime_limit_s ? duration(job.runtime_limit_s * 1000) : 'none'],
      ['Priority', String(job.priority)],
      ['Node', job.node || '—'],
      ['GPUs', job.assigned_gpus?.length
        ? h('ul', { class: 'plain' }, job.assigned_gpus.map((u, i) => h('li', {}, `#${job.assigned_gpu_indices?.[i] ?? '?'} `, h('code', {}, u))))
        : '—'],
      ['Attempt', String(job.attempt)],
      ['Created', when(job.created_at)], ['Started', when(job.started_at) || '—'], ['Finished', when(job.finished_at) || '—'],
      ['Run time', duration(elapsedMs(job)) || '—'],
      ['GPU time', hours ? hours.toFixed(4) + ' GPU-hours' : '—'],
      ['Cost so far', price ? `${money(hours * price.micro)} (estimate at ${money(price.micro)} per ${price.type} GPU-hour)` : '—'],
    ];
    if (job.expected_start_at && !job.started_at) items.push(['Expected start', when(job.expected_start_at) + (job.expected_start_note ? ' — ' + job.expected_start_note : '')]);
    clear(summary, h('dl', { class: 'props' }, items.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
    heading.textContent = `Job ${job.id}` + (job.name ? ` — ${job.name}` : '');
    clear(actions, !terminal(job.state) && who.canWrite(job.project) ? cancelButton(job, refresh) : null);
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const [job, ev] = await Promise.all([get(`/v1/jobs/${enc(id)}`), get(`/v1/jobs/${enc(id)}/events`)]);
      if (stopped) return;
      clear(errorSlot);
      const sig = JSON.stringify([job.state, ev.events.length, Math.floor((elapsedMs(job) || 0) / 1000)]);
      if (sig !== lastSig) {
        lastSig = sig;
        render(job);
        clear(events, ev.events.map((e) => h('li', {},
          h('time', { datetime: e.at }, when(e.at)), ' ',
          e.from ? [badge(e.from), ' → '] : null, badge(e.to),
          e.reason ? h('span', { class: 'muted' }, ' ' + e.reason) : null,
          e.actor ? h('span', { class: 'muted small-text' }, ' by ' + e.actor) : null)));
      }
      if (terminal(job.state)) return;  // nothing changes any more
    } catch (err) {
      if (stopped) return;
      clear(errorSlot, errorBox(err));
      if (err.status === 404) return;
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  clear(main,
    h('p', {}, h('a', { href: '#/jobs' }, '← All jobs')),
    heading, errorSlot, actions, summary,
    h('section', { 'aria-labelledby': 'events-title' }, h('h2', { id: 'events-title' }, 'Events'), events),
    h('section', { 'aria-labelledby': 'logs-title' }, h('h2', { id: 'logs-title' }, 'Output'), logStatus, pre));
  await refresh();
  followLogs(id, pre, logStatus, ctrl.signal);
  return () => { stopped = true; clearTimeout(timer); ctrl.abort(); };
}
