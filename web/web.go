// Package web is lilyd's demo page: the counter and todo kinds in one page
// that a person can click, kept in sync by the browser client (lily.js,
// which the gateway serves at /lily.js). It shows each store's connection
// state, transport, sequence and pending count, and has a button that
// takes the page offline and back. kinds.js holds the demo kinds' update
// functions in JavaScript; demo/examples.json keeps them in line with the
// Go ones.
package web

import (
	"embed"
	"net/http"

	"github.com/lily-go/lily/internal/static"
)

//go:embed index.html app.js kinds.js
var files embed.FS

// Mux is what Mount registers routes on: an *http.ServeMux, or a
// *gateway.Gateway (which serves the stores and /lily.js next to them).
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Mount registers the demo page on mux: GET / (the page) and its scripts
// GET /app.js and GET /kinds.js. Other paths are left to mux.
func Mount(mux Mux) {
	for pattern, name := range map[string]string{
		"GET /{$}":      "index.html",
		"GET /app.js":   "app.js",
		"GET /kinds.js": "kinds.js",
	} {
		data, err := files.ReadFile(name)
		if err != nil {
			panic("web: embedded file missing: " + name) // the go:embed line above lists it
		}
		mux.Handle(pattern, static.File(name, data))
	}
}
