// The demo page: the counter and todo kinds of lilyd in one page, each kept
// in sync by lily.js. Query parameters: ?store=NAME picks the stores
// (default "demo"), ?transport=ws|sse forces a transport (default: a
// WebSocket, falling back to SSE + POST when WebSockets fail).
import { connect, encode as V } from '/lily.js'
import { counter, todo } from '/kinds.js'

const params = new URLSearchParams(location.search)
const name = params.get('store') || 'demo'
const transport = params.get('transport') || undefined
const $ = id => document.getElementById(id)

const stores = {
  counter: connect(`/ws/counter/${encodeURIComponent(name)}`, { ...counter, transport }),
  todo: connect(`/ws/todo/${encodeURIComponent(name)}`, { ...todo, transport }),
}
// For tests and the curious: lilyDemo.stores.counter.get() in the console.
const stats = { firstSync: {} }
window.lilyDemo = { stores, stats }
for (const [kind, store] of Object.entries(stores)) {
  store.ready.then(() => { stats.firstSync[kind] = performance.now() })
  $(kind + '-store').textContent = `/ws/${kind}/${name}`
}
$('client-ids').textContent = Object.values(stores).map(s => s.clientId.slice(0, 8) + '…').join(', ')

// send applies msg at once; a message the update function refuses (the
// todo validator) is shown and not sent.
function send(kind, msg) {
  try {
    stores[kind].send(msg)
    $(kind + '-error').textContent = ''
  } catch (e) {
    $(kind + '-error').textContent = e.message
  }
}

function showStatus(kind, v) {
  const state = $(kind + '-state')
  state.textContent = v.state
  state.dataset.state = v.state
  $(kind + '-transport').textContent = v.transport === 'sse' ? 'SSE + POST' : 'WebSocket'
  $(kind + '-seq').textContent = v.sequence
  $(kind + '-pending').textContent = v.pending
  if (v.error) $(kind + '-error').textContent = `${v.error.code}: ${v.error.reason || 'refused'}`
}

// Counter.
stores.counter.subscribe(v => {
  showStatus('counter', v)
  $('counter-value').textContent = v.model[0]
})
$('counter-inc').onclick = () => send('counter', V('Increment'))
$('counter-dec').onclick = () => send('counter', V('Decrement'))
$('counter-add').onclick = () => send('counter', V('Add', 10))
$('counter-reset').onclick = () => send('counter', V('Reset'))

// Todo.
let editing = null // the id of the item being renamed; the list is not redrawn under it
let lastTodo = stores.todo.get().model
stores.todo.subscribe(v => {
  showStatus('todo', v)
  lastTodo = v.model
  if (editing === null) renderTodos()
})
$('todo-form').onsubmit = e => {
  e.preventDefault()
  const input = $('todo-title')
  send('todo', V('AddItem', input.value.trim()))
  if (!$('todo-error').textContent) input.value = ''
}

function renderTodos() {
  const items = lastTodo[0]
  const list = $('todo-list')
  if (!items.length) {
    const empty = document.createElement('li')
    empty.className = 'empty'
    empty.textContent = 'Nothing to do yet.'
    return list.replaceChildren(empty)
  }
  list.replaceChildren(...items.map(it => todoItem(it[0], it[1], it[2])))
}

// todoItem is one item: a checkbox that toggles it, its title (double-click
// to rename) and a button that removes it.
function todoItem(id, title, done) {
  const li = document.createElement('li')
  li.dataset.id = id
  li.classList.toggle('done', done)
  const box = document.createElement('input')
  box.type = 'checkbox'
  box.checked = done
  box.setAttribute('aria-label', 'Done')
  box.onchange = () => send('todo', V('Toggle', id))
  const text = document.createElement('span')
  text.className = 'title'
  text.textContent = title
  text.title = 'Double-click to rename'
  text.ondblclick = () => rename(li, text, id, title)
  const remove = document.createElement('button')
  remove.className = 'remove'
  remove.textContent = '×'
  remove.setAttribute('aria-label', 'Remove')
  remove.onclick = () => send('todo', V('Remove', id))
  li.append(box, text, remove)
  return li
}

function rename(li, text, id, title) {
  editing = id
  const input = document.createElement('input')
  input.type = 'text'
  input.value = title
  let finished = false
  const finish = commit => {
    if (finished) return
    finished = true
    editing = null
    if (commit && input.value.trim() !== title) send('todo', V('Rename', id, input.value.trim()))
    renderTodos()
  }
  input.onkeydown = e => {
    if (e.key === 'Enter') finish(true)
    if (e.key === 'Escape') finish(false)
  }
  input.onblur = () => finish(true)
  text.replaceWith(input)
  input.focus()
}

// Going offline closes both connections; edits keep applying locally and
// wait in sessionStorage until the page goes online again.
$('offline').onclick = e => {
  const offline = e.target.getAttribute('aria-pressed') !== 'true'
  for (const store of Object.values(stores)) offline ? store.offline() : store.online()
  e.target.setAttribute('aria-pressed', offline)
  e.target.textContent = offline ? 'Go online' : 'Go offline'
}
