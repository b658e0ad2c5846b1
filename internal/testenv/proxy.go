package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy in front of a real server, for tests that take the
// server away and bring it back: Stop closes the listener and every
// connection (clients see a refused or reset connection, as when the server
// is down), Start listens on the same address again.
type Proxy struct {
	tb     testing.TB
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}

	reads atomic.Int64 // reads from clients
}

// NewProxy starts a proxy on a free local port to target ("host:port") and
// stops it when the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p := &Proxy{tb: tb, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.Start()
	tb.Cleanup(p.Stop)
	return p
}

// Addr is the proxy's address ("127.0.0.1:port"), the same across Stop and Start.
func (p *Proxy) Addr() string { return p.addr }

// ClientReads is how many reads the proxy has made from its clients so far.
// A client that waits for each answer before it sends again (a round trip)
// costs at least one read per round trip; a pipeline of small commands,
// sent in one write, costs one.
func (p *Proxy) ClientReads() int64 { return p.reads.Load() }

// Start listens again after Stop.
func (p *Proxy) Start() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.tb.Fatalf("testenv: proxy listen on %s: %v", p.addr, err)
	}
	p.ln = ln
	p.addr = ln.Addr().String()
	go p.accept(ln)
}

// Stop closes the listener and every proxied connection.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // stopped meanwhile
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(in, out)
		go p.pipe(out, countingConn{in, &p.reads})
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// countingConn counts the reads made from a connection. Being neither a
// *net.TCPConn nor an io.WriterTo, it also keeps io.Copy off splice(2), so
// every read goes through it.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Read(b)
}
