// Package js ships lily's browser client, lily.js: a dependency-free ES
// module that a web page imports to keep a local copy of one store's model
// in sync (optimistic apply, exactly-once ids, an offline queue in
// sessionStorage, reconnects with backoff, and a fallback to Server-Sent
// Events and POST when WebSockets are blocked). The gateway serves it at
// /lily.js; README.md beside it documents its API.
package js

import (
	_ "embed" // for lily.js
	"net/http"

	"github.com/lily-go/lily/internal/static"
)

// Source is lily.js, as shipped.
//
//go:embed lily.js
var Source []byte

var handler = static.File("lily.js", Source)

// Handler serves lily.js as a JavaScript module (gzip-compressed for
// browsers that accept it, with an ETag; browsers revalidate it on every
// load, so a page never runs a stale client).
func Handler() http.Handler { return handler }
