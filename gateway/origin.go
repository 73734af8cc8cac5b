package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

// originAllowed applies Config.AllowedOrigins to a WebSocket request.
// A request without an Origin header (not from a browser) is allowed.
func originAllowed(allowed []string, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(allowed) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	for _, a := range allowed {
		switch {
		case a == "*":
			return true
		case strings.Contains(a, "://"):
			if strings.EqualFold(strings.TrimSuffix(a, "/"), u.Scheme+"://"+u.Host) {
				return true
			}
		case strings.EqualFold(a, u.Host):
			return true
		}
	}
	return false
}
