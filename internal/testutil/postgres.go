package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A real PostgreSQL server for tests (journal/pgjournal): Debian's
// binaries, a data directory in a temporary directory, 127.0.0.1 on a free
// port and the unix socket in that directory. One server is shared by the
// tests of a test binary that hold it at the same time; it stops when the
// last of them ends.

// postgresServer is a running server of this test binary.
type postgresServer struct {
	bin     string // the directory of initdb, postgres and createdb
	dir     string // the temporary directory: data/, the socket, the log
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the postmaster has exited
	waitErr error         // the postmaster's exit; read after exited is closed
}

var pgShared struct {
	mu   sync.Mutex
	srv  *postgresServer // guarded by mu
	refs int             // guarded by mu; tests holding srv
	keep int             // guarded by mu; KeepPostgres holds not released
	dbs  int             // guarded by mu; databases made so far
}

// StartPostgres returns the connection string (a postgres:// URL) of a new,
// empty database of its own on a PostgreSQL server run for the test, for
// user postgres without a password. The server is started when no test of
// the binary holds one, and stopped (a fast shutdown: SIGINT to the
// postmaster, then SIGKILL after 10 s) and its directory deleted when the
// last test holding it ends: a test whose subtests each call StartPostgres
// calls it once itself to keep one server for all of them, and a package
// keeps one for all its tests with KeepPostgres.
//
// It uses the binaries of Debian's postgresql package
// (/usr/lib/postgresql/VERSION/bin, the newest version; else initdb on
// PATH) and fails the test when there are none: tests/run installs them.
// Run as root, the server runs as the package's postgres user, since
// PostgreSQL refuses to run as root.
func StartPostgres(tb testing.TB) string {
	tb.Helper()
	pgShared.mu.Lock()
	defer pgShared.mu.Unlock()
	srv := pgShared.srv
	if srv != nil {
		select {
		case <-srv.exited:
			tb.Fatalf("postgres: the test server exited on its own (%v); its log:\n%s", srv.waitErr, srv.logTail())
		default:
		}
	}
	if srv == nil {
		began := time.Now()
		var err error
		srv, err = startPostgresServer()
		if err != nil {
			tb.Fatalf("postgres: %v", err)
		}
		pgShared.srv = srv
		tb.Logf("postgres: server started on 127.0.0.1:%d in %v (%s)", srv.port, time.Since(began).Round(time.Millisecond), srv.bin)
	}
	pgShared.refs++
	tb.Cleanup(releasePostgres)
	pgShared.dbs++
	name := fmt.Sprintf("lily_test_%d", pgShared.dbs)
	if err := srv.createDatabase(name); err != nil {
		tb.Fatalf("postgres: %v", err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", srv.port, name)
}

// releasePostgres drops a test's hold on the server, stopping it after
// the last one.
func releasePostgres() {
	pgShared.mu.Lock()
	defer pgShared.mu.Unlock()
	pgShared.refs--
	stopIdlePostgres()
}

// stopIdlePostgres stops the server when nothing holds it. Caller holds
// pgShared.mu.
func stopIdlePostgres() {
	if pgShared.refs > 0 || pgShared.keep > 0 || pgShared.srv == nil {
		return
	}
	pgShared.srv.stop()
	pgShared.srv = nil
}

// KeepPostgres keeps the server StartPostgres starts running until release
// is called, instead of stopping it when the last test holding it ends: a
// package's TestMain keeps one server for all its tests with
//
//	func TestMain(m *testing.M) {
//		release := testutil.KeepPostgres()
//		code := m.Run()
//		release()
//		os.Exit(code)
//	}
//
// It starts nothing itself: a run of tests none of which needs PostgreSQL
// does not start it.
func KeepPostgres() (release func()) {
	pgShared.mu.Lock()
	defer pgShared.mu.Unlock()
	pgShared.keep++
	var once sync.Once
	return func() {
		once.Do(func() {
			pgShared.mu.Lock()
			defer pgShared.mu.Unlock()
			pgShared.keep--
			stopIdlePostgres()
		})
	}
}

// findPostgres returns the directory holding initdb, postgres and
// createdb.
func findPostgres() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(a, b int) bool { return pgVersion(dirs[a]) > pgVersion(dirs[b]) })
	if len(dirs) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			dirs = append(dirs, p)
		}
	}
	for _, initdb := range dirs {
		bin := filepath.Dir(initdb)
		ok := true
		for _, b := range []string{"postgres", "createdb"} {
			if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return bin, nil
		}
	}
	return "", errors.New("PostgreSQL's binaries are not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): run tests/run, which installs Debian's postgresql package")
}

// pgVersion is the version in /usr/lib/postgresql/VERSION/bin/initdb.
func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// serverUser returns the credential to run the server with: none for an
// ordinary user, the postgres user's for root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as another user, and the postgres user (made by Debian's postgresql package) is missing: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user postgres: uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startPostgresServer() (*postgresServer, error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lily-pg-")
	if err != nil {
		return nil, err
	}
	srv := &postgresServer{bin: bin, dir: dir}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port may be taken between asking and binding: try again.
	for range 5 {
		if err = srv.run(cred); err == nil {
			return srv, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, err
}

// run starts the postmaster on a free port and waits until it accepts
// connections.
func (s *postgresServer) run(cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", s.dir,
		"-c", "logging_collector=off", "-c", "max_connections=200")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary killed before its cleanup (a -timeout
	// panic) takes its server down with it (SIGQUIT: immediate shutdown).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.port, s.cmd, s.exited = port, cmd, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	// The postmaster writes "ready" as the 8th line of postmaster.pid once
	// it accepts connections (pg_ctl waits the same way).
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited while starting (%v); its log:\n%s", s.waitErr, s.logTail())
		case <-time.After(10 * time.Millisecond):
		}
		if pid, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid")); err == nil {
			if lines := strings.Split(string(pid), "\n"); len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.stopProcess()
			return fmt.Errorf("postgres not ready after 30 s; its log:\n%s", s.logTail())
		}
	}
}

// createDatabase makes database name.
func (s *postgresServer) createDatabase(name string) error {
	cmd := exec.Command(filepath.Join(s.bin, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres", "-w", name)
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("createdb %s: %v\n%s", name, err, out)
	}
	return nil
}

// stop shuts the server down and deletes its directory.
func (s *postgresServer) stop() {
	s.stopProcess()
	_ = os.RemoveAll(s.dir)
}

// stopProcess shuts the postmaster down: a fast shutdown (SIGINT, what
// pg_ctl stop -m fast sends), then SIGKILL after 10 s.
func (s *postgresServer) stopProcess() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
}

func (s *postgresServer) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// logTail returns the end of the server's log.
func (s *postgresServer) logTail() string {
	b, _ := os.ReadFile(s.logPath())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
