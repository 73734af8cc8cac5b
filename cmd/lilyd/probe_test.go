package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbeURL(t *testing.T) {
	cases := []struct{ target, listen, want, wantErr string }{
		{"http://10.0.0.1:9000/readyz", "", "http://10.0.0.1:9000/readyz", ""},
		{"/readyz", "", "http://127.0.0.1:8080/readyz", ""},
		{"/healthz", ":9090", "http://127.0.0.1:9090/healthz", ""},
		{"/readyz", "0.0.0.0:7000", "http://127.0.0.1:7000/readyz", ""},
		{"/readyz", "[::]:7000", "http://127.0.0.1:7000/readyz", ""},
		{"/readyz", "127.0.0.2:7001", "http://127.0.0.2:7001/readyz", ""},
		{"readyz", "", "", "neither"},
		{"/readyz", "nonsense", "", "LILY_LISTEN"},
	}
	for _, c := range cases {
		got, err := probeURL(c.target, c.listen)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("probeURL(%q, %q) = %q, %v; want an error with %q", c.target, c.listen, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("probeURL(%q, %q) = %q, %v; want %q", c.target, c.listen, got, err, c.want)
		}
	}
}

// The probe mode asks a real HTTP server: 0 for 200 OK, 1 for any other
// status or no server, 2 for a wrong command line; other arguments are
// not a probe.
func TestProbeMode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			_, _ = w.Write([]byte("ready\n"))
		default:
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	env := func(listen string) func(string) string {
		return func(k string) string {
			if k == "LILY_LISTEN" {
				return listen
			}
			return ""
		}
	}
	cases := []struct {
		name   string
		args   []string
		listen string
		code   int
		ok     bool
	}{
		{"200", []string{"-probe", srv.URL + "/readyz"}, "", 0, true},
		{"503", []string{"-probe", srv.URL + "/other"}, "", 1, true},
		{"no server", []string{"-probe", closedURL + "/readyz"}, "", 1, true},
		{"path on LILY_LISTEN's port", []string{"-probe=/readyz"}, ":" + port, 0, true},
		{"path, 503", []string{"--probe", "/other"}, "127.0.0.1:" + port, 1, true},
		{"no target", []string{"-probe"}, "", 2, true},
		{"extra argument", []string{"-probe", "/readyz", "x"}, "", 2, true},
		{"not a probe", []string{"-listen", ":1"}, "", 0, false},
		{"no arguments", nil, "", 0, false},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		code, ok := probeMode(c.args, env(c.listen), &stderr)
		if code != c.code || ok != c.ok {
			t.Errorf("%s: probeMode(%q) = %d, %v; want %d, %v (stderr %q)", c.name, c.args, code, ok, c.code, c.ok, stderr.String())
		}
		if c.ok && c.code != 0 && stderr.Len() == 0 {
			t.Errorf("%s: exit %d without saying why", c.name, code)
		}
	}
}
