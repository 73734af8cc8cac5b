// Package tests holds black-box end-to-end tests: they build the real lilyd
// binary and run it as a subprocess on 127.0.0.1, then talk to it over real
// WebSockets, as a user would.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// lilydBin is the lilyd binary built for this test run.
var lilydBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lily-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lilydBin = filepath.Join(dir, "lilyd")
	build := exec.Command("go", "build", "-o", lilydBin, "github.com/lily-go/lily/cmd/lilyd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "tests: cannot build lilyd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
