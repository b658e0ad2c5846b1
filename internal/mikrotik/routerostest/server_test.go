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

// TestSetByHandAndTrapPending: a change made by hand shows in the next print,
// and a one-shot trap is pending until its command arrives.
func TestSetByHandAndTrapPending(t *testing.T) {
	s := Start(t)
	id := s.Add("/ppp/secret", Row{"name": "alice", "password": "pw", "disabled": "false"})
	if !s.Set("/ppp/secret", "alice", Row{"disabled": "yes", "profile": "default"}) {
		t.Fatal("Set found no alice")
	}
	if s.Set("/ppp/secret", "bob", Row{"disabled": "yes"}) {
		t.Fatal("Set found a bob that does not exist")
	}
	s.TrapNext("/ppp/secret/set", "failure: busy")
	if !s.TrapPending("/ppp/secret/set") {
		t.Fatal("trap not pending before its command")
	}
	c, err := routeros.DialTimeout(s.ln.Addr().String(), s.Username, s.Password, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Run("/ppp/secret/print", "?name=alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Re) != 1 || reply.Re[0].Map["disabled"] != "true" || reply.Re[0].Map["profile"] != "default" {
		t.Fatalf("print after Set: %+v", reply.Re)
	}
	if _, err := c.Run("/ppp/secret/set", "=.id="+id, "=disabled=no"); err == nil {
		t.Fatal("the trapped set succeeded")
	}
	if s.TrapPending("/ppp/secret/set") {
		t.Fatal("trap still pending after its command")
	}
	if _, err := c.Run("/ppp/secret/set", "=.id="+id, "=disabled=no"); err != nil {
		t.Fatalf("second set: %v", err)
	}
}
