// lily.js: browser client of lily for Go; API in README.md beside it.
// Like client/sync.go: local = confirmed + unsure + pending, in order.

const V = (tag, ...fields) => Object.assign({ _: tag }, fields)

// lily's automatic format: {_: tag, 0: field0, ...}
export const encode = V
export const decode = v => { const a = [v._]; for (let i = 0; i in v; i++) a.push(v[i]); return a }
export const some = x => V('Some', x)
export const none = V('None')
export const option = v => v[0]
export const dict = m => [...m].sort(([a], [b]) => a < b ? -1 : +(a > b))

export function connect(url, o) {
  const G = globalThis, u = new URL(url, G.location?.href), up = o.update
  const key = 'lily:' + u.pathname, st = 'storage' in o ? o.storage : G.sessionStorage
  const b = { base: 1e3, max: 3e4, multiplier: 2, jitter: .25, ...o.backoff }
  let saved = {}
  try { saved = JSON.parse(st.getItem(key)) || {} } catch {}
  // client id, id counter and pending messages are saved together
  const cid = saved.c || o.clientId || crypto.getRandomValues(new Uint32Array(4)).join('_')
  let next = saved.n || (o.clientId && !saved.c ? Date.now() * 1e3 : 1)
  u.protocol = u.protocol.replace('ws', 'http')
  u.searchParams.set('client_id', cid)
  const href = u.href, wsURL = href.replace(/^http/, 'ws')
  const tryUp = (m, msg) => { try { return up(m, msg) } catch { return m } }
  let conf = o.init, local = conf, seq = 0, epoch = '', pend = [], unsure = []
  for (const [id, msg] of saved.p || []) pend.push({ id, msg }), local = tryUp(local, msg)
  let state = 'connecting', tr = o.transport == 'sse' ? 'sse' : 'ws', fails = 0, attempt = 0
  let cur, sent, syncing, want, timer, paused, closed, dirty, queued, saveT, ready
  const subs = new Set(), events = []

  const save = () => {
    clearTimeout(saveT); saveT = 0
    try { st?.setItem(key, JSON.stringify({ c: cid, n: next, p: pend.map(p => [p.id, p.msg]) })) } catch {}
  }
  const saveSoon = () => saveT ||= setTimeout(save, 300)
  const view = () => ({ model: local, confirmed: conf, sequence: seq, pending: pend.length, state, transport: tr })
  const recompute = () => { local = conf; for (const x of unsure.concat(pend)) local = tryUp(local, x.msg) }
  const resync = d => { if (!syncing && cur?.open) syncing = 1, want = d ? 2 : 1 }
  const later = e => { e && events.push(e); queued ||= (queueMicrotask(run), 1) }

  // once per task: save, write unsent messages then a resync, notify
  function run() {
    queued = 0
    if (dirty) dirty = 0, save()
    if (cur?.open) {
      let i = pend.length
      while (i && pend[i - 1].id > sent) i--
      const out = pend.slice(i).map(p => ({ type: 'client_message', payload: p.msg, id: sent = p.id }))
      if (want) out.push({ type: 'resync', after_sequence: seq, ...(want > 1 && epoch && { delta: true, epoch }) }), want = 0
      out.length && cur.send(out)
    }
    const v = view()
    for (const e of events.length ? events.splice(0) : [{}]) for (const f of subs) try { f({ ...v, ...e }) } catch (x) { G.reportError?.(x) }
  }

  function recv(s, data) {
    if (s != cur) return
    let f
    try { f = JSON.parse(data) } catch { return resync(), later() }
    const t = f.type, n = f.sequence
    fails = 0
    if (t == 'acknowledge') {
      if (!pend.length || f.id < pend[0].id) n > seq && resync(1)
      else {
        // ack N settles earlier ids too: unsure until the resync answers
        while (pend[0]?.id < f.id) unsure.push({ msg: pend.shift().msg }), resync(1)
        if (pend[0]?.id == f.id) {
          const p = pend.shift()
          let ok
          if (n && n == seq + 1) try { conf = up(conf, p.msg); seq = n; ok = 1 } catch {}
          if (!ok) unsure.push({ msg: p.msg, seq: n }), resync(1)
          else if (unsure.length) recompute()
        }
        saveSoon()
      }
    } else if (t == 'server_message') {
      if (n > seq + 1) resync(1)
      else if (n == seq + 1) try {
        conf = up(conf, f.payload); seq = n
        unsure = unsure.filter(x => x.seq != n)
        pend.length + unsure.length ? recompute() : local = conf
      } catch { resync() }
    } else if (t == 'snapshot') {
      conf = f.state; seq = n; epoch = f.epoch || ''; unsure = []
      synced(); recompute()
    } else if (t == 'synced') {
      if (n != seq) syncing = 0, resync()
      else { epoch = f.epoch || ''; synced(); if (unsure.length) unsure = [], recompute() }
    } else if (t == 'error') {
      const i = f.id ? pend.findIndex(p => p.id == f.id) : -1
      if (i >= 0) f.message = pend.splice(i, 1)[0].msg, recompute(), saveSoon()
      return later({ error: f })
    } else if (t == 'push') return later({ push: f.payload })
    later()
  }
  const synced = () => { syncing = 0; attempt = 0; ready() }

  function opened(s) {
    if (s != cur) return
    s.open = 1; sent = 0; syncing = 0; state = 'connected'
    resync(1); later()
  }
  function lost(s) {
    if (s != cur) return
    cur = null
    if (paused || closed) return
    state = 'reconnecting'
    const d = Math.min(b.max, b.base * b.multiplier ** attempt++)
    timer = setTimeout(open, Math.min(b.max, d * (1 + b.jitter * (2 * Math.random() - 1))))
    later()
  }
  const stop = e => {
    closed = 1; clearTimeout(timer); cur?.close(); cur = null; state = 'closed'; save(); later(e)
  }

  function openWS() {
    const w = new WebSocket(wsURL)
    const s = { send: fs => fs.map(f => w.send(JSON.stringify(f))), close: () => w.close() }
    w.onopen = () => opened(s)
    w.onmessage = e => { s.got = 1; recv(s, e.data) }
    // no frame from two WebSockets in a row: fall back to SSE + POST
    w.onclose = e => s == cur && (e.code == 4404 ? stop({ error: { code: 'unknown_store' } })
      : (!s.got && o.transport != 'ws' && ++fails > 1 && (tr = 'sse'), lost(s)))
    return s
  }
  function openSSE() {
    const E = new EventSource(href, { withCredentials: true })
    let q = [], busy
    const s = { send: fs => { q = q.concat(fs); post() }, close: () => E.close() }
    // one POST in flight keeps order; a failure reconnects and resends
    const post = () => {
      if (busy || !q.length || s != cur) return
      busy = 1
      fetch(href, { method: 'POST', credentials: 'include', body: JSON.stringify(q.splice(0, 256)) })
        .then(r => { if (!r.ok) throw r; busy = 0; post() })
        .catch(() => { E.close(); lost(s) })
    }
    E.onopen = () => opened(s)
    E.onmessage = e => recv(s, e.data)
    E.onerror = () => { E.close(); lost(s) }
    return s
  }
  function open() { timer = 0; cur = tr == 'sse' ? openSSE() : openWS() }

  G.addEventListener?.('pagehide', save)
  G.addEventListener?.('online', () => timer && (clearTimeout(timer), attempt = 0, open()))
  open()
  return {
    clientId: cid,
    ready: new Promise(r => ready = r),
    get: view,
    send(msg) {
      if (closed) throw Error('lily: closed')
      local = up(local, msg) // a refusal throws
      pend.push({ id: next, msg }); dirty = 1; later()
      return next++
    },
    subscribe(f) { subs.add(f); f(view()); return () => subs.delete(f) },
    offline() { paused = 1; clearTimeout(timer); const s = cur; cur = null; s?.close(); state = 'offline'; later() },
    online() { if (paused && !closed) paused = 0, attempt = 0, state = 'reconnecting', open(), later() },
    close: () => stop(),
  }
}
