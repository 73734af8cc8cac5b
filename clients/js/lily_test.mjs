// Unit tests of lily.js with fake WebSocket, EventSource, fetch and
// storage, run by `node --test` (js_test.go runs them from go test). The
// fakes record what the client writes and let each test play the server.
import test from 'node:test'
import assert from 'node:assert/strict'
import { connect, encode, decode, some, none, option, dict } from './lily.js'

class FakeSocket {
  static all = []
  constructor(url) { this.url = url; this.sent = []; this.closed = false; FakeSocket.all.push(this) }
  send(data) { this.sent.push(JSON.parse(data)) }
  close() { this.closed = true; queueMicrotask(() => this.onclose?.({ code: 1000 })) }
  // the server's side
  open() { this.onopen() }
  recv(frame) { this.onmessage({ data: JSON.stringify(frame) }) }
  drop(code = 1006) { this.onclose({ code }) }
}
class FakeEventSource {
  static all = []
  constructor(url, opts) { this.url = url; this.opts = opts; this.closed = false; FakeEventSource.all.push(this) }
  close() { this.closed = true }
  open() { this.onopen() }
  recv(frame) { this.onmessage({ data: JSON.stringify(frame) }) }
}
const posts = [] // {url, body, resolve, reject}
globalThis.WebSocket = FakeSocket
globalThis.EventSource = FakeEventSource
globalThis.fetch = (url, init) => new Promise((resolve, reject) => posts.push({ url, init, body: JSON.parse(init.body), resolve, reject }))

const memory = () => { const m = new Map(); return { getItem: k => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), m } }
const tick = () => new Promise(r => setTimeout(r, 0))
async function until(cond, what) {
  for (let i = 0; i < 2000; i++) { if (cond()) return; await tick() }
  assert.fail('timed out waiting for ' + what)
}

// The counter kind, in lily's automatic format.
const init = encode('Counter', 0)
const update = (m, msg) => {
  const [tag, n] = decode(msg)
  switch (tag) {
    case 'Increment': return encode('Counter', m[0] + 1)
    case 'Add': return encode('Counter', m[0] + n)
    case 'Refuse': throw new Error('refused')
  }
  return m
}
const inc = encode('Increment')
const fast = { base: 1, max: 5 }

function start(opts = {}) {
  FakeSocket.all.length = 0
  FakeEventSource.all.length = 0
  posts.length = 0
  const storage = opts.storage || memory()
  const c = connect('http://node.test/ws/counter/t', { init, update, storage, backoff: fast, ...opts })
  const changes = []
  c.subscribe(v => changes.push(v))
  return { c, storage, changes, ws: () => FakeSocket.all.at(-1) }
}
const count = c => c.get().model[0]
const messages = frames => frames.filter(f => f.type == 'client_message')

test('automatic format helpers', () => {
  assert.deepEqual(encode('Add', 5), { _: 'Add', 0: 5 })
  assert.equal(JSON.stringify(encode('Add', 5)), '{"0":5,"_":"Add"}')
  assert.deepEqual(decode({ _: 'Rename', 0: 2, 1: 'x' }), ['Rename', 2, 'x'])
  assert.deepEqual(some(3), { _: 'Some', 0: 3 })
  assert.equal(option(some(3)), 3)
  assert.equal(option(none), undefined)
  assert.deepEqual(dict(new Map([['b', 2], ['a', 1]])), [['a', 1], ['b', 2]])
  assert.deepEqual(new Map(dict(new Map([['a', 1]]))), new Map([['a', 1]]))
})

test('sends pending messages with ids, then a resync, and confirms them', async () => {
  const { c, ws } = start()
  c.send(inc); c.send(encode('Add', 4))
  assert.equal(count(c), 5)
  assert.equal(c.get().pending, 2)
  await tick()
  assert.match(ws().url, /^ws:\/\/node\.test\/ws\/counter\/t\?client_id=/)
  ws().open()
  await tick()
  assert.deepEqual(ws().sent, [
    { type: 'client_message', payload: inc, id: 1 },
    { type: 'client_message', payload: encode('Add', 4), id: 2 },
    { type: 'resync', after_sequence: 0 },
  ])
  ws().recv({ type: 'acknowledge', sequence: 1, id: 1 })
  ws().recv({ type: 'acknowledge', sequence: 2, id: 2 })
  ws().recv({ type: 'snapshot', sequence: 2, state: encode('Counter', 5), epoch: 'e1' })
  await c.ready
  await tick()
  assert.deepEqual({ ...c.get(), model: count(c) }, { model: 5, confirmed: encode('Counter', 5), sequence: 2, pending: 0, state: 'connected', transport: 'ws' })
  c.send(inc)
  await tick()
  assert.deepEqual(ws().sent.at(-1), { type: 'client_message', payload: inc, id: 3 })
  c.close()
})

test('a refused message throws and changes nothing', async () => {
  const { c } = start()
  assert.throws(() => c.send(encode('Refuse')), /refused/)
  assert.equal(c.get().pending, 0)
  c.close()
  assert.throws(() => c.send(inc), /closed/)
})

// Puts a client in sync at sequence seq, count n, epoch e1.
async function synced(seq = 0, n = 0, opts) {
  const t = start(opts)
  await tick()
  t.ws().open()
  t.ws().recv({ type: 'snapshot', sequence: seq, state: encode('Counter', n), epoch: 'e1' })
  await t.c.ready
  await tick()
  t.ws().sent.length = 0
  return t
}

test('an acknowledgement of id N settles every earlier id', async () => {
  const { c, ws } = await synced()
  c.send(inc); c.send(inc); c.send(inc)
  await tick()
  // The client fell behind: the server kept only the newest acknowledgement.
  ws().recv({ type: 'acknowledge', sequence: 3, id: 3 })
  await tick()
  assert.equal(c.get().pending, 0)
  assert.equal(count(c), 3, 'the unsure messages stay in the local model')
  assert.deepEqual(ws().sent.at(-1), { type: 'resync', after_sequence: 0, delta: true, epoch: 'e1' })
  ws().recv({ type: 'snapshot', sequence: 3, state: encode('Counter', 3), epoch: 'e1' })
  await tick()
  assert.deepEqual([count(c), c.get().sequence], [3, 3])
  c.close()
})

test('an acknowledgement with sequence 0 is unsure until the resync', async () => {
  const { c, ws } = await synced(4, 4)
  c.send(inc)
  await tick()
  ws().recv({ type: 'acknowledge', sequence: 0, id: 1 })
  await tick()
  assert.deepEqual([count(c), c.get().pending, c.get().sequence], [5, 0, 4])
  assert.equal(ws().sent.at(-1).type, 'resync')
  ws().recv({ type: 'server_message', sequence: 5, payload: inc }) // delta replay of its own message
  ws().recv({ type: 'synced', sequence: 5, epoch: 'e1' })
  await tick()
  assert.deepEqual([count(c), c.get().sequence], [5, 5])
  c.close()
})

test('other clients\' messages move the confirmed model under pending ones', async () => {
  const { c, ws } = await synced()
  c.send(encode('Add', 10))
  await tick()
  ws().recv({ type: 'server_message', sequence: 1, payload: inc })
  await tick()
  assert.deepEqual([c.get().confirmed[0], count(c)], [1, 11])
  ws().recv({ type: 'acknowledge', sequence: 2, id: 1 })
  await tick()
  assert.deepEqual([c.get().confirmed[0], count(c), c.get().sequence], [11, 11, 2])
  ws().recv({ type: 'server_message', sequence: 2, payload: inc }) // already applied
  assert.equal(count(c), 11)
  c.close()
})

test('a gap asks for a delta resync; a delta ending elsewhere asks for a snapshot', async () => {
  const { c, ws } = await synced(2, 2)
  ws().recv({ type: 'server_message', sequence: 4, payload: inc })
  await tick()
  assert.deepEqual(ws().sent, [{ type: 'resync', after_sequence: 2, delta: true, epoch: 'e1' }])
  ws().recv({ type: 'server_message', sequence: 3, payload: inc })
  ws().recv({ type: 'synced', sequence: 4, epoch: 'e1' })
  await tick()
  assert.deepEqual(ws().sent.at(-1), { type: 'resync', after_sequence: 3 })
  ws().recv({ type: 'snapshot', sequence: 4, state: encode('Counter', 4), epoch: 'e2' })
  await tick()
  assert.deepEqual([count(c), c.get().sequence], [4, 4])
  c.close()
})

test('an error frame drops the message it answers', async () => {
  const { c, ws, changes } = await synced()
  c.send(encode('Add', 2)); c.send(encode('Add', 3))
  await tick()
  ws().recv({ type: 'error', code: 'rejected', reason: 'no', id: 1 })
  await tick()
  assert.deepEqual([count(c), c.get().pending], [3, 1])
  const e = changes.at(-1).error
  assert.deepEqual([e.code, e.id, e.message], ['rejected', 1, encode('Add', 2)])
  ws().recv({ type: 'error', code: 'bad_frame', reason: 'x' })
  await tick()
  assert.equal(changes.at(-1).error.code, 'bad_frame')
  c.close()
})

test('reconnects with backoff, resends with the same ids, resyncs by delta', async () => {
  const { c, ws, changes } = await synced(1, 1)
  c.send(inc)
  await tick()
  const first = ws()
  first.drop()
  assert.equal(c.get().state, 'reconnecting')
  c.send(inc) // offline
  await until(() => FakeSocket.all.length == 2, 'a new socket')
  ws().open()
  await tick()
  assert.deepEqual(ws().sent, [
    { type: 'client_message', payload: inc, id: 1 },
    { type: 'client_message', payload: inc, id: 2 },
    { type: 'resync', after_sequence: 1, delta: true, epoch: 'e1' },
  ])
  ws().recv({ type: 'acknowledge', sequence: 2, id: 1 })
  ws().recv({ type: 'acknowledge', sequence: 3, id: 2 })
  ws().recv({ type: 'synced', sequence: 3, epoch: 'e1' })
  first.recv({ type: 'server_message', sequence: 4, payload: inc }) // from the old socket: ignored
  await tick()
  assert.deepEqual([count(c), c.get().pending, c.get().sequence], [3, 0, 3])
  assert.ok(changes.some(v => v.state == 'reconnecting'))
  c.close()
})

test('backoff: base 1 s, multiplier 2, max 30 s, jitter 0.25', async () => {
  const delays = []
  const realTimeout = globalThis.setTimeout, realRandom = Math.random
  globalThis.setTimeout = (fn, d) => { if (d > 0) delays.push(d); return realTimeout(fn, 0) }
  Math.random = () => 1 // the top of the jitter range
  try {
    const { c, ws } = start({ backoff: undefined, transport: 'ws' })
    for (let i = 0; i < 7; i++) {
      await until(() => FakeSocket.all.length == i + 1, 'socket ' + i)
      ws().drop()
    }
    c.close()
  } finally {
    globalThis.setTimeout = realTimeout
    Math.random = realRandom
  }
  assert.deepEqual(delays, [1250, 2500, 5000, 10000, 20000, 30000, 30000])
})

test('the queue, the client id and the id counter survive a reload', async () => {
  const storage = memory()
  const a = await synced(0, 0, { storage })
  a.c.send(inc); a.c.send(inc)
  await tick()
  a.ws().recv({ type: 'acknowledge', sequence: 1, id: 1 })
  a.c.offline()
  a.c.send(encode('Add', 5))
  await tick()
  const saved = JSON.parse([...storage.m.values()][0])
  assert.deepEqual([saved.c, saved.n, saved.p.map(p => p[0])], [a.c.clientId, 4, [2, 3]])
  // A new page of the same tab: same client id, counter and queue.
  const b = start({ storage })
  assert.equal(b.c.clientId, a.c.clientId)
  assert.equal(b.c.get().pending, saved.p.length)
  await tick()
  b.ws().open()
  await tick()
  const ids = messages(b.ws().sent).map(f => f.id)
  assert.deepEqual(ids, saved.p.map(p => p[0]))
  b.c.send(inc)
  await tick()
  assert.equal(messages(b.ws().sent).at(-1).id, 4, 'the counter continues')
  a.c.close()
  b.c.close()
})

test('offline keeps editing locally; online flushes', async () => {
  const { c, ws } = await synced()
  c.offline()
  assert.equal(c.get().state, 'offline')
  assert.ok(ws().closed)
  c.send(inc); c.send(inc)
  await tick()
  assert.equal(FakeSocket.all.length, 1, 'no reconnect while offline')
  assert.deepEqual([count(c), c.get().pending], [2, 2])
  c.online()
  ws().open()
  await tick()
  assert.deepEqual(messages(ws().sent).map(f => f.id), [1, 2])
  c.close()
})

test('close 4404 stops the client', async () => {
  const { c, ws, changes } = start()
  await tick()
  ws().drop(4404)
  await tick()
  assert.equal(c.get().state, 'closed')
  assert.equal(changes.at(-1).error.code, 'unknown_store')
})

test('falls back to SSE + POST after two WebSockets that delivered nothing', async () => {
  const { c, ws } = start()
  await tick()
  ws().drop()
  await until(() => FakeSocket.all.length == 2, 'a second socket')
  ws().open() // opens, then a proxy cuts it before any frame
  ws().drop()
  await until(() => FakeEventSource.all.length == 1, 'an event source')
  const es = FakeEventSource.all[0]
  assert.match(es.url, /^http:\/\/node\.test\/ws\/counter\/t\?client_id=/)
  c.send(inc); c.send(inc)
  es.open()
  await tick()
  assert.equal(posts.length, 1)
  assert.deepEqual(posts[0].body.map(f => f.id || f.type), [1, 2, 'resync'])
  assert.equal(posts[0].url, es.url)
  c.send(inc)
  await tick()
  assert.equal(posts.length, 1, 'one POST in flight at a time')
  posts[0].resolve({ ok: true })
  await until(() => posts.length == 2, 'the second POST')
  assert.deepEqual(posts[1].body.map(f => f.id), [3])
  // The second POST fails: the client reconnects and resends from id 1.
  posts[1].reject(new TypeError('network'))
  await until(() => FakeEventSource.all.length == 2, 'a new event source')
  assert.ok(es.closed)
  FakeEventSource.all[1].open()
  await until(() => posts.length == 3, 'the resend')
  assert.deepEqual(posts[2].body.map(f => f.id || f.type), [1, 2, 3, 'resync'])
  FakeEventSource.all[1].recv({ type: 'acknowledge', sequence: 3, id: 3 })
  FakeEventSource.all[1].recv({ type: 'snapshot', sequence: 3, state: encode('Counter', 3), epoch: 'e' })
  await c.ready
  assert.deepEqual([count(c), c.get().pending, c.get().transport], [3, 0, 'sse'])
  c.close()
})

test('a WebSocket that delivered frames never triggers the fallback', async () => {
  const { c, ws } = await synced()
  for (let i = 1; i <= 3; i++) {
    ws().drop()
    await until(() => FakeSocket.all.length == i + 1, 'socket ' + i)
    ws().open()
    ws().recv({ type: 'snapshot', sequence: 0, state: init, epoch: 'e1' })
  }
  assert.equal(c.get().transport, 'ws')
  c.close()
})
