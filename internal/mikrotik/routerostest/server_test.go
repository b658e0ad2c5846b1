package routerostest

import (
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3"
)

// TestListenCloseReopen: a router started outside a test goes down (dials
// are refused) and comes back on the same port with the menus it had.
func TestListenCloseReopen(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Add("/ppp/secret", Row{"name": "alice", "password": "pw"})
	port := s.Port()
	addr := s.ln.Addr().String()

	dial := func() (*routeros.Client, error) {
		return routeros.DialTimeout(addr, s.Username, s.Password, 2*time.Second)
	}
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	s.Close()
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("a closed router accepted a connection")
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Fatalf("back on port %d, was %d", s.Port(), port)
	}
	c, err = dial()
	if err != nil {
		t.Fatalf("after Reopen: %v", err)
	}
	defer c.Close()
	reply, err := c.Run("/ppp/secret/print", "?name=alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Re) != 1 || reply.Re[0].Map["password"] != "pw" {
		t.Fatalf("menus after Reopen: %+v", reply.Re)
	}
	if s.Logins() != 2 {
		t.Fatalf("%d logins, want 2", s.Logins())
	}
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen of a running router: %v", err)
	}
}
