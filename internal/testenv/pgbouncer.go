package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncerPoolSize is the number of server connections per database and
// user the PgBouncer of StartPgBouncer keeps: small, so that many client
// connections share few server connections and anything that depends on a
// session (named prepared statements, session advisory locks, SET) breaks.
const PgBouncerPoolSize = 2

// Tool returns the path of a program a test needs, searching PATH and then
// dirs. Missing, it skips the test on a developer machine and fails it in CI
// (CI=true), where .ci/run installs it.
func Tool(tb testing.TB, name string, dirs ...string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("testenv: %s is not installed; .ci/run installs it in CI", name)
	}
	tb.Skipf("testenv: %s is not installed here (CI installs it)", name)
	return ""
}

// serviceUser is the account server programs run as when the test runs as
// root: PostgreSQL and PgBouncer refuse to run as root.
type serviceUser struct {
	uid, gid uint32
	root     bool
}

// unprivileged returns the postgres account when the test runs as root.
func unprivileged(tb testing.TB) serviceUser {
	tb.Helper()
	if os.Geteuid() != 0 {
		return serviceUser{}
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		tb.Fatalf("testenv: running as root and there is no postgres account to run servers as: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return serviceUser{uid: uint32(uid), gid: uint32(gid), root: true}
}

// command builds a command that runs as the service user.
func (s serviceUser) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	if s.root {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.uid, Gid: s.gid}}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// tempDir makes a directory the service user owns, removed when the test ends.
func (s serviceUser) tempDir(tb testing.TB, pattern string) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if s.root {
		if err := os.Chown(dir, int(s.uid), int(s.gid)); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func (s serviceUser) writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	if s.root {
		if err := os.Chown(path, int(s.uid), int(s.gid)); err != nil {
			tb.Fatal(err)
		}
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartPgBouncer starts a PgBouncer in transaction pooling mode on a free
// loopback port in front of the Postgres server of dbURL (its own
// configuration in a temporary directory, trust authentication, at most
// PgBouncerPoolSize server connections per database) and returns dbURL with
// host and port replaced by PgBouncer's. It stops it when the test ends.
// Without pgbouncer installed the test is skipped, or fails in CI.
func StartPgBouncer(tb testing.TB, dbURL string) string {
	tb.Helper()
	bin := Tool(tb, "pgbouncer", "/usr/sbin")
	u, err := url.Parse(dbURL)
	if err != nil || u.Host == "" {
		tb.Fatalf("testenv: StartPgBouncer needs a postgres:// URL with a host: %v", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Hostname(), "5432"
	}
	userName := u.User.Username()
	if userName == "" {
		userName = "postgres"
	}
	su := unprivileged(tb)
	dir := su.tempDir(tb, "ispgraph-pgbouncer-")
	su.writeFile(tb, filepath.Join(dir, "userlist.txt"), fmt.Sprintf("%q \"\"\n", userName))

	for attempt := 0; ; attempt++ {
		listen := freePort(tb)
		ini := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = %d
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, host, port, listen, filepath.Join(dir, "userlist.txt"), PgBouncerPoolSize, PgBouncerPoolSize,
			filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
		iniPath := filepath.Join(dir, "pgbouncer.ini")
		su.writeFile(tb, iniPath, ini)

		ctx, cancel := context.WithCancel(context.Background())
		cmd := su.command(ctx, bin, iniPath)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			tb.Fatalf("testenv: start pgbouncer: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()

		u2 := *u
		u2.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(listen))
		out := u2.String()
		if err := waitPostgres(out, exited, 15*time.Second); err != nil {
			cancel()
			<-exited
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			if attempt < 2 && strings.Contains(string(log), "in use") {
				continue // the port was taken meanwhile
			}
			tb.Fatalf("testenv: pgbouncer did not answer: %v\n%s", err, log)
		}
		tb.Cleanup(func() {
			cancel()
			<-exited
		})
		return out
	}
}

// waitPostgres polls until a query answers at dsn, the process exits or the
// time runs out.
func waitPostgres(dsn string, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("the server exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1")
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %s: %v", within, last)
}
