package js_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"

	"github.com/lily-go/lily/clients/js"
)

// TestLilyJS runs the JavaScript unit tests of lily.js (lily_test.mjs:
// the protocol against fake sockets) with Node. Node is required: tests/run
// installs it when it is missing.
func TestLilyJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed (tests/run installs Debian's nodejs): lily.js's unit tests need it")
	}
	out, err := exec.Command(node, "--test", "lily_test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test lily_test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out[bytes.LastIndex(out, []byte("# tests")):]))
}

// The browser client is meant to stay small: it is loaded by every page.
func TestSizeBudget(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(js.Source)
	_ = zw.Close()
	const budget = 3000
	if buf.Len() >= budget {
		t.Fatalf("lily.js is %d bytes gzipped, over its budget of %d", buf.Len(), budget)
	}
	t.Logf("lily.js: %d bytes, %d gzipped", len(js.Source), buf.Len())
}

func TestHandler(t *testing.T) {
	cases := []struct {
		name           string
		acceptEncoding string
		wantEncoding   string
	}{
		{"plain", "", ""},
		{"gzip", "gzip, deflate, br", "gzip"},
		{"gzip refused", "gzip;q=0, br", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/lily.js", nil)
			req.Header.Set("Accept-Encoding", tc.acceptEncoding)
			rec := httptest.NewRecorder()
			js.Handler().ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
			if got := res.Header.Get("Content-Encoding"); got != tc.wantEncoding {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.wantEncoding)
			}
			var body io.Reader = res.Body
			if tc.wantEncoding == "gzip" {
				zr, err := gzip.NewReader(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			got, _ := io.ReadAll(body)
			if !bytes.Equal(got, js.Source) {
				t.Fatalf("served %d bytes that are not lily.js", len(got))
			}
			// A revalidation with the ETag is answered 304.
			req2 := httptest.NewRequest(http.MethodGet, "/lily.js", nil)
			req2.Header.Set("Accept-Encoding", tc.acceptEncoding)
			req2.Header.Set("If-None-Match", res.Header.Get("ETag"))
			rec2 := httptest.NewRecorder()
			js.Handler().ServeHTTP(rec2, req2)
			if rec2.Code != http.StatusNotModified {
				t.Fatalf("revalidation: status %d, want 304", rec2.Code)
			}
		})
	}
}
