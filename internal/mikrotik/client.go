// Package mikrotik owns ispgraph's conversation with MikroTik routers: the
// RouterOS API client, the health check, session sync, provisioning of PPP
// secrets, the import of existing secrets and hotspot sign-up. Its services
// take a context (tenant and deadline) and are called by job handlers and
// resolvers alike; their errors say whether a retry makes sense (Retryable).
package mikrotik

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-routeros/routeros/v3"
)

// Default timeouts of a router connection.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultCommandTimeout = 15 * time.Second
)

// Endpoint says how to reach and log in to one router's API.
type Endpoint struct {
	Host     string
	Port     int
	TLS      bool
	Username string
	Password string
	// TLSConfig overrides the TLS settings (tests, a private CA). Nil means
	// the system roots and the host name as ServerName.
	TLSConfig *tls.Config
}

func (e Endpoint) address() string {
	port := e.Port
	if port == 0 {
		port = 8728
		if e.TLS {
			port = 8729
		}
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(port))
}

// key identifies an endpoint's connection: a change of address or credentials
// opens a new connection.
func (e Endpoint) key() string {
	return fmt.Sprintf("%s|%t|%s|%s", e.address(), e.TLS, e.Username, e.Password)
}

// Row is one reply sentence (!re) as attribute → value.
type Row map[string]string

// Conn is one logged-in API connection to a router. go-routeros' sync mode is
// not safe for concurrent use and ignores the context, so Conn serialises
// commands with a mutex and bounds every command with a deadline on the
// socket; after a network error or a timeout it drops the connection and the
// next command dials again.
type Conn struct {
	ep             Endpoint
	dialTimeout    time.Duration
	commandTimeout time.Duration

	mu   sync.Mutex
	nc   net.Conn
	ros  *routeros.Client
	dead bool
}

// Run sends one command with its words (=attr=value, ?query, =.proplist=...)
// and returns the !re rows. A !trap becomes a *DeviceError (not retryable);
// a connection failure or timeout becomes an *UnreachableError (retryable).
// A kept connection found closed is dialled again once before that.
func (c *Conn) Run(ctx context.Context, words ...string) ([]Row, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, &UnreachableError{Op: words[0], Err: err}
	}
	reused := c.ros != nil
	if !reused {
		if err := c.dial(ctx); err != nil {
			return nil, err
		}
	}
	rows, err := c.runLocked(ctx, words)
	var ue *UnreachableError
	if reused && errors.As(err, &ue) && !isTimeout(ue.Err) && ctx.Err() == nil {
		// The kept connection was dropped (the router restarted, a NAT or
		// firewall forgot it): dial once more before calling the router
		// unreachable.
		if err := c.dial(ctx); err != nil {
			return nil, err
		}
		rows, err = c.runLocked(ctx, words)
	}
	return rows, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// runLocked sends one command on the open connection (c.mu held).
func (c *Conn) runLocked(ctx context.Context, words []string) ([]Row, error) {
	deadline := time.Now().Add(c.commandTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	reply, err := c.ros.RunArgs(words)
	if err != nil {
		var de *routeros.DeviceError
		if errors.As(err, &de) && de.Sentence.Word == "!trap" {
			// The router refused this command; the connection is fine.
			_ = c.nc.SetDeadline(time.Time{})
			return nil, &DeviceError{Op: words[0], Message: de.Sentence.Map["message"], Category: de.Sentence.Map["category"]}
		}
		c.closeLocked()
		return nil, &UnreachableError{Op: words[0], Err: err}
	}
	_ = c.nc.SetDeadline(time.Time{})
	rows := make([]Row, 0, len(reply.Re))
	for _, s := range reply.Re {
		rows = append(rows, Row(s.Map))
	}
	if reply.Done != nil && reply.Done.Map["ret"] != "" {
		rows = append(rows, Row{"ret": reply.Done.Map["ret"]})
	}
	return rows, nil
}

// dial opens and logs in the connection (c.mu held).
func (c *Conn) dial(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	var (
		nc  net.Conn
		err error
	)
	addr := c.ep.address()
	if c.ep.TLS {
		cfg := c.ep.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{ServerName: c.ep.Host, MinVersion: tls.VersionTLS12}
		}
		nc, err = (&tls.Dialer{Config: cfg}).DialContext(dctx, "tcp", addr)
	} else {
		nc, err = (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return &UnreachableError{Op: "connect", Err: err}
	}
	// The login is a command like any other: bound it by the dial timeout.
	deadline, _ := dctx.Deadline()
	_ = nc.SetDeadline(deadline)
	ros, err := routeros.NewClient(nc)
	if err != nil {
		nc.Close()
		return &UnreachableError{Op: "connect", Err: err}
	}
	ros.SetLogHandler(slog.NewTextHandler(io.Discard, nil))
	if err := ros.Login(c.ep.Username, c.ep.Password); err != nil {
		ros.Close()
		var de *routeros.DeviceError
		if errors.As(err, &de) {
			return &DeviceError{Op: "/login", Message: de.Sentence.Map["message"], Category: de.Sentence.Map["category"]}
		}
		return &UnreachableError{Op: "login", Err: err}
	}
	_ = nc.SetDeadline(time.Time{})
	c.nc, c.ros = nc, ros
	return nil
}

func (c *Conn) closeLocked() {
	if c.ros != nil {
		c.ros.Close()
	}
	c.ros, c.nc = nil, nil
}

// Close closes the connection; a later Run dials again unless the pool has
// been closed.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

// Pool keeps one connection per router, shared by every job in the process.
// A router is one serial conversation: RouterOS handles one API session's
// commands in order anyway, and one connection per router keeps the number of
// API logins on a router small.
type Pool struct {
	DialTimeout    time.Duration
	CommandTimeout time.Duration

	mu    sync.Mutex
	conns map[int]*Conn
}

// NewPool returns a pool with the default timeouts.
func NewPool() *Pool {
	return &Pool{DialTimeout: DefaultDialTimeout, CommandTimeout: DefaultCommandTimeout}
}

// Get returns the connection for router id, replacing it when the endpoint
// changed (new address or credentials).
func (p *Pool) Get(id int, ep Endpoint) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[int]*Conn{}
	}
	if c, ok := p.conns[id]; ok && c.ep.key() == ep.key() {
		return c
	} else if ok {
		go c.Close()
	}
	dt, ct := p.DialTimeout, p.CommandTimeout
	if dt <= 0 {
		dt = DefaultDialTimeout
	}
	if ct <= 0 {
		ct = DefaultCommandTimeout
	}
	c := &Conn{ep: ep, dialTimeout: dt, commandTimeout: ct}
	p.conns[id] = c
	return c
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, c := range p.conns {
		c.Close()
		delete(p.conns, id)
	}
}

// UnreachableError is a router that could not be reached, logged in to in
// time, or that stopped answering: worth retrying later.
type UnreachableError struct {
	Op  string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("router unreachable (%s): %v", e.Op, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// DeviceError is a command the router refused (!trap): the message is the
// router's own. Retrying the same command does not help; changing the data or
// the router's configuration does.
type DeviceError struct {
	Op       string
	Message  string
	Category string
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("router refused %s: %s", e.Op, e.Message)
}

// Retryable reports whether running the same job again later may succeed: a
// router that was unreachable or timed out, or a database hiccup. A refusal by
// the router (!trap, bad login) or missing data is not retryable.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var de *DeviceError
	if errors.As(err, &de) {
		return false
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return false
	}
	return true
}

// PermanentError is a job that cannot succeed as asked (its router or
// subscriber is gone, the router is disabled): drop it, do not retry.
type PermanentError struct{ Msg string }

func (e *PermanentError) Error() string { return e.Msg }

func permanent(format string, args ...any) error {
	return &PermanentError{Msg: fmt.Sprintf(format, args...)}
}
