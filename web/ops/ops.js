// The operators' live board. The key lives in this module's memory only: a
// reload asks for it again. Snapshots arrive as Server-Sent Events read with
// fetch (EventSource cannot send the X-Api-Key header).
const $ = (sel) => document.querySelector(sel);
const WINDOW_POINTS = 300; // five minutes of one-second snapshots

let key = '';
let abort;
let retryMs = 500;
let openQueue; // the dead-letter queue whose messages are shown
let charts;
const series = { t: [], accepted: [], refused: [], queued: [], backlog: [] };

const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const num = (n) => (n === null || n === undefined ? '–' : fmt.format(n));
const ago = (ms) => (ms < 1500 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${fmt.format(ms / 1000)} s` : `${fmt.format(ms / 60_000)} min`);
const money = (minor, currency) => (minor === null ? '–' : new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(minor / 100));

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fill(tbody, rows, build) {
  const body = $(tbody);
  body.replaceChildren(...rows.map((r) => {
    const tr = document.createElement('tr');
    build(tr, r);
    return tr;
  }));
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell('none');
    td.colSpan = body.parentElement.tHead.rows[0].cells.length;
    td.className = 'muted';
    tr.append(td);
    body.append(tr);
  }
}

function status(text, cls = '') {
  const el = $('#status');
  el.textContent = text;
  el.className = cls;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new Error(json?.detail ?? json?.title ?? `${res.status}`);
  return json;
}

function render(s) {
  const sum = (o) => Object.values(o).reduce((n, v) => n + v, 0);
  fill('#sales tbody', s.sales, (tr, x) => {
    tr.dataset.sale = x.id;
    const refused = Object.entries(x.perSecond).filter(([code, n]) => code !== 'Applied' && code !== 'AlreadyApplied' && n > 0);
    tr.append(cell(x.name), cell(x.status), cell(num(x.stock), 'num stock'), cell(num(x.available), 'num available'), cell(num(x.reserved), 'num reserved'),
      cell(num(x.sold), 'num sold'), cell(num(x.perSecond.Applied ?? 0), 'num accepted'),
      cell(refused.map(([code, n]) => `${code} ${num(n)}`).join(', ') || '–', 'refused'),
      cell(x.available === 0 ? 'sold out' : x.soldOutInSeconds === null ? '–' : ago(x.soldOutInSeconds * 1000), 'sold-out-in'));
  });
  fill('#auctions tbody', s.auctions, (tr, a) => {
    tr.dataset.auction = a.id;
    tr.append(cell(a.title), cell(money(a.price, a.currency), 'num price'), cell(num(a.bidCount), 'num bids'), cell(num(a.bidsPerSecond), 'num'),
      cell(a.leader ?? '–', 'leader'), cell(new Date(a.endsAt).toLocaleTimeString(), 'ends'), cell(a.extendedSeconds > 0 ? `+${a.extendedSeconds} s` : '–'));
  });
  // Retry tiers and dead-letter queues are listed only while they hold messages (dead letters have their own section).
  const queues = s.queues.filter((q) => q.kind === 'main' || q.messages > 0);
  $('#queues-idle').textContent = queues.length < s.queues.length ? `(${s.queues.length - queues.length} empty retry and dead-letter queues not shown)` : '';
  fill('#queues tbody', queues, (tr, q) => {
    tr.dataset.queue = q.queue;
    tr.append(cell(q.queue), cell(q.kind), cell(num(q.messages), `num depth${q.kind === 'dead-letter' && q.messages > 0 ? ' bad' : ''}`), cell(num(q.inPerSecond), 'num'),
      cell(num(q.outPerSecond), 'num'), cell(num(q.consumers), `num${q.kind === 'main' && q.consumers === 0 ? ' warn' : ''}`));
  });
  // Hundreds of sales leave hundreds of empty outboxes: only those holding entries are listed.
  const holding = s.outboxes.filter((o) => o.length > 0 || o.pending > 0);
  $('#outboxes-idle').textContent = holding.length < s.outboxes.length ? `(${s.outboxes.length - holding.length} empty not shown)` : '';
  fill('#outboxes tbody', holding, (tr, o) => {
    tr.append(cell(o.stream), cell(num(o.length), 'num'), cell(num(o.unread), 'num'), cell(num(o.pending), 'num'),
      cell(o.oldestAgeMs > 0 ? ago(o.oldestAgeMs) : '–', `num${o.oldestAgeMs > 5000 ? ' warn' : ''}`));
  });
  const total = $('#dead-total');
  total.textContent = String(s.deadLetters.total);
  total.className = s.deadLetters.total > 0 ? 'badge bad' : 'badge';
  fill('#dead-letters tbody', s.deadLetters.queues, (tr, d) => {
    tr.dataset.dlq = d.queue;
    const show = document.createElement('button');
    show.textContent = 'Messages';
    show.dataset.action = 'show';
    show.onclick = () => showDeadLetters(d.queue);
    const replay = document.createElement('button');
    replay.textContent = 'Replay all';
    replay.dataset.action = 'replay-all';
    replay.disabled = d.waiting === 0;
    replay.onclick = () => act(`/v1/ops/dead-letters/${d.queue}/replay`, undefined, (r) => `${r.replayed} replayed from ${d.queue}`, d.queue);
    const buttons = cell('');
    buttons.append(show, ' ', replay);
    tr.append(cell(d.queue), cell(num(d.waiting), `num waiting${d.waiting > 0 ? ' bad' : ''}`), cell(num(d.unarchived), 'num unarchived'),
      cell(d.oldestWaiting ? new Date(d.oldestWaiting).toLocaleString() : '–'), buttons);
  });
  const now = Date.parse(s.at);
  fill('#roles tbody', s.roles, (tr, r) => {
    tr.dataset.role = r.role;
    const metrics = cell('');
    if (r.metricsUrl) metrics.textContent = r.metricsUrl;
    tr.append(cell(r.role), cell(r.instance), cell(r.healthy ? 'healthy' : 'silent', r.healthy ? 'healthy' : 'silent'), cell(`${ago(r.silentMs)} ago`),
      cell(ago(now - r.startedAt)), metrics);
  });
  renderReconciliation(s.reconciliation);
  const problems = $('#problems');
  problems.hidden = s.problems.length === 0;
  problems.textContent = s.problems.join(' · ');

  series.t.push(now / 1000);
  series.accepted.push(s.sales.reduce((n, x) => n + (x.perSecond.Applied ?? 0), 0));
  series.refused.push(s.sales.reduce((n, x) => n + sum(x.perSecond) - (x.perSecond.Applied ?? 0) - (x.perSecond.AlreadyApplied ?? 0), 0));
  series.queued.push(s.queues.filter((q) => q.kind !== 'dead-letter').reduce((n, q) => n + q.messages, 0));
  series.backlog.push(s.outboxBacklog);
  for (const k in series) if (series[k].length > WINDOW_POINTS) series[k].shift();
  drawCharts();
}

function drawCharts() {
  if (!window.uPlot) return;
  const width = Math.min(640, Math.max(320, window.innerWidth / 2 - 60));
  if (!charts) {
    const opts = (names, colors) => ({
      width, height: 180, legend: { live: false },
      series: [{}, ...names.map((label, i) => ({ label, stroke: colors[i], width: 1.5 }))],
      axes: [{}, { size: 50 }],
    });
    charts = [
      new uPlot(opts(['accepted', 'refused'], ['#17803d', '#b3261e']), [series.t, series.accepted, series.refused], $('#chart-decisions')),
      new uPlot(opts(['queued', 'outbox backlog'], ['#2456a6', '#b35c00']), [series.t, series.queued, series.backlog], $('#chart-queues')),
    ];
  }
  charts[0].setData([series.t, series.accepted, series.refused]);
  charts[1].setData([series.t, series.queued, series.backlog]);
}

async function showDeadLetters(queue) {
  openQueue = queue;
  $('#dead-detail').hidden = false;
  $('#dead-detail-title').textContent = `${queue}: waiting dead letters`;
  $('#purge-confirm').value = '';
  try {
    const page = await api('GET', `/v1/ops/dead-letters/${queue}?limit=50`);
    fill('#dead-messages tbody', page.items, (tr, m) => {
      tr.dataset.deadLetter = String(m.id);
      const replay = document.createElement('button');
      replay.textContent = 'Replay';
      replay.dataset.action = 'replay-one';
      replay.onclick = () => act(`/v1/ops/dead-letters/${queue}/${m.id}/replay`, undefined, () => `dead letter ${m.id} replayed`, queue);
      const body = document.createElement('code');
      body.className = 'body';
      body.textContent = JSON.stringify(m.body);
      body.title = body.textContent;
      const bodyCell = cell('');
      bodyCell.append(body);
      const buttons = cell('');
      buttons.append(replay);
      tr.append(cell(String(m.id)), cell(m.type ?? '–'), cell(m.lastError ?? '–', 'last-error'), cell(new Date(m.deadLetteredAt).toLocaleString()), bodyCell, buttons);
    });
  } catch (err) {
    $('#dead-result').textContent = `Could not read ${queue}'s dead letters: ${err.message}`;
  }
}

async function act(path, body, said, queue) {
  const result = $('#dead-result');
  try {
    result.textContent = said(await api('POST', path, body));
    result.className = '';
  } catch (err) {
    result.textContent = err.message;
    result.className = 'bad';
  }
  if (openQueue === queue) await showDeadLetters(queue);
}

$('#purge-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!openQueue) return;
  act(`/v1/ops/dead-letters/${openQueue}/purge`, { confirm: $('#purge-confirm').value }, (r) => `${r.purged} purged from ${openQueue}`, openQueue);
});

function renderReconciliation(r) {
  const summary = $('#recon-summary');
  if (!r) {
    summary.textContent = 'No reconciliation has run yet.';
    fill('#recon-checks tbody', [], () => {});
    return;
  }
  summary.textContent = `Run ${r.id} (${r.trigger}), ${new Date(r.finishedAt).toLocaleString()}, ${r.durationMs} ms: ` +
    (r.findings === 0 ? 'Redis and Postgres agree.' : `${r.findings} found, ${r.repaired} repaired, ${r.unrepaired} to look at.`);
  summary.className = r.unrepaired > 0 ? 'bad' : r.findings > 0 ? 'warn' : 'healthy';
  fill('#recon-checks tbody', Object.entries(r.checks), (tr, [name, c]) => {
    tr.dataset.check = name;
    tr.append(cell(name), cell(num(c.checked), 'num'), cell(num(c.found), `num found${c.found > c.repaired ? ' bad' : ''}`), cell(num(c.repaired), 'num'), cell(num(c.skipped), 'num'));
  });
}

$('#recon-run').addEventListener('click', async () => {
  const said = $('#recon-result');
  said.textContent = 'Running…';
  try {
    const r = await api('POST', '/v1/ops/reconciliation');
    said.textContent = `Run ${r.id}: ${r.findings} found, ${r.repaired} repaired.`;
  } catch (err) {
    said.textContent = err.message;
  }
});

/** Reads the event stream until it ends, then connects again (backing off while it fails). */
async function follow() {
  abort?.abort();
  const mine = (abort = new AbortController());
  for (;;) {
    try {
      const res = await fetch('/v1/ops/board/stream', { headers: { 'x-api-key': key }, signal: mine.signal });
      if (res.status === 401 || res.status === 403) {
        const problem = await res.json();
        status(`Refused: ${problem.detail ?? problem.title}. Enter an operator key.`, 'error');
        $('#board').hidden = true;
        return;
      }
      if (!res.ok) throw new Error(`the stream answered ${res.status}`);
      status('Live', 'live');
      $('#board').hidden = false;
      retryMs = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let end;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = event.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data) {
            render(JSON.parse(data));
            status(`Live · ${new Date().toLocaleTimeString()}`, 'live');
          }
        }
      }
      status('The stream ended; reconnecting…', 'error');
    } catch (err) {
      if (mine.signal.aborted) return;
      status(`Disconnected (${err.message}); retrying in ${ago(retryMs)}…`, 'error');
    }
    await new Promise((r) => setTimeout(r, retryMs));
    retryMs = Math.min(10_000, retryMs * 2);
    if (mine.signal.aborted) return;
  }
}

$('#key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  key = $('#key').value.trim();
  $('#key').value = '';
  status('Connecting…');
  follow();
});
