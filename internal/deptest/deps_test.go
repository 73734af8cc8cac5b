// Package deptest enforces the import rules of the layout: the lily API
// packages stay free of the actor system, and the gateway knows nothing of
// how stores are run. A rule for each package comes with the package.
package deptest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lily-go/lily"

func TestForbiddenImports(t *testing.T) {
	rules := []struct {
		pkg    string
		banned []string
		why    string
	}{
		{"store", []string{"github.com/asynkron/protoactor-go", module + "/transport"}, "a store is a model and a function: no I/O, no actors"},
		{"transport", []string{"github.com/asynkron/protoactor-go", module + "/actors", module + "/server"}, "frames and serialisers are shared with clients"},
		{"messages", []string{module + "/actors", module + "/server", module + "/transport"}, "messages are the bottom of the stack"},
		{"journal", []string{module + "/actors", module + "/server", module + "/transport"}, "a journal stores bytes; it knows no store actor and no serialiser"},
		{"actors", []string{module + "/server", module + "/cluster", module + "/gateway"}, "arrows point down the layout"},
		{"client", []string{module + "/server", module + "/actors", module + "/gateway", module + "/cluster", "github.com/asynkron/protoactor-go"}, "a client needs only the store and the protocol"},
		{"cluster", []string{module + "/server", module + "/gateway", module + "/client"}, "a node is wired to the gateway by cmd/, not by the cluster"},
		{"gateway", []string{module + "/server", module + "/cluster", module + "/actors", "github.com/asynkron/protoactor-go"}, "the gateway reaches stores only through its Resolver"},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-e", "-json", "-deps", module+"/"+r.pkg).Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			dec := json.NewDecoder(strings.NewReader(string(out)))
			found := false
			for dec.More() {
				var p struct {
					ImportPath string
					Error      *struct{ Err string }
				}
				if err := dec.Decode(&p); err != nil {
					t.Fatalf("decode go list output: %v", err)
				}
				if p.ImportPath == module+"/"+r.pkg {
					found = true
					if p.Error != nil {
						t.Fatalf("package %s: %s", r.pkg, p.Error.Err)
					}
				}
				for _, b := range r.banned {
					if p.ImportPath == b || strings.HasPrefix(p.ImportPath, b+"/") {
						t.Errorf("%s depends on %s: %s", r.pkg, p.ImportPath, r.why)
					}
				}
			}
			if !found {
				t.Fatalf("go list did not list %s", r.pkg)
			}
		})
	}
}
