package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/lily-go/lily/internal/testutil"
)

// lilyd is a running lilyd process.
type lilyd struct {
	tb   testing.TB
	addr string // host:port it serves on
	cmd  *exec.Cmd
	log  *testutil.LockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // set before done is closed
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startLilyd starts lilyd on addr with extra flags and waits until it is
// ready. Its journal goes to a fresh directory unless flags name one. The process is stopped (SIGTERM, then SIGKILL) when the test ends;
// its log is printed if the test failed.
func startLilyd(tb testing.TB, addr string, flags ...string) *lilyd {
	tb.Helper()
	n := &lilyd{tb: tb, addr: addr, log: &testutil.LockedBuffer{}, done: make(chan struct{})}
	if !slices.Contains(flags, "-data-dir") {
		flags = append(flags, "-data-dir", tb.TempDir())
	}
	n.cmd = exec.Command(lilydBin, append([]string{"-listen", addr, "-log-level", "debug"}, flags...)...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.Env = append(os.Environ(), "LILY_LOG_FORMAT=text")
	if err := n.cmd.Start(); err != nil {
		tb.Fatalf("start lilyd: %v", err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.done)
	}()
	tb.Cleanup(func() {
		n.stop()
		if tb.Failed() {
			tb.Logf("lilyd %s log:\n%s", addr, n.log.String())
		}
	})
	testutil.Eventually(tb, func() bool {
		select {
		case <-n.done:
			tb.Fatalf("lilyd exited before it was ready: %v\n%s", n.err, n.log.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "lilyd on %s never became ready", addr)
	return n
}

// kill kills the process (SIGKILL) and waits for it: a crash.
func (n *lilyd) kill() {
	_ = n.cmd.Process.Kill()
	<-n.done
}

// stop sends SIGTERM and waits for a graceful exit, then SIGKILL.
func (n *lilyd) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// storeURL is the WebSocket address of a store on this node, without a
// client id (the Go client adds its own).
func (n *lilyd) storeURL(kind, name string) string {
	return fmt.Sprintf("ws://%s/ws/%s/%s", n.addr, kind, name)
}

func (n *lilyd) url(kind, name, clientID string) string {
	return fmt.Sprintf("ws://%s/ws/%s/%s?client_id=%s", n.addr, kind, name, clientID)
}

// metrics returns the node's /metrics page.
func (n *lilyd) metrics(tb testing.TB) string {
	tb.Helper()
	resp, err := http.Get("http://" + n.addr + "/metrics")
	if err != nil {
		tb.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("metrics: %v", err)
	}
	return string(body)
}
