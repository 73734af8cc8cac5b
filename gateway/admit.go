package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/lily-go/lily/transport"
)

// admission is a request to a store's address that passed every check: a
// valid store name of a known kind, a valid client id, an allowed origin
// and, with Config.Authenticate, an authenticated caller.
type admission struct {
	kind, name string
	clientID   string // generated when the request had none and none was required
	identity   string // what Config.Authenticate returned
}

// store returns "kind/name", for logs.
func (a admission) store() string { return a.kind + "/" + a.name }

// admit runs the checks every transport shares (WebSocket, event stream,
// POST), in the order PROTOCOL.md lists the refusals, and answers the
// request itself when one fails. needClientID refuses a request without a
// client_id (the HTTP fallback cannot tell the client an id it made up).
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, needClientID bool) (admission, bool) {
	a := admission{kind: r.PathValue("kind"), name: r.PathValue("name")}
	if !transport.ValidName(a.kind) || !transport.ValidName(a.name) {
		http.Error(w, "store kind and name must be 1-128 chars of [A-Za-z0-9._-]", http.StatusBadRequest)
		return a, false
	}
	if !g.resolver.HasKind(a.kind) {
		http.Error(w, fmt.Sprintf("no store kind %q", a.kind), http.StatusNotFound)
		return a, false
	}
	a.clientID = r.URL.Query().Get("client_id")
	switch {
	case a.clientID == "" && needClientID:
		http.Error(w, "client_id is required (1-64 chars of [A-Za-z0-9_-])", http.StatusBadRequest)
		return a, false
	case a.clientID == "":
		a.clientID = newClientID()
	case !transport.ValidClientID(a.clientID):
		http.Error(w, "client_id must be 1-64 chars of [A-Za-z0-9_-]", http.StatusBadRequest)
		return a, false
	}
	if !originAllowed(g.cfg.AllowedOrigins, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return a, false
	}
	if g.cfg.Authenticate != nil {
		id, err := g.cfg.Authenticate(r)
		if err != nil {
			status := http.StatusUnauthorized
			if errors.Is(err, ErrForbidden) {
				status = http.StatusForbidden
			}
			http.Error(w, err.Error(), status)
			return a, false
		}
		a.identity = id
	}
	return a, true
}
