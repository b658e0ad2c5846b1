package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// customerFlow runs the customer portal end to end as a subscriber would: the
// tenant's admin sets a portal password, the subscriber logs in, reads its
// dashboard and logs out, and the token stops working.
func customerFlow(t *testing.T, base, tenant, adminToken string) {
	t.Helper()
	var users struct {
		NetworkUsers struct {
			Edges []struct{ Node struct{ ID, Username string } }
		}
	}
	data(t, post(t, base, adminToken, `{ networkUsers(first: 1, where: {status: ACTIVE}) { edges { node { id username } } } }`, nil), &users)
	if len(users.NetworkUsers.Edges) != 1 {
		t.Fatalf("no active subscriber in %s", tenant)
	}
	nu := users.NetworkUsers.Edges[0].Node
	mustData(t, base, adminToken, `mutation($id: ID!) { setPortalPassword(networkUserID: $id, password: "portal-pass-42") { id portalPasswordSet } }`,
		map[string]any{"id": nu.ID})

	token := customerLogin(t, base, tenant, nu.Username, "portal-pass-42")
	var dash struct {
		Viewer            struct{ Kind string }
		CustomerDashboard struct {
			NetworkUser struct{ ID, Username string }
			AmountDue   string
		}
	}
	data(t, post(t, base, token, `{ viewer { kind } customerDashboard { networkUser { id username } amountDue } }`, nil), &dash)
	if dash.Viewer.Kind != "CUSTOMER" || dash.CustomerDashboard.NetworkUser.ID != nu.ID || dash.CustomerDashboard.AmountDue == "" {
		t.Fatalf("customer dashboard: %+v", dash)
	}
	if r := post(t, base, token, `mutation { logout }`, nil); len(r.Errors) > 0 {
		t.Fatalf("customer logout: %+v", r.Errors)
	}
	if r := post(t, base, token, `{ viewer { kind } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("token after logout: %s %+v", r.Data, r.Errors)
	}
	// A wrong password is refused with the same message as an unknown user.
	r := post(t, base, "", `mutation($t: String, $u: String!) { customerLogin(input: {tenant: $t, username: $u, password: "wrong-pass-1"}) { token } }`,
		map[string]any{"t": tenant, "u": nu.Username})
	if r.code() != "UNAUTHENTICATED" || !strings.Contains(r.Errors[0].Message, "invalid username or password") {
		b, _ := json.Marshal(r.Errors)
		t.Fatalf("wrong portal password: %s", b)
	}
}

// TestCustomerFlowEmbeddedDefault runs the customer flow on the embedded
// default (SQLite), where a token written outside the login's transaction
// waited on that transaction's lock and failed with "database is locked".
func TestCustomerFlowEmbeddedDefault(t *testing.T) {
	_, base := startServer(t, map[string]string{"ISPGRAPH_DATA_DIR": t.TempDir(), "ISPGRAPH_DEMO_PASSWORD": "demo-secret-1"})
	customerFlow(t, base, "demo", login(t, base, "demo", "admin@demo.example", "demo-secret-1"))
}

// TestCustomerFlowPostgres runs the same flow on Postgres and Redis.
func TestCustomerFlowPostgres(t *testing.T) {
	_, base, _, _ := securityEnv(t, nil)
	customerFlow(t, base, "t1", login(t, base, "t1", "admin@t1.example", "bench-pass-1"))
}
