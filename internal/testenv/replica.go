package testenv

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// postgresBinDirs are where Debian installs the server programs (initdb,
// pg_ctl, pg_basebackup), newest first.
func postgresBinDirs() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	return dirs
}

// Replica is a primary and a streaming replica of it that a test created.
type Replica struct {
	// PrimaryURL and ReplicaURL are postgres:// URLs (database postgres,
	// user postgres, trust authentication) on loopback ports.
	PrimaryURL, ReplicaURL string

	tb         testing.TB
	su         serviceUser
	pgCtl      string
	replicaDir string
}

// StartStreamingReplica creates a primary cluster with initdb in a temporary
// directory, copies it with pg_basebackup into a streaming replica, and starts
// both on free loopback ports (fsync off: test data). It stops both when the
// test ends. The primary is the test's own rather than TEST_DATABASE_URL's
// server, whose pg_hba need not allow replication connections and whose
// other databases a base backup would copy. Without the server programs the
// test is skipped, or fails in CI.
func StartStreamingReplica(tb testing.TB) *Replica {
	tb.Helper()
	dirs := postgresBinDirs()
	initdb := Tool(tb, "initdb", dirs...)
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real // the other programs live next to the real one
	}
	dir := filepath.Dir(initdb)
	r := &Replica{tb: tb, su: unprivileged(tb), pgCtl: filepath.Join(dir, "pg_ctl")}
	base := r.su.tempDir(tb, "ispgraph-replica-")
	primaryDir := filepath.Join(base, "primary")
	r.replicaDir = filepath.Join(base, "replica")

	r.run(initdb, "-D", primaryDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions")
	pport, rport := freePort(tb), freePort(tb)
	opts := func(port int) string {
		return "-p " + strconv.Itoa(port) + " -c listen_addresses=127.0.0.1 -c unix_socket_directories=" + base +
			" -c fsync=off -c max_wal_senders=4 -c wal_level=replica -c hot_standby=on"
	}
	r.run(r.pgCtl, "-D", primaryDir, "-l", filepath.Join(base, "primary.log"), "-w", "-t", "60", "-o", opts(pport), "start")
	tb.Cleanup(func() { r.stop(primaryDir) })
	r.run(filepath.Join(dir, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(pport), "-U", "postgres",
		"-D", r.replicaDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	r.run(r.pgCtl, "-D", r.replicaDir, "-l", filepath.Join(base, "replica.log"), "-w", "-t", "60", "-o", opts(rport), "start")
	tb.Cleanup(func() { r.stop(r.replicaDir) })

	url := func(port int) string {
		return "postgres://postgres@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/postgres?sslmode=disable"
	}
	r.PrimaryURL, r.ReplicaURL = url(pport), url(rport)
	return r
}

// StopReplica stops the replica at once, as a crash would.
func (r *Replica) StopReplica() { r.stop(r.replicaDir) }

func (r *Replica) stop(dir string) {
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = r.su.command(ctx, r.pgCtl, "-D", dir, "-m", "immediate", "-w", "stop").Run()
}

func (r *Replica) run(name string, args ...string) {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := r.su.command(ctx, name, args...).CombinedOutput(); err != nil {
		r.tb.Fatalf("testenv: %s %v: %v\n%s", filepath.Base(name), args, err, out)
	}
}
