// The update functions of lilyd's demo kinds in JavaScript, on models and
// messages in lily's automatic format ({_: tag, 0: field0, ...}). They must
// agree with the Go ones (demo/counter, demo/todo): demo/examples.json holds
// the examples both are checked against. A refusal (the Go validator's) is a
// thrown Error. This module imports nothing, so Node can load it too.

const V = (tag, ...fields) => Object.assign({ _: tag }, fields)

export const MaxItems = 1000 // todo.MaxItems
export const MaxTitle = 200 // todo.MaxTitle, in UTF-8 bytes

export const counter = {
  init: V('Counter', 0),
  update(model, msg) {
    const n = model[0]
    switch (msg._) {
      case 'Increment': return V('Counter', n + 1)
      case 'Decrement': return V('Counter', n - 1)
      case 'Add': return V('Counter', n + msg[0])
      case 'Reset': return V('Counter', 0)
    }
    return model
  },
}

const utf8Length = s => new TextEncoder().encode(s).length

function checkTitle(title) {
  if (title === '') throw new Error('todo: a title must not be empty')
  if (utf8Length(title) > MaxTitle) throw new Error(`todo: a title must be at most ${MaxTitle} bytes`)
}

// An item is {_: 'Item', 0: id, 1: title, 2: done}; the model is
// {_: 'Model', 0: items, 1: the id the last item got}.
export const todo = {
  init: V('Model', [], 0),
  update(model, msg) {
    const items = model[0], last = model[1]
    const map = (id, f) => items.map(it => it[0] === id ? f(it) : it)
    switch (msg._) {
      case 'AddItem':
        if (items.length >= MaxItems) throw new Error(`todo: the list is full (${MaxItems} items)`)
        checkTitle(msg[0])
        return V('Model', [...items, V('Item', last + 1, msg[0], false)], last + 1)
      case 'Toggle':
        return V('Model', map(msg[0], it => V('Item', it[0], it[1], !it[2])), last)
      case 'Rename':
        checkTitle(msg[1])
        return V('Model', map(msg[0], it => V('Item', it[0], msg[1], it[2])), last)
      case 'Remove':
        return V('Model', items.filter(it => it[0] !== msg[0]), last)
    }
    return model
  },
}
