// The demo storefront: one buyer's view of the demo drop and the demo
// auction, through the public API only. HTTP for what a buyer does and
// reads, `ws /v1/live` for stock and prices as they move, and the SSE
// stream `GET /v1/notifications/stream` (read with fetch, since an
// EventSource cannot send a bearer token) for the bell.

const $ = (id) => document.getElementById(id);
const el = {
  buyer: $('buyer'), wallet: $('wallet'), live: $('live'), bell: $('bell'), bellCount: $('bell-count'),
  inbox: $('inbox'), inboxItems: $('inbox-items'), inboxEmpty: $('inbox-empty'), notice: $('notice'),
  saleName: $('sale-name'), salePrice: $('sale-price'), saleCountdown: $('sale-countdown'), saleMeter: $('sale-meter'),
  saleStock: $('sale-stock'), saleLimit: $('sale-limit'), buy: $('buy'), purchaseStatus: $('purchase-status'),
  auctionTitle: $('auction-title'), auctionPrice: $('auction-price'), auctionLeader: $('auction-leader'), auctionBids: $('auction-bids'),
  auctionEnds: $('auction-ends'), auctionCountdown: $('auction-countdown'), auctionExtended: $('auction-extended'), auctionTerms: $('auction-terms'),
  bidForm: $('bid-form'), bidAmount: $('bid-amount'), bidCurrency: $('bid-currency'), bid: $('bid'), bidMinimum: $('bid-minimum'), bidStatus: $('bid-status'),
};

/** A refusal of the API, as its problem+json tells it. */
class Problem extends Error {
  constructor(status, body) {
    super(body?.detail ?? body?.title ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 'HTTP_' + status;
    this.body = body;
  }
}

const state = {
  demo: null,
  buyer: null, // { id, name, token }
  sale: null, // GET /v1/sales/{id}, its `live` kept current by ticks
  auction: null, // GET /v1/auctions/{id}, kept current by updates
  firstEndsAt: null, // the auction's end when the page first read it: later ones are extensions
  leadingAt: null, // the amount of this buyer's leading bid, until a higher price shows it was outbid
  session: 0, // bumped on each buyer switch: answers and streams of the previous buyer are dropped
  socket: null,
  stream: null, // AbortController of the SSE request
  lastEventId: null,
  notifications: new Map(), // id -> item
};

async function api(path, init = {}) {
  const headers = { accept: 'application/json', ...(init.headers ?? {}) };
  if (state.buyer) headers.authorization = `Bearer ${state.buyer.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { ...init, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  let body;
  try { body = text === '' ? undefined : JSON.parse(text); } catch { body = { detail: text }; }
  if (!res.ok) throw new Problem(res.status, body);
  return body;
}

// ------------------------------------------------------------- formatting
function money(minor, currency) {
  if (minor === null || minor === undefined) return '—';
  const f = new Intl.NumberFormat(undefined, { style: 'currency', currency });
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  return f.format(minor / 10 ** digits);
}
const minorDigits = (currency) => new Intl.NumberFormat(undefined, { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;

function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return (d > 0 ? `${d}d ` : '') + `${pad(h)}:${pad(m)}:${pad(sec)}`;
}

function say(node, text, tone = '', extra = '') {
  node.dataset.tone = tone;
  node.textContent = text;
  if (extra) {
    const c = document.createElement('code');
    c.textContent = ` ${extra}`;
    node.append(c);
  }
}

const refusal = (err) => (err instanceof Problem ? [err.message, err.code] : [`Could not reach the store: ${err.message}`, '']);

function notice(text) {
  el.notice.hidden = !text;
  el.notice.textContent = text ?? '';
}

// ------------------------------------------------------------------- sale
function renderSale() {
  const s = state.sale;
  if (!s) return;
  el.saleName.textContent = s.name;
  el.salePrice.textContent = money(s.unitPrice, s.currency);
  el.saleLimit.textContent = `At most ${s.perBuyerLimit} per buyer.`;
  const live = s.live ?? { available: 0, stock: s.stock, sold: 0, reserved: 0 };
  el.saleStock.textContent = `${live.available} of ${live.stock} left`;
  el.saleStock.dataset.available = String(live.available);
  el.saleMeter.style.width = `${live.stock > 0 ? (100 * live.available) / live.stock : 0}%`;
  tickSale();
}

function saleOpen() {
  const s = state.sale;
  const now = Date.now();
  return s && s.status !== 'closed' && now >= Date.parse(s.startsAt) && now < Date.parse(s.endsAt);
}

function tickSale() {
  const s = state.sale;
  if (!s) return;
  const now = Date.now();
  const starts = Date.parse(s.startsAt), ends = Date.parse(s.endsAt);
  if (s.status === 'closed') el.saleCountdown.textContent = 'Closed';
  else if (now < starts) el.saleCountdown.textContent = `Opens in ${duration(starts - now)}`;
  else if (now < ends) el.saleCountdown.textContent = `Ends in ${duration(ends - now)}`;
  else el.saleCountdown.textContent = 'Ended';
  const soldOut = (s.live?.available ?? 0) <= 0;
  el.buy.disabled = !state.buyer || !saleOpen() || soldOut || el.buy.dataset.busy === 'true';
  el.buy.textContent = soldOut && saleOpen() ? 'Sold out' : 'Buy one';
}

async function buy() {
  const session = state.session;
  el.buy.dataset.busy = 'true';
  tickSale();
  say(el.purchaseStatus, 'Sending…');
  try {
    const accepted = await api(`/v1/sales/${state.sale.id}/purchases`, {
      method: 'POST', body: { quantity: 1 }, headers: { 'idempotency-key': crypto.randomUUID() },
    });
    if (session !== state.session) return;
    say(el.purchaseStatus, 'Accepted: one is yours, settling the payment…', '', accepted.purchaseId);
    el.purchaseStatus.dataset.purchase = 'accepted';
    const final = await settled(accepted.purchaseId, session);
    if (!final) return;
    el.purchaseStatus.dataset.purchase = final.status;
    if (final.status === 'confirmed') say(el.purchaseStatus, `Confirmed: ${money(final.amount, final.currency)} paid.`, 'good', final.purchaseId);
    else say(el.purchaseStatus, `${final.status === 'failed' ? 'Failed' : 'Cancelled'}${final.reason ? `: ${final.reason}` : ''}. Your money was not taken.`, 'bad', final.purchaseId);
    refreshWallet();
  } catch (err) {
    if (session !== state.session) return;
    el.purchaseStatus.dataset.purchase = 'refused';
    say(el.purchaseStatus, ...refusalLine(err));
  } finally {
    if (session === state.session) {
      el.buy.dataset.busy = 'false';
      tickSale();
    }
  }
}

const refusalLine = (err) => {
  const [text, code] = refusal(err);
  return [text.charAt(0).toUpperCase() + text.slice(1), 'bad', code];
};

/** Follows the purchase until it is no longer pending (the orders worker settled or failed it). */
async function settled(purchaseId, session) {
  for (let wait = 200; ; wait = Math.min(wait * 1.5, 2000)) {
    await new Promise((r) => setTimeout(r, wait));
    if (session !== state.session) return undefined;
    const p = await api(`/v1/purchases/${purchaseId}`);
    if (p.status !== 'pending') return p;
  }
}

// ---------------------------------------------------------------- auction
function renderAuction() {
  const a = state.auction;
  if (!a) return;
  el.auctionTitle.textContent = a.title;
  el.auctionPrice.textContent = a.currentPrice === null ? `No bids yet (from ${money(a.startPrice, a.currency)})` : money(a.currentPrice, a.currency);
  el.auctionPrice.dataset.price = String(a.currentPrice ?? '');
  el.auctionLeader.textContent = a.leader ?? '—';
  el.auctionBids.textContent = String(a.bidCount);
  const ends = new Date(a.endsAt);
  el.auctionEnds.dateTime = ends.toISOString();
  el.auctionEnds.textContent = ends.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  if (state.firstEndsAt !== null && ends.getTime() > state.firstEndsAt) {
    el.auctionExtended.hidden = false;
    el.auctionExtended.textContent = `Extended by ${duration(ends.getTime() - state.firstEndsAt)}: a late bid moves the end (up to ${new Date(a.hardCloseAt).toLocaleString()}).`;
  }
  const terms = [`Soft close: a bid in the last ${a.softCloseSeconds} s extends it.`];
  if (a.buyNowPrice !== null && a.buyNowPrice !== undefined) terms.push(`Buy now at ${money(a.buyNowPrice, a.currency)}.`);
  if (!a.reserveMet && a.currentPrice !== null) terms.push('Reserve not met yet.');
  el.auctionTerms.textContent = terms.join(' ');
  el.bidCurrency.textContent = a.currency;
  const digits = minorDigits(a.currency);
  el.bidAmount.min = String(a.nextMinimumBid / 10 ** digits);
  el.bidAmount.step = String(1 / 10 ** digits);
  el.bidAmount.placeholder = (a.nextMinimumBid / 10 ** digits).toFixed(digits);
  el.bidMinimum.textContent = `Next bid at least ${money(a.nextMinimumBid, a.currency)}.`;
  tickAuction();
}

function tickAuction() {
  const a = state.auction;
  if (!a) return;
  const left = Date.parse(a.endsAt) - Date.now();
  const open = a.status === 'open' && left > 0;
  el.auctionCountdown.textContent = a.status === 'cancelled' ? '(cancelled)' : open ? `(in ${duration(left)})` : '(closed)';
  const usable = open && !!state.buyer && el.bid.dataset.busy !== 'true';
  el.bid.disabled = !usable;
  el.bidAmount.disabled = !open || !state.buyer;
}

/** A live update of the auction topic (docs/live.md): the fields it carries replace the page's. */
function auctionUpdate(u) {
  const a = state.auction;
  if (!a || u.auctionId !== a.id) return;
  // The snapshot and an update can cross; the bid count tells the newer.
  if (u.bidCount < a.bidCount && u.status === a.status) return;
  Object.assign(a, {
    currentPrice: u.price, nextMinimumBid: u.nextMinimum, leader: u.leader, bidCount: u.bidCount,
    endsAt: new Date(u.endsAt).toISOString(), status: u.status, reserveMet: u.reserveMet,
  });
  // The page bids without a maximum, so a price above its leading bid is someone else's.
  if (state.leadingAt !== null && u.price !== null && u.price > state.leadingAt) {
    state.leadingAt = null;
    el.bidStatus.dataset.bid = 'outbid';
    say(el.bidStatus, `Outbid: the price is now ${money(u.price, a.currency)}. Bid again?`, 'bad');
  }
  renderAuction();
}

async function placeBid(ev) {
  ev.preventDefault();
  const a = state.auction;
  const session = state.session;
  const value = Number(el.bidAmount.value);
  if (el.bidAmount.value === '' || !Number.isFinite(value) || value <= 0) {
    say(el.bidStatus, `Enter an amount of at least ${money(a.nextMinimumBid, a.currency)}.`, 'bad');
    el.bidAmount.focus();
    return;
  }
  const amount = Math.round(value * 10 ** minorDigits(a.currency));
  el.bid.dataset.busy = 'true';
  tickAuction();
  say(el.bidStatus, 'Sending…');
  try {
    const answer = await api(`/v1/auctions/${a.id}/bids`, { method: 'POST', body: { amount }, headers: { 'idempotency-key': crypto.randomUUID() } });
    if (session !== state.session) return;
    el.bidStatus.dataset.bid = answer.leading ? 'leading' : 'outbid';
    state.leadingAt = answer.leading ? amount : null;
    if (answer.leading) say(el.bidStatus, `You lead at ${money(answer.currentPrice, a.currency)}.`, 'good', answer.bidId);
    else say(el.bidStatus, `Accepted, but another buyer's higher maximum outbid it: now ${money(answer.currentPrice, a.currency)}.`, 'bad', answer.bidId);
    el.bidAmount.value = '';
  } catch (err) {
    if (session !== state.session) return;
    el.bidStatus.dataset.bid = 'refused';
    say(el.bidStatus, ...refusalLine(err));
  } finally {
    if (session === state.session) {
      el.bid.dataset.busy = 'false';
      tickAuction();
    }
  }
}

// ------------------------------------------------------------- live (ws)
function connectLive(session, attempt = 0) {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/live`;
  const ws = new WebSocket(url);
  state.socket = ws;
  setLive('connecting');
  ws.addEventListener('open', () => {
    if (session !== state.session) return ws.close(1000);
    attempt = 0;
    // The topics are public; auth makes the connection this buyer's (the user topic, not used here: the bell reads SSE).
    ws.send(JSON.stringify({ op: 'auth', token: state.buyer.token }));
    ws.send(JSON.stringify({ op: 'subscribe', topic: `sale/${state.sale.id}` }));
    ws.send(JSON.stringify({ op: 'subscribe', topic: `auction/${state.auction.id}` }));
  });
  ws.addEventListener('message', (ev) => {
    if (session !== state.session) return;
    const frame = JSON.parse(ev.data);
    if (frame.op === 'subscribed') {
      setLive('live');
      if (frame.topic.startsWith('sale/') && frame.snapshot) saleTick(frame.snapshot);
      if (frame.topic.startsWith('auction/') && frame.snapshot) auctionUpdate(frame.snapshot);
    } else if (frame.op === 'error') {
      notice(`Live updates: ${frame.detail ?? frame.code}`);
    } else if (frame.topic?.startsWith('sale/')) {
      saleTick(frame.data);
    } else if (frame.topic?.startsWith('auction/')) {
      auctionUpdate(frame.data);
    }
  });
  ws.addEventListener('close', () => {
    if (session !== state.session) return;
    setLive('offline');
    // A node shutting down (1001) or a lost network: come back, slowly if it keeps failing.
    setTimeout(() => session === state.session && connectLive(session, attempt + 1), Math.min(500 * 2 ** attempt, 10_000));
  });
}

function saleTick(t) {
  const s = state.sale;
  s.live = { stock: t.stock, available: t.available, reserved: t.reserved, sold: t.sold };
  if (t.status === 'closed') s.status = 'closed';
  renderSale();
}

function setLive(what) {
  el.live.dataset.state = what;
  el.live.textContent = what === 'live' ? 'live' : what === 'offline' ? 'offline, reconnecting…' : 'connecting…';
}

// ------------------------------------------------------ notifications (SSE)
function renderInbox() {
  const items = [...state.notifications.values()].sort((x, y) => Date.parse(y.createdAt) - Date.parse(x.createdAt));
  el.inboxItems.replaceChildren(...items.map((n) => {
    const li = document.createElement('li');
    li.dataset.type = n.type;
    const title = document.createElement('strong');
    title.textContent = n.title;
    const body = document.createElement('span');
    body.textContent = n.body;
    const when = document.createElement('time');
    when.dateTime = n.createdAt;
    when.textContent = new Date(n.createdAt).toLocaleTimeString();
    li.append(title, body, document.createElement('br'), when);
    return li;
  }));
  el.inboxEmpty.hidden = items.length > 0;
}

function setUnread(n) {
  el.bellCount.textContent = n > 99 ? '99+' : String(n);
  el.bellCount.dataset.count = String(n);
  el.bell.setAttribute('aria-label', `Notifications, ${n} new`);
}

/** The inbox's newest page and its unread count: the bell's truth (an outbid item is updated in place, unread again). */
async function readInbox(session) {
  const page = await api('/v1/notifications?limit=20');
  if (session !== state.session) return;
  for (const n of page.items) state.notifications.set(n.id, n);
  renderInbox();
  setUnread(page.unread);
}

/**
 * Follows the buyer's SSE stream. The first connection starts with what
 * comes next, and the inbox is read once it is open, so nothing falls
 * between the two (what both carry is one item, by id); a reconnection
 * resumes after the last id seen (Last-Event-ID), so none is lost.
 */
async function followNotifications(session, attempt = 0) {
  const controller = new AbortController();
  state.stream = controller;
  try {
    const headers = { authorization: `Bearer ${state.buyer.token}`, accept: 'text/event-stream' };
    if (state.lastEventId) headers['last-event-id'] = state.lastEventId;
    const res = await fetch('/v1/notifications/stream', { headers, signal: controller.signal });
    if (!res.ok) {
      const body = await res.json().catch(() => undefined);
      throw new Problem(res.status, body);
    }
    attempt = 0;
    if (!state.lastEventId) {
      await readInbox(session);
      if (session !== state.session) return;
      state.lastEventId = newestId() ?? null;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id = null, data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('id:')) id = line.slice(3).trim();
          else if (line.startsWith('data:')) data += line.slice(5).trimStart();
        }
        if (data === '' || session !== state.session) continue;
        if (id) state.lastEventId = id;
        const item = JSON.parse(data);
        state.notifications.set(item.id, item);
        renderInbox();
        readInbox(session).catch(() => {});
      }
    }
  } catch (err) {
    if (controller.signal.aborted || session !== state.session) return;
    controller.abort(); // the stream may be open while the inbox read failed
    // A refusal other than "busy, retry" will not change by retrying.
    if (err instanceof Problem && err.status !== 503) return notice(`Notifications: ${err.message}`);
  }
  if (session !== state.session) return;
  setTimeout(() => session === state.session && followNotifications(session, attempt + 1), Math.min(500 * 2 ** attempt, 10_000));
}

/** The newest notification id the page holds (ids follow the inbox's order). */
const newestId = () => [...state.notifications.keys()].sort((x, y) => Number(y.slice(4)) - Number(x.slice(4)))[0];

async function toggleInbox() {
  const open = el.inbox.hidden;
  el.inbox.hidden = !open;
  el.bell.setAttribute('aria-expanded', String(open));
  if (open) {
    try {
      await api('/v1/notifications/opened', { method: 'POST' });
      setUnread(0);
    } catch (err) {
      notice(refusal(err)[0]);
    }
  }
}

// ------------------------------------------------------------------ buyer
async function refreshWallet() {
  const session = state.session;
  try {
    const w = await api('/v1/wallet');
    if (session !== state.session) return;
    const lines = w.balances.map((b) => money(b.balance, b.currency));
    el.wallet.textContent = lines.length > 0 ? `Wallet ${lines.join(', ')}` : 'Wallet empty';
  } catch {
    el.wallet.textContent = '';
  }
}

/** Acts as `buyer`: the previous buyer's live channels close and this one's open. */
async function actAs(buyer) {
  state.session += 1;
  const session = state.session;
  state.buyer = buyer;
  sessionStorage.setItem('stampede-demo-buyer', buyer.id);
  state.socket?.close(1000);
  state.stream?.abort();
  state.notifications.clear();
  state.lastEventId = null;
  for (const s of [el.purchaseStatus, el.bidStatus]) say(s, '');
  delete el.purchaseStatus.dataset.purchase;
  delete el.bidStatus.dataset.bid;
  el.buy.dataset.busy = 'false';
  el.bid.dataset.busy = 'false';
  state.leadingAt = null;
  renderInbox();
  setUnread(0);
  notice('');
  connectLive(session);
  refreshWallet();
  followNotifications(session);
  tickSale();
  tickAuction();
}

async function start() {
  try {
    state.demo = await api('/v1/demo');
    [state.sale, state.auction] = await Promise.all([api(`/v1/sales/${state.demo.saleId}`), api(`/v1/auctions/${state.demo.auctionId}`)]);
  } catch (err) {
    notice(`The demo is not available: ${refusal(err)[0]}`);
    return;
  }
  state.firstEndsAt = Date.parse(state.auction.endsAt);
  renderSale();
  renderAuction();
  el.buyer.replaceChildren(...state.demo.buyers.map((b) => new Option(`${b.name} (${b.id})`, b.id)));
  el.buyer.disabled = false;
  const remembered = state.demo.buyers.find((b) => b.id === sessionStorage.getItem('stampede-demo-buyer'));
  const first = remembered ?? state.demo.buyers[0];
  if (!first) return notice('The demo has no buyers.');
  el.buyer.value = first.id;
  el.buyer.addEventListener('change', () => actAs(state.demo.buyers.find((b) => b.id === el.buyer.value)));
  el.buy.addEventListener('click', buy);
  el.bidForm.addEventListener('submit', placeBid);
  el.bell.addEventListener('click', toggleInbox);
  setInterval(() => { tickSale(); tickAuction(); }, 1000);
  document.body.dataset.ready = 'true';
  await actAs(first);
}

start();
