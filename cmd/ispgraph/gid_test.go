package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestOpaqueIDsAcrossTenants: another tenant's valid id gets exactly the
// answer a random id, a malformed id and an id of the old readable format get
// (NOT_FOUND, one message, null at the same path) from node and from a
// mutation, and no answer carries the integer behind the id.
func TestOpaqueIDsAcrossTenants(t *testing.T) {
	m, base, _, pool := securityEnv(t, nil)
	t1 := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	t2 := login(t, base, "t2", "admin@t2.example", "bench-pass-1")
	var d struct {
		Invoices struct {
			Edges []struct{ Node struct{ ID string } }
		}
		Packages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	first := func(token string) (invoice, pkg string) {
		t.Helper()
		json.Unmarshal(mustData(t, base, token, `{ invoices(first: 1) { edges { node { id } } } packages(first: 1) { edges { node { id } } } }`, nil), &d)
		if len(d.Invoices.Edges) == 0 || len(d.Packages.Edges) == 0 {
			t.Fatal("no invoice or package seeded")
		}
		return d.Invoices.Edges[0].Node.ID, d.Packages.Edges[0].Node.ID
	}
	ownInvoice, _ := first(t1)
	theirInvoice, theirPackage := first(t2)
	theirInt, err := m.IDs.Decode(theirInvoice)
	if err != nil {
		t.Fatal(err)
	}
	var owner int
	if err := pool.QueryRow(context.Background(), `SELECT tenant_id FROM invoices WHERE id = $1`, theirInt).Scan(&owner); err != nil || owner == 0 {
		t.Fatalf("their invoice %d: tenant %d, %v", theirInt, owner, err)
	}
	randomBytes := make([]byte, 16)
	rand.Read(randomBytes)
	random := base64.RawURLEncoding.EncodeToString(randomBytes)
	legacy := base64.RawURLEncoding.EncodeToString([]byte("ig1:" + strconv.Itoa(theirInt)))

	answer := func(query string, id string) string {
		t.Helper()
		r := post(t, base, t1, query, map[string]any{"id": id})
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), strconv.Itoa(theirInt)) {
			t.Errorf("%s with %q: the answer carries the integer %d: %s", query, id, theirInt, b)
		}
		return string(b)
	}
	for _, query := range []string{
		`query($id: ID!) { node(id: $id) { id } }`,
		`query($id: ID!) { node(id: $id) { ... on Invoice { number total } } }`,
		`mutation($id: ID!) { updatePackage(id: $id, input: {name: "taken over"}) { id } }`,
	} {
		id := theirInvoice
		if strings.Contains(query, "updatePackage") {
			id = theirPackage
		}
		want := answer(query, id)
		if !strings.Contains(want, `"code":"NOT_FOUND"`) {
			t.Fatalf("%s with another tenant's id: %s", query, want)
		}
		for _, other := range []string{random, "42", legacy, ""} {
			if got := answer(query, other); got != want {
				t.Errorf("%s:\n another tenant's id: %s\n %q: %s", query, want, other, got)
			}
		}
	}

	// nodes: the tenant's own id resolves, the other tenant's is null with
	// NOT_FOUND at its index and no integer in the message.
	r := post(t, base, t1, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{ownInvoice, theirInvoice}})
	b, _ := json.Marshal(r)
	if r.code() != "NOT_FOUND" || len(r.Errors) != 1 || !strings.Contains(string(r.Data), ownInvoice) ||
		strings.Contains(string(b), strconv.Itoa(theirInt)) {
		t.Fatalf("nodes with an own and a foreign id: %s", b)
	}
	var pkgName string
	pool.QueryRow(context.Background(), `SELECT name FROM packages WHERE tenant_id = $1 AND name = 'taken over'`, owner).Scan(&pkgName)
	if pkgName != "" {
		t.Fatal("another tenant's package was renamed")
	}
}
