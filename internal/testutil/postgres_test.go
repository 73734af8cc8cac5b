package testutil

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// One server for the tests holding it, a database of its own for each
// call, and nothing left once the last holder ends.
func TestStartPostgres(t *testing.T) {
	var srv *postgresServer
	t.Run("hold", func(t *testing.T) {
		began := time.Now()
		a := StartPostgres(t)
		t.Logf("first database in %v", time.Since(began))
		began = time.Now()
		b := StartPostgres(t)
		t.Logf("second database in %v", time.Since(began))
		if a == b || !strings.HasPrefix(a, "postgres://postgres@127.0.0.1:") {
			t.Fatalf("connection strings %q and %q", a, b)
		}
		pgShared.mu.Lock()
		srv = pgShared.srv
		pgShared.mu.Unlock()
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strings.Split(strings.TrimPrefix(a, "postgres://postgres@127.0.0.1:"), "/")[0]), time.Second)
		if err != nil {
			t.Fatalf("the server does not accept connections: %v", err)
		}
		c.Close()
	})
	if srv == nil {
		t.Fatal("no server")
	}
	select {
	case <-srv.exited:
	default:
		t.Fatal("the server still runs after its last holder ended")
	}
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Fatalf("the server's directory is left: %v", err)
	}
}

// KeepPostgres keeps the server past its last holder, until released.
func TestKeepPostgres(t *testing.T) {
	release := KeepPostgres()
	defer release()
	var first *postgresServer
	for i := range 2 {
		t.Run("hold", func(t *testing.T) {
			StartPostgres(t)
			pgShared.mu.Lock()
			defer pgShared.mu.Unlock()
			if i == 0 {
				first = pgShared.srv
			} else if pgShared.srv != first {
				t.Fatal("a second server started while the first was kept")
			}
		})
	}
	release()
	select {
	case <-first.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the server still runs once released")
	}
}
