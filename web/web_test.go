package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lily-go/lily/demo"
	"github.com/lily-go/lily/web"
)

// jsResult is what the script below reports for one example.
type jsResult struct {
	Model    json.RawMessage `json:"model"`
	Rejected string          `json:"rejected"` // the thrown error's message
	Mutated  bool            `json:"mutated"`  // the update function changed the model it was given
}

// The script runs kinds.js's update functions on the examples read from
// standard input and prints one jsResult per example.
const script = `
import { readFileSync } from 'node:fs'
const kinds = await import(process.argv[1])
const table = JSON.parse(readFileSync(0, 'utf8'))
console.log(JSON.stringify(table.map(ex => {
  const before = JSON.stringify(ex.model)
  try {
    const model = kinds[ex.kind].update(ex.model, ex.message)
    return { model, mutated: JSON.stringify(ex.model) !== before }
  } catch (e) {
    return { rejected: String(e.message), mutated: JSON.stringify(ex.model) !== before }
  }
})))
`

// TestJavaScriptUpdateFunctionsMatchTheExamples runs kinds.js with Node on
// demo/examples.json, the table demo's tests check the Go update functions
// against. Node is required (tests/run installs it); the browser tests in
// tests/ run the same check in Chromium.
func TestJavaScriptUpdateFunctionsMatchTheExamples(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed (tests/run installs Debian's nodejs): the drift check of kinds.js needs it")
	}
	examples, err := demo.Examples()
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("kinds.js")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--input-type=module", "-e", script, "file://"+filepath.ToSlash(abs))
	cmd.Stdin = bytes.NewReader(demo.ExamplesJSON)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var results []jsResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	if len(results) != len(examples) {
		t.Fatalf("%d results for %d examples", len(results), len(examples))
	}
	for i, ex := range examples {
		t.Run(ex.Kind+"/"+ex.Name, func(t *testing.T) {
			r := results[i]
			if r.Mutated {
				t.Error("the update function changed the model it was given")
			}
			switch {
			case ex.Rejected && r.Rejected == "":
				t.Fatalf("got %s, want the message refused", r.Model)
			case !ex.Rejected && r.Rejected != "":
				t.Fatalf("refused (%s), want %s", r.Rejected, ex.Expected)
			case !ex.Rejected && !sameJSON(t, r.Model, ex.Expected):
				t.Fatalf("got %s\nwant %s", r.Model, ex.Expected)
			}
		})
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestMount(t *testing.T) {
	mux := http.NewServeMux()
	web.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cases := []struct {
		path, contentType, contains string
		status                      int
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/app.js">`, http.StatusOK},
		{"/app.js", "text/javascript; charset=utf-8", "from '/lily.js'", http.StatusOK},
		{"/kinds.js", "text/javascript; charset=utf-8", "export const todo", http.StatusOK},
		{"/nope", "", "", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusOK {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.contentType {
				t.Fatalf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Fatalf("body lacks %q", tc.contains)
			}
		})
	}
}
