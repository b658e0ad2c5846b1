package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// env is what the soak created and owns: a database, a Redis key namespace,
// the ispgraph binary and its processes.
type env struct {
	dir       string // logs and the binary
	bin       string
	adminURL  string // Postgres maintenance database
	dbName    string
	dbURL     string
	redisURL  string
	redisDB   int
	namespace string // ISPGRAPH_JOB_NAMESPACE
	cachePref string // ISPGRAPH_CACHE_PREFIX
	secretKey string
	demoPass  string
	seedPass  string
	serveAddr string
	extraEnv  []string
	rdb       *redis.Client
	serve     *proc
	worker    *proc
	// The second instances (instances.go).
	serve2Addr, workerAddr, worker2Addr string
	serve2, worker2                     *proc
	workerRuns                          int

	// The job sets as they were just before the soak deleted its Redis keys.
	deadAtWipe, retryAtWipe []string
	queuedAtWipe            int64
}

// proc is one running ispgraph process with its log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// build compiles ./cmd/ispgraph into the soak's directory.
func (e *env) build(ctx context.Context) error {
	e.bin = filepath.Join(e.dir, "ispgraph")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/ispgraph")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// createDatabase creates the soak's own database.
func (e *env) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return fmt.Errorf("postgres at %s: %w", redactURL(e.adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{e.dbName}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", e.dbName, err)
	}
	u, err := url.Parse(e.adminURL)
	if err != nil {
		return err
	}
	u.Path = "/" + e.dbName
	e.dbURL = u.String()
	return nil
}

// dropDatabase removes the soak's database.
func (e *env) dropDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{e.dbName}.Sanitize()+" WITH (FORCE)")
	return err
}

// processEnv is the configuration every ispgraph process of the soak gets.
func (e *env) processEnv() []string {
	return append(append(os.Environ(),
		"DATABASE_URL="+e.dbURL,
		"REDIS_URL="+e.redisURL,
		"ISPGRAPH_SECRET_KEY="+e.secretKey,
		"ISPGRAPH_JOB_NAMESPACE="+e.namespace,
		"ISPGRAPH_CACHE_PREFIX="+e.cachePref,
		"ISPGRAPH_DEMO_PASSWORD="+e.demoPass,
		"ISPGRAPH_LOG_FORMAT=json",
	), e.extraEnv...)
}

// runCLI runs an ispgraph command to completion (seed, migrate).
func (e *env) runCLI(ctx context.Context, name string, args ...string) error {
	f, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = e.processEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ispgraph %s: %w (log: %s)", strings.Join(args, " "), err, f.Name())
	}
	return nil
}

// start launches a long-running ispgraph process.
func (e *env) start(name string, env []string, args ...string) (*proc, error) {
	f, err := os.OpenFile(filepath.Join(e.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(e.processEnv(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, log: f, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// startServe starts `ispgraph serve` with in-process workers off and waits
// until /readyz answers.
func (e *env) startServe(ctx context.Context) error {
	p, err := e.startServeAs(ctx, "serve", e.serveAddr)
	e.serve = p
	return err
}

// startWorker starts a separate `ispgraph worker`; each run appends to worker.log.
func (e *env) startWorker() error {
	e.workerRuns++
	p, err := e.start("worker", []string{"ISPGRAPH_WORKER_ADDR=" + e.workerAddr}, "worker")
	if err != nil {
		return err
	}
	e.worker = p
	return nil
}

// killWorker ends the worker with SIGKILL: no drain, jobs in flight stay in
// gocraft's in-progress lists.
func (e *env) killWorker() error {
	if err := e.worker.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-e.worker.done
	return nil
}

// stop ends a process gracefully (SIGTERM, drain) and waits.
func (p *proc) stop(timeout time.Duration) {
	if p == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended on its own.
func (p *proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// soakKeys lists the Redis keys of the soak (its job namespace and cache
// prefix) in its Redis database.
func (e *env) soakKeys(ctx context.Context) ([]string, error) {
	var keys []string
	for _, pattern := range []string{e.namespace + ":*", e.cachePref + "*"} {
		iter := e.rdb.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// wipeRedis makes Redis look restarted empty to the soak's processes: every
// key of the soak's namespace and cache prefix is deleted and every client
// connection on the soak's Redis database is closed (the shared server and
// other databases are left alone). It returns the number of keys deleted.
func (e *env) wipeRedis(ctx context.Context) (int, error) {
	keys, err := e.soakKeys(ctx)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(keys); i += 200 {
		j := min(i+200, len(keys))
		if err := e.rdb.Del(ctx, keys[i:j]...).Err(); err != nil {
			return 0, err
		}
	}
	self, err := e.rdb.ClientID(ctx).Result()
	if err != nil {
		return len(keys), err
	}
	list, err := e.rdb.ClientList(ctx).Result()
	if err != nil {
		return len(keys), err
	}
	for _, line := range strings.Split(list, "\n") {
		var id, db string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "db="); ok {
				db = v
			}
		}
		if id == "" || db != fmt.Sprint(e.redisDB) || id == fmt.Sprint(self) {
			continue
		}
		_ = e.rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err()
	}
	return len(keys), nil
}

// snapshotJobs keeps gocraft's dead and retry sets before Redis is lost, so
// the checks still see jobs that died earlier.
func (e *env) snapshotJobs(ctx context.Context) error {
	var err error
	if e.deadAtWipe, err = e.jobSet(ctx, "dead"); err != nil {
		return err
	}
	if e.retryAtWipe, err = e.jobSet(ctx, "retry"); err != nil {
		return err
	}
	q, err := e.queueDepth(ctx)
	e.queuedAtWipe = q - int64(len(e.retryAtWipe))
	return err
}

// jobNames summarises gocraft job JSON as "(Name×n, ...)".
func jobNames(raw []string) string {
	n := map[string]int{}
	for _, r := range raw {
		var j struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal([]byte(r), &j)
		n[j.Name]++
	}
	var parts []string
	for _, k := range sortedKeys(n) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, n[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}
