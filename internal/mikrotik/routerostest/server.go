// Package routerostest is an in-process RouterOS API server for tests: it
// speaks the binary API protocol over TCP (or TLS), logs in, and keeps menus
// (/ppp/secret, /ppp/profile, /ppp/active, /ip/hotspot/user, /queue/simple,
// /ip/firewall/address-list, /interface, ...) as in-memory tables that print,
// add, set, unset, remove, enable and disable act on, with ?attr=value queries
// and !trap replies like a real router: names are unique within a menu, a
// secret's profile must exist in /ppp/profile, a login with the wrong
// password is refused, and a test can drop every connection. Replies are written with go-routeros'
// proto package; requests are decoded here because proto.Reader rejects the
// ?query words a client sends.
package routerostest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3/proto"
)

// Row is one item of a menu: attribute → value, ".id" included.
type Row map[string]string

// Server is a fake router. Zero-value fields are filled by Start.
type Server struct {
	Username, Password string
	Identity           string

	ln      net.Listener
	tlsConf *tls.Config

	mu       sync.Mutex
	tables   map[string][]Row
	nextID   int
	traps    map[string]string // command path → message of a one-shot !trap
	hang     bool
	logins   int
	commands [][]string
	conns    map[net.Conn]struct{}
	closed   bool
}

// Start serves the plain API on 127.0.0.1:0 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS serves the API over TLS with a self-signed certificate; ClientTLS
// returns a client configuration that trusts it.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, useTLS bool) *Server {
	s := newServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if useTLS {
		s.tlsConf = selfSigned(t)
		ln = tls.NewListener(ln, s.tlsConf)
	}
	s.ln = ln
	go s.serve(ln)
	t.Cleanup(s.Close)
	return s
}

func newServer() *Server {
	s := &Server{Username: "ispgraph", Password: "secret", Identity: "fake-router",
		tables: map[string][]Row{}, traps: map[string]string{}, conns: map[net.Conn]struct{}{}}
	// Every router has these two PPP profiles.
	s.addLocked("/ppp/profile", Row{"name": "default", "default": "true"})
	s.addLocked("/ppp/profile", Row{"name": "default-encryption", "default": "true"})
	return s
}

// Listen serves the plain API on addr (e.g. "127.0.0.1:0") until Close, for
// programs that are not tests (the operations soak, bench/soak).
func Listen(addr string) (*Server, error) {
	s := newServer()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.ln = ln
	go s.serve(ln)
	return s, nil
}

// Reopen brings a closed plain-API router back on the same port with the
// menus it had: the router is up again after an outage.
func (s *Server) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		return nil
	}
	if s.tlsConf != nil {
		return errors.New("routerostest: Reopen serves the plain API only")
	}
	ln, err := net.Listen("tcp", s.ln.Addr().String())
	if err != nil {
		return err
	}
	s.ln, s.closed = ln, false
	go s.serve(ln)
	return nil
}

// Host and Port of the listener.
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the listener's TCP port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln.Addr().(*net.TCPAddr).Port
}

// ClientTLS trusts the server's certificate (TLS servers only).
func (s *Server) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.tlsConf.Certificates[0].Leaf)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Close stops listening and drops every connection: the router is down.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	ln := s.ln
	s.mu.Unlock()
	ln.Close()
}

// DropConnections closes every open API connection while the router keeps
// listening: a dropped link, after which a client must dial again.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// SetPassword changes the API user's password: logins with the old one are
// refused ("invalid user name or password"), as after a change on the router.
func (s *Server) SetPassword(pw string) {
	s.mu.Lock()
	s.Password = pw
	s.mu.Unlock()
}

// Hang makes the router accept commands and never answer (a timeout), or
// answer again.
func (s *Server) Hang(on bool) {
	s.mu.Lock()
	s.hang = on
	s.mu.Unlock()
}

// TrapNext makes the next command on path (e.g. "/ppp/secret/add") fail with
// a !trap carrying message.
func (s *Server) TrapNext(path, message string) {
	s.mu.Lock()
	s.traps[path] = message
	s.mu.Unlock()
}

// Add puts an item into a menu (e.g. "/ppp/active") and returns its .id.
func (s *Server) Add(menu string, r Row) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(menu, r)
}

func (s *Server) addLocked(menu string, r Row) string {
	s.nextID++
	id := "*" + strings.ToUpper(strconv.FormatInt(int64(s.nextID), 16))
	cp := Row{".id": id}
	for k, v := range r {
		cp[k] = normBool(v)
	}
	if menu == "/ppp/secret" || menu == "/ip/hotspot/user" {
		if _, ok := cp["disabled"]; !ok {
			cp["disabled"] = "false"
		}
	}
	s.tables[menu] = append(s.tables[menu], cp)
	return id
}

// Set changes attributes of the item of menu whose .id or name is ref, as
// someone editing the router by hand would; it reports whether the item
// exists.
func (s *Server) Set(menu, ref string, attrs Row) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.findLocked(menu, ref)
	if j < 0 {
		return false
	}
	for k, v := range attrs {
		s.tables[menu][j][k] = normBool(v)
	}
	return true
}

// TrapPending reports whether a TrapNext on path has not met its command yet.
func (s *Server) TrapPending(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.traps[path]
	return ok
}

// Rows returns a copy of a menu's items.
func (s *Server) Rows(menu string) []Row {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Row, 0, len(s.tables[menu]))
	for _, r := range s.tables[menu] {
		cp := Row{}
		for k, v := range r {
			cp[k] = v
		}
		out = append(out, cp)
	}
	return out
}

// Find returns the item of menu whose name is name, or nil.
func (s *Server) Find(menu, name string) Row {
	for _, r := range s.Rows(menu) {
		if r["name"] == name {
			return r
		}
	}
	return nil
}

// Remove deletes the item with .id id from a menu (a session ending).
func (s *Server) Remove(menu, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.findLocked(menu, id); j >= 0 {
		s.tables[menu] = append(s.tables[menu][:j], s.tables[menu][j+1:]...)
	}
}

// Clear empties a menu.
func (s *Server) Clear(menu string) {
	s.mu.Lock()
	delete(s.tables, menu)
	s.mu.Unlock()
}

// Commands returns every command received after login, each as its words.
func (s *Server) Commands() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.commands...)
}

// CommandPaths returns the first word of every command received.
func (s *Server) CommandPaths() []string {
	var out []string
	for _, c := range s.Commands() {
		out = append(out, c[0])
	}
	return out
}

// Logins counts successful logins (one per connection).
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

func (s *Server) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	w := proto.NewWriter(c)
	loggedIn := false
	for {
		words, err := readSentence(r)
		if err != nil {
			return
		}
		if len(words) == 0 {
			continue
		}
		var tag string
		var rest []string
		for _, wd := range words[1:] {
			if strings.HasPrefix(wd, ".tag=") {
				tag = wd[5:]
				continue
			}
			rest = append(rest, wd)
		}
		s.mu.Lock()
		hang := s.hang
		s.mu.Unlock()
		if hang {
			continue // never answer: the client times out
		}
		var replies []sentence
		if words[0] == "/login" {
			attrs, _ := parse(rest)
			s.mu.Lock()
			user, pw := s.Username, s.Password
			s.mu.Unlock()
			if attrs["name"] == user && attrs["password"] == pw {
				loggedIn = true
				s.mu.Lock()
				s.logins++
				s.mu.Unlock()
				replies = []sentence{{word: "!done"}}
			} else {
				replies = trap("invalid user name or password (6)")
			}
		} else if !loggedIn {
			replies = []sentence{{word: "!fatal", attrs: [][2]string{{"message", "not logged in"}}}}
		} else {
			replies = s.command(words[0], rest)
		}
		for _, rep := range replies {
			w.BeginSentence()
			w.WriteWord(rep.word)
			if tag != "" {
				w.WriteWord(".tag=" + tag)
			}
			for _, kv := range rep.attrs {
				w.WriteWord("=" + kv[0] + "=" + kv[1])
			}
			if err := w.EndSentence(); err != nil {
				return
			}
		}
		if len(replies) > 0 && replies[0].word == "!fatal" {
			return
		}
	}
}

type sentence struct {
	word  string
	attrs [][2]string
}

func trap(msg string) []sentence {
	return []sentence{{word: "!trap", attrs: [][2]string{{"message", msg}}}, {word: "!done"}}
}

func done() []sentence { return []sentence{{word: "!done"}} }

// parse splits request words into =attributes and ?queries.
func parse(words []string) (attrs map[string]string, queries [][2]string) {
	attrs = map[string]string{}
	for _, wd := range words {
		switch {
		case strings.HasPrefix(wd, "="):
			k, v, _ := strings.Cut(wd[1:], "=")
			attrs[k] = v
		case strings.HasPrefix(wd, "?"):
			k, v, _ := strings.Cut(wd[1:], "=")
			queries = append(queries, [2]string{k, v})
		}
	}
	return attrs, queries
}

func (s *Server) command(path string, words []string) []sentence {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = append(s.commands, append([]string{path}, words...))
	if msg, ok := s.traps[path]; ok {
		delete(s.traps, path)
		return trap(msg)
	}
	i := strings.LastIndex(path, "/")
	if i <= 0 {
		return trap("no such command prefix")
	}
	menu, cmd := path[:i], path[i+1:]
	attrs, queries := parse(words)
	switch path {
	case "/system/resource/print":
		return []sentence{{word: "!re", attrs: [][2]string{{"uptime", "1w2d3h"}, {"version", "7.14.3 (stable)"},
			{"cpu-load", "3"}, {"free-memory", "123456789"}, {"total-memory", "268435456"}, {"board-name", "fake"}}}, {word: "!done"}}
	case "/system/identity/print":
		return []sentence{{word: "!re", attrs: [][2]string{{"name", s.Identity}}}, {word: "!done"}}
	}
	switch cmd {
	case "print", "getall":
		var out []sentence
		for _, r := range s.tables[menu] {
			if !matches(r, queries) {
				continue
			}
			out = append(out, sentence{word: "!re", attrs: props(r, attrs[".proplist"])})
		}
		return append(out, sentence{word: "!done"})
	case "add":
		if attrs["name"] != "" && uniqueNames[menu] && s.findLocked(menu, attrs["name"]) >= 0 {
			return trap("failure: secret with the same name already exists")
		}
		if msg := s.checkRefs(menu, attrs); msg != "" {
			return trap(msg)
		}
		id := s.addLocked(menu, Row(attrs))
		return []sentence{{word: "!done", attrs: [][2]string{{"ret", id}}}}
	case "set", "unset", "remove", "disable", "enable":
		ref := attrs[".id"]
		if ref == "" {
			ref = attrs["numbers"]
		}
		delete(attrs, ".id")
		delete(attrs, "numbers")
		if cmd == "set" {
			if msg := s.checkRefs(menu, attrs); msg != "" {
				return trap(msg)
			}
		}
		var idx []int
		for _, one := range strings.Split(ref, ",") {
			j := s.findLocked(menu, one)
			if j < 0 {
				return trap("no such item")
			}
			idx = append(idx, j)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(idx)))
		for _, j := range idx {
			switch cmd {
			case "set":
				for k, v := range attrs {
					s.tables[menu][j][k] = normBool(v)
				}
			case "unset":
				delete(s.tables[menu][j], attrs["value-name"])
			case "disable":
				s.tables[menu][j]["disabled"] = "true"
			case "enable":
				s.tables[menu][j]["disabled"] = "false"
			case "remove":
				s.tables[menu] = append(s.tables[menu][:j], s.tables[menu][j+1:]...)
			}
		}
		return done()
	}
	return trap("no such command")
}

// uniqueNames are the menus whose items' names are unique, as on RouterOS.
var uniqueNames = map[string]bool{"/ppp/secret": true, "/ppp/profile": true, "/ip/hotspot/user": true,
	"/ip/hotspot/user/profile": true, "/queue/simple": true}

// checkRefs refuses a secret naming a PPP profile the router does not have,
// with RouterOS's own message.
func (s *Server) checkRefs(menu string, attrs map[string]string) string {
	if p, ok := attrs["profile"]; ok && menu == "/ppp/secret" && s.findLocked("/ppp/profile", p) < 0 {
		return "input does not match any value of profile"
	}
	return ""
}

// findLocked finds an item by .id or by name.
func (s *Server) findLocked(menu, ref string) int {
	for j, r := range s.tables[menu] {
		if r[".id"] == ref || (ref != "" && r["name"] == ref) {
			return j
		}
	}
	return -1
}

func normBool(v string) string {
	switch v {
	case "yes":
		return "true"
	case "no":
		return "false"
	}
	return v
}

func matches(r Row, queries [][2]string) bool {
	for _, q := range queries {
		if strings.HasPrefix(q[0], "#") {
			continue // stack operations are not modelled; plain queries AND together
		}
		if r[q[0]] != q[1] {
			return false
		}
	}
	return true
}

func props(r Row, proplist string) [][2]string {
	keys := make([]string, 0, len(r))
	if proplist != "" {
		keys = strings.Split(proplist, ",")
	} else {
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	var out [][2]string
	for _, k := range keys {
		if v, ok := r[k]; ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// readSentence decodes one sentence: length-prefixed words up to an empty one.
func readSentence(r *bufio.Reader) ([]string, error) {
	var words []string
	for {
		n, err := readLength(r)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return words, nil
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		words = append(words, string(b))
	}
}

func readLength(r *bufio.Reader) (int, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	var extra int
	var n int
	switch {
	case b&0x80 == 0:
		return int(b), nil
	case b&0xC0 == 0x80:
		extra, n = 1, int(b&0x3F)
	case b&0xE0 == 0xC0:
		extra, n = 2, int(b&0x1F)
	case b&0xF0 == 0xE0:
		extra, n = 3, int(b&0x0F)
	case b == 0xF0:
		extra, n = 4, 0
	default:
		return 0, errors.New("routerostest: control byte in length")
	}
	for i := 0; i < extra; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n = n<<8 | int(c)
	}
	return n, nil
}

func selfSigned(t testing.TB) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fake-router"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
}
