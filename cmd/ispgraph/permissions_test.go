package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// pathResponse is a GraphQL answer with each error's path.
type pathResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	raw string
}

// errorsAt returns "CODE path" for every error, the path joined with dots,
// sorted (fields resolve concurrently, so errors come in any order).
func (r pathResponse) errorsAt() []string {
	var out []string
	for _, e := range r.Errors {
		parts := make([]string, len(e.Path))
		for i, p := range e.Path {
			parts[i] = fmt.Sprint(p)
		}
		out = append(out, fmt.Sprintf("%v %s", e.Extensions["code"], strings.Join(parts, ".")))
	}
	slices.Sort(out)
	return out
}

func postPaths(t *testing.T, base, token, query string, vars map[string]any) pathResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	status, raw := sendGraphQL(t, base, token, body, nil)
	out := pathResponse{raw: string(raw)}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("status %d, body %s: %v", status, raw, err)
	}
	return out
}

// apiKey creates an API key with scopes as the admin token and returns its secret.
func apiKey(t *testing.T, base, admin string, scopes ...string) string {
	t.Helper()
	var d struct{ CreateAPIKey struct{ Secret string } }
	json.Unmarshal(mustData(t, base, admin, `mutation($s: [String!]!) { createAPIKey(input: {name: "perm-test", scopes: $s}) { secret } }`,
		map[string]any{"s": scopes}), &d)
	return d.CreateAPIKey.Secret
}

// TestNestedReadPermissions: the read permission of a type holds on every
// path to it. A partner key that may read subscribers and billing but not
// routers or staff gets those nested fields as null with FORBIDDEN at their
// path, and the rest of its answer.
func TestNestedReadPermissions(t *testing.T) {
	_, base, _, pool := securityEnv(t, nil)
	admin := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	ids := plant(t, base, admin)
	mustData(t, base, admin, `mutation($id: ID!, $r: ID!) { updateNetworkUser(id: $id, input: {routerID: $r}) { id } }`,
		map[string]any{"id": ids["NetworkUser"], "r": ids["Router"]})

	key := apiKey(t, base, admin, authz.BillingRead, authz.NetworkUsersRead)
	r := postPaths(t, base, key, `query($nu: ID!) { invoices(first: 2, where: {hasNetworkUserWith: [{id: $nu}]}) {
		totalCount edges { node { number networkUser { username router { host username } } } } } }`, map[string]any{"nu": ids["NetworkUser"]})
	var d struct {
		Invoices struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					Number      string
					NetworkUser struct {
						Username string
						Router   *struct{ Host string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || len(d.Invoices.Edges) == 0 {
		t.Fatalf("no invoices: %s", r.raw)
	}
	var want []string
	for i, e := range d.Invoices.Edges {
		if e.Node.Number == "" || e.Node.NetworkUser.Username == "" || e.Node.NetworkUser.Router != nil {
			t.Errorf("invoice %d: %+v", i, e.Node)
		}
		want = append(want, fmt.Sprintf("FORBIDDEN invoices.edges.%d.node.networkUser.router", i))
	}
	if got := r.errorsAt(); !slices.Equal(got, want) {
		t.Errorf("errors %v, want %v", got, want)
	}
	if strings.Contains(r.raw, "127.0.0.9") || !strings.Contains(r.raw, "routers:read") {
		t.Errorf("answer leaks the router or does not name the permission: %s", r.raw)
	}

	// billing:read alone: staff and roles through payments are refused at
	// their path, and so is the subscriber of a payment or an invoice: those
	// edges are nullable in the API, so the payment or invoice itself is
	// still answered.
	billing := apiKey(t, base, admin, authz.BillingRead)
	r = postPaths(t, base, billing, `{ payments(first: 1) { totalCount edges { node { amount collectedBy { email role { permissions } } } } } }`, nil)
	if got := r.errorsAt(); !slices.Equal(got, []string{"FORBIDDEN payments.edges.0.node.collectedBy"}) ||
		!strings.Contains(r.raw, `"amount":`) || !strings.Contains(r.raw, `"collectedBy":null`) || strings.Contains(r.raw, "@t1.example") {
		t.Errorf("payment.collectedBy for billing:read: %s", r.raw)
	}
	r = postPaths(t, base, billing, `{ payments(first: 1) { totalCount edges { cursor node { amount networkUser { username } } } } }`, nil)
	if got := r.errorsAt(); !slices.Equal(got, []string{"FORBIDDEN payments.edges.0.node.networkUser"}) ||
		!strings.Contains(r.raw, `"totalCount":`) || !strings.Contains(r.raw, `"amount":`) ||
		!strings.Contains(r.raw, `"networkUser":null`) || !strings.Contains(r.raw, `"cursor":`) {
		t.Errorf("payment.networkUser for billing:read: %s", r.raw)
	}
	r = postPaths(t, base, billing, `query($id: ID!) { node(id: $id) { ... on Invoice { number total networkUser { username } } } }`,
		map[string]any{"id": ids["Invoice"]})
	var inv struct {
		Node *struct {
			Number      string
			NetworkUser *struct{ Username string }
		}
	}
	json.Unmarshal(r.Data, &inv)
	if got := r.errorsAt(); !slices.Equal(got, []string{"FORBIDDEN node.networkUser"}) ||
		inv.Node == nil || inv.Node.Number == "" || inv.Node.NetworkUser != nil || !strings.Contains(r.raw, "network_users:read") {
		t.Errorf("invoice.networkUser for billing:read: %s", r.raw)
	}

	// node and nodes check the type found.
	r = postPaths(t, base, billing, `query($id: ID!) { node(id: $id) { id ... on Router { host } } }`, map[string]any{"id": ids["Router"]})
	if got := r.errorsAt(); !slices.Equal(got, []string{"FORBIDDEN node"}) || strings.Contains(r.raw, "127.0.0.9") {
		t.Errorf("node(router) for billing:read: %s", r.raw)
	}
	r = postPaths(t, base, billing, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{ids["Invoice"], ids["Router"], ids["User"]}})
	if got := r.errorsAt(); !slices.Equal(got, []string{"FORBIDDEN nodes.1", "FORBIDDEN nodes.2"}) ||
		!strings.Contains(r.raw, ids["Invoice"]) || strings.Contains(r.raw, ids["Router"]) {
		t.Errorf("nodes(invoice, router, user) for billing:read: %s", r.raw)
	}
	if r := postPaths(t, base, billing, `{ routers { totalCount } }`, nil); !slices.Equal(r.errorsAt(), []string{"FORBIDDEN routers"}) {
		t.Errorf("routers for billing:read: %s", r.raw)
	}

	// A staff user reads its own record through viewer without staff:manage.
	staff := staffWithRole(t, base, pool, authz.RoleStaff)
	if r := postPaths(t, base, staff, `{ viewer { user { email } } }`, nil); len(r.Errors) > 0 || !strings.Contains(r.raw, "perm-staff@t1.example") {
		t.Errorf("viewer.user for the staff role: %s", r.raw)
	}
	if r := postPaths(t, base, staff, `{ payments(first: 1) { edges { node { collectedBy { email } } } } }`, nil); !slices.Equal(r.errorsAt(), []string{"FORBIDDEN payments.edges.0.node.collectedBy"}) {
		t.Errorf("payment.collectedBy for the staff role: %s", r.raw)
	}
	// A mutation's answer is checked too; refusing part of it rolls the
	// mutation back.
	writer := apiKey(t, base, admin, authz.NetworkUsersWrite)
	r = postPaths(t, base, writer, `mutation($id: ID!) { setPortalPassword(networkUserID: $id, password: "rolled-back-1") { id router { host } } }`,
		map[string]any{"id": ids["NetworkUser"]})
	if got := r.errorsAt(); !slices.Equal(got, []string{"FORBIDDEN setPortalPassword.router"}) || strings.Contains(r.raw, "127.0.0.9") {
		t.Errorf("mutation answer with a forbidden field: %s", r.raw)
	}
	var username string
	pool.QueryRow(context.Background(), `SELECT username FROM network_users WHERE portal_password_hash IS NOT NULL LIMIT 1`).Scan(&username)
	if r := post(t, base, "", `mutation($u: String!) { customerLogin(input: {tenant: "t1", username: $u, password: "rolled-back-1"}) { token } }`,
		map[string]any{"u": username}); r.code() != "UNAUTHENTICATED" {
		t.Errorf("the refused mutation was kept: %+v", r.Errors)
	}
}

// staffWithRole adds a staff user of tenant t1 with the named role and logs it in.
func staffWithRole(t *testing.T, base string, pool *pgxpool.Pool, roleName string) string {
	t.Helper()
	hash, err := auth.HashPassword("perm-pass-1")
	if err != nil {
		t.Fatal(err)
	}
	email := "perm-" + roleName + "@t1.example"
	if _, err := pool.Exec(context.Background(), `INSERT INTO users (tenant_id, name, email, password_hash, role_id, active, created_at, updated_at)
		SELECT t.id, $1, $2, $3, r.id, true, now(), now() FROM tenants t JOIN roles r ON r.tenant_id = t.id AND r.name = $1 WHERE t.slug = 't1'`,
		roleName, email, hash); err != nil {
		t.Fatal(err)
	}
	return login(t, base, "t1", email, "perm-pass-1")
}

// TestRoleEdits: staff:manage grants and removes only what the editor
// holds, and the admin role keeps every permission.
func TestRoleEdits(t *testing.T) {
	_, base, _, pool := securityEnv(t, nil)
	admin := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	roleIDs := map[string]string{}
	var d struct{ Roles []struct{ ID, Name string } }
	json.Unmarshal(mustData(t, base, admin, `{ roles { id name } }`, nil), &d)
	for _, r := range d.Roles {
		roleIDs[r.Name] = r.ID
	}
	mustData(t, base, admin, `mutation { createRole(input: {name: "role-editor", permissions: ["staff:manage", "billing:read"]}) { id } }`, nil)
	editor := staffWithRole(t, base, pool, "role-editor")
	permsOf := func(name string) []string {
		var p []string
		if err := pool.QueryRow(context.Background(), `SELECT r.permissions FROM roles r JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = 't1' AND r.name = $1`, name).Scan(&p); err != nil {
			t.Fatal(err)
		}
		slices.Sort(p)
		return p
	}
	adminBefore, accountantBefore := permsOf("admin"), permsOf("accountant")
	update := `mutation($id: ID!, $in: UpdateRoleInput!) { updateRole(id: $id, input: $in) { name permissions } }`
	for _, c := range []struct {
		name, token, role string
		in                map[string]any
		want              string
	}{
		{"strip the admin role", editor, "admin", map[string]any{"permissions": []string{"staff:manage"}}, "FORBIDDEN"},
		{"rename the admin role", editor, "admin", map[string]any{"name": "boss"}, "FORBIDDEN"},
		{"admin strips its own role", admin, "admin", map[string]any{"permissions": []string{"billing:read"}}, "FORBIDDEN"},
		{"remove a permission the editor lacks", editor, "accountant", map[string]any{"permissions": []string{"billing:read"}}, "FORBIDDEN"},
		{"grant a permission the editor lacks", editor, "accountant", map[string]any{"appendPermissions": []string{"routers:manage"}}, "FORBIDDEN"},
		{"grant an unknown permission", admin, "accountant", map[string]any{"appendPermissions": []string{"root:all"}}, "BAD_USER_INPUT"},
	} {
		if r := post(t, base, c.token, update, map[string]any{"id": roleIDs[c.role], "in": c.in}); r.code() != c.want {
			t.Errorf("%s: %q %+v, want %s", c.name, r.code(), r.Errors, c.want)
		}
	}
	if r := post(t, base, editor, `mutation { createRole(input: {name: "escalate", permissions: ["routers:manage"]}) { id } }`, nil); r.code() != "FORBIDDEN" {
		t.Errorf("create a role with a permission the editor lacks: %+v", r.Errors)
	}
	if got := permsOf("admin"); !slices.Equal(got, adminBefore) {
		t.Errorf("admin role changed: %v, was %v", got, adminBefore)
	}
	if got := permsOf("accountant"); !slices.Equal(got, accountantBefore) {
		t.Errorf("accountant role changed: %v, was %v", got, accountantBefore)
	}

	// What the editor holds it may take away and give back; the admin
	// role's description stays editable.
	without := slices.DeleteFunc(slices.Clone(accountantBefore), func(p string) bool { return p == authz.BillingRead })
	mustData(t, base, editor, update, map[string]any{"id": roleIDs["accountant"], "in": map[string]any{"permissions": without}})
	if got := permsOf("accountant"); slices.Contains(got, authz.BillingRead) || len(got) != len(accountantBefore)-1 {
		t.Errorf("accountant after removing billing:read: %v", got)
	}
	mustData(t, base, editor, update, map[string]any{"id": roleIDs["accountant"], "in": map[string]any{"appendPermissions": []string{authz.BillingRead}}})
	if got := permsOf("accountant"); !slices.Equal(got, accountantBefore) {
		t.Errorf("accountant after restoring billing:read: %v", got)
	}
	mustData(t, base, editor, update, map[string]any{"id": roleIDs["admin"], "in": map[string]any{"description": "The owners"}})
	var p struct {
		Viewer struct{ Permissions []string }
	}
	json.Unmarshal(mustData(t, base, admin, `{ viewer { permissions } }`, nil), &p)
	if !slices.Equal(slices.Sorted(slices.Values(p.Viewer.Permissions)), slices.Sorted(slices.Values(authz.All()))) {
		t.Errorf("admin holds %v, want every permission", p.Viewer.Permissions)
	}
}

// TestPortalPasswordRevokesTokens: changing or removing a subscriber's
// portal password ends its customer sessions at once, on every instance.
func TestPortalPasswordRevokesTokens(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	env := func() map[string]string {
		return map[string]string{
			"ISPGRAPH_JOB_NAMESPACE":  strings.TrimSuffix(prefix, ":"),
			"DATABASE_URL":            dbURL,
			"REDIS_URL":               redisURL,
			"ISPGRAPH_SECRET_KEY":     strings.Repeat("cd", 32),
			"ISPGRAPH_API_RATE_LIMIT": "100000",
		}
	}
	_, a, _ := startLoggedServer(t, env())
	_, b, _ := startLoggedServer(t, env())
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := seed.Bench(context.Background(), pool, seed.BenchOptions{
		Tenants: 1, Subscribers: 3, Months: 1, Password: "bench-pass-1",
		HashPassword: auth.HashPassword, Roles: roles(), Seed: 12,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	admin := login(t, a, "t1", "admin@t1.example", "bench-pass-1")
	var d struct {
		NetworkUsers struct {
			Edges []struct{ Node struct{ ID, Username string } }
		}
	}
	json.Unmarshal(mustData(t, a, admin, `{ networkUsers(first: 2, orderBy: {field: USERNAME}) { edges { node { id username } } } }`, nil), &d)
	me, other := d.NetworkUsers.Edges[0].Node, d.NetworkUsers.Edges[1].Node
	set := func(id string, pw any) {
		mustData(t, a, admin, `mutation($id: ID!, $p: String) { setPortalPassword(networkUserID: $id, password: $p) { id } }`, map[string]any{"id": id, "p": pw})
	}
	set(me.ID, "first-portal-1")
	set(other.ID, "other-portal-1")
	old := customerLogin(t, b, "t1", me.Username, "first-portal-1")
	bystander := customerLogin(t, b, "t1", other.Username, "other-portal-1")
	for _, base := range []string{a, b} {
		mustData(t, base, old, `{ customerDashboard { amountDue } }`, nil)
	}

	set(me.ID, "second-portal-1") // on instance a; the token is used on both
	for _, base := range []string{a, b} {
		if r := post(t, base, old, `{ customerDashboard { amountDue } }`, nil); r.code() != "UNAUTHENTICATED" {
			t.Errorf("token after a password change, on %s: %q %+v", base, r.code(), r.Errors)
		}
	}
	mustData(t, b, bystander, `{ customerDashboard { amountDue } }`, nil)
	if r := post(t, b, "", `mutation { customerLogin(input: {tenant: "t1", username: "`+me.Username+`", password: "first-portal-1"}) { token } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Errorf("old password still logs in: %+v", r.Errors)
	}
	current := customerLogin(t, b, "t1", me.Username, "second-portal-1")
	mustData(t, a, current, `{ customerDashboard { amountDue } }`, nil)

	set(me.ID, nil)
	for _, base := range []string{a, b} {
		if r := post(t, base, current, `{ customerDashboard { amountDue } }`, nil); r.code() != "UNAUTHENTICATED" {
			t.Errorf("token after the password was removed, on %s: %q %+v", base, r.code(), r.Errors)
		}
	}
	var live int
	pool.QueryRow(context.Background(), `SELECT count(*) FROM auth_tokens t JOIN network_users n ON n.id = t.network_user_id
		WHERE n.username = $1 AND t.revoked_at IS NULL`, me.Username).Scan(&live)
	if live != 0 {
		t.Errorf("%d customer tokens still live", live)
	}
}
