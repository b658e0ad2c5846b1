package main

import (
	"context"
	"testing"

	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// TestReconcileOverHTTP drives routerDrift, reconcileRouter,
// deleteNetworkUser, the service-password rule and a repeated
// syncRouterSessions through the API, and checks that another tenant's
// router and subscriber stay out of reach.
func TestReconcileOverHTTP(t *testing.T) {
	m, base := startServer(t, map[string]string{"ISPGRAPH_DATA_DIR": t.TempDir(), "ISPGRAPH_DEMO_PASSWORD": "demo-secret-1", "ISPGRAPH_WORKERS": "false"})
	token := login(t, base, "demo", "admin@demo.example", "demo-secret-1")
	bg := context.Background()
	demo := m.DB.Client.Tenant.Query().Where(tenant.Slug("demo")).OnlyX(tenancy.Bypass(bg))
	ctx := viewer.ForTenant(bg, demo.ID)

	fake := routerostest.Start(t)
	fake.Password = ""
	var rt struct{ CreateRouter struct{ ID string } }
	data(t, post(t, base, token, `mutation($p: Int!) { createRouter(input: {name: "Fake", host: "127.0.0.1", apiPort: $p, username: "ispgraph"}) { id } }`,
		map[string]any{"p": fake.Port()}), &rt)

	// A PPPoE subscriber without a service password is refused.
	if r := post(t, base, token, `mutation($r: ID!) { createNetworkUser(input: {username: "nopw", routerID: $r}) { id } }`,
		map[string]any{"r": rt.CreateRouter.ID}); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("PPPoE without a password: %+v", r.Errors)
	}
	var nu struct{ CreateNetworkUser struct{ ID string } }
	data(t, post(t, base, token, `mutation($r: ID!) { createNetworkUser(input: {username: "rec-1", servicePassword: "pw", routerID: $r}) { id } }`,
		map[string]any{"r": rt.CreateRouter.ID}), &nu)
	runRouterJobs(t, m, ctx)
	if fake.Find("/ppp/secret", "rec-1") == nil {
		t.Fatal("secret not created")
	}

	// Drift: the secret removed by hand on the router.
	fake.Remove("/ppp/secret", fake.Find("/ppp/secret", "rec-1")[".id"])
	var dr struct {
		RouterDrift []struct{ Kind, Menu, Name, Detail, NetworkUserID string }
	}
	data(t, post(t, base, token, `query($r: ID!) { routerDrift(routerID: $r) { kind menu name detail networkUserID } }`,
		map[string]any{"r": rt.CreateRouter.ID}), &dr)
	if len(dr.RouterDrift) != 1 || dr.RouterDrift[0].Kind != "MISSING" || dr.RouterDrift[0].NetworkUserID != nu.CreateNetworkUser.ID {
		t.Fatalf("drift: %+v", dr)
	}
	var rc struct{ ReconcileRouter bool }
	data(t, post(t, base, token, `mutation($r: ID!) { reconcileRouter(routerID: $r) }`, map[string]any{"r": rt.CreateRouter.ID}), &rc)
	if n := m.DB.Client.OutboxJob.Query().Where(outboxjob.JobName(jobs.ReconcileRouter), outboxjob.StatusEQ(outboxjob.StatusPENDING)).CountX(ctx); n < 1 {
		t.Fatal("reconcileRouter queued nothing")
	}
	for _, row := range m.DB.Client.OutboxJob.Query().Where(outboxjob.JobName(jobs.ReconcileRouter), outboxjob.StatusEQ(outboxjob.StatusPENDING)).AllX(ctx) {
		var a jobs.ReconcileRouterArgs
		_ = jobs.FromMap(row.Args, &a)
		if _, err := m.Mikrotik.Reconcile(bg, a.TenantID, a.RouterID); err != nil {
			t.Fatal(err)
		}
		m.DB.Client.OutboxJob.UpdateOne(row).SetStatus(outboxjob.StatusENQUEUED).ExecX(ctx)
	}
	data(t, post(t, base, token, `query($r: ID!) { routerDrift(routerID: $r) { kind } }`, map[string]any{"r": rt.CreateRouter.ID}), &dr)
	if len(dr.RouterDrift) != 0 || fake.Find("/ppp/secret", "rec-1") == nil {
		t.Fatalf("drift after reconcile: %+v", dr)
	}

	// A second sync in the same minute says so.
	data(t, post(t, base, token, `mutation($r: ID!) { syncRouterSessions(routerID: $r) }`, map[string]any{"r": rt.CreateRouter.ID}), &struct{}{})
	if r := post(t, base, token, `mutation($r: ID!) { syncRouterSessions(routerID: $r) }`, map[string]any{"r": rt.CreateRouter.ID}); r.code() != "RATE_LIMITED" {
		t.Fatalf("second sync in the minute: %+v", r.Errors)
	}

	// Delete: the books keep the subscriber, the router loses it.
	var del struct{ DeleteNetworkUser struct{ Status string } }
	data(t, post(t, base, token, `mutation($id: ID!) { deleteNetworkUser(id: $id) { status } }`, map[string]any{"id": nu.CreateNetworkUser.ID}), &del)
	if del.DeleteNetworkUser.Status != "DELETED" {
		t.Fatalf("delete: %+v", del)
	}
	runRouterJobs(t, m, ctx)
	if fake.Find("/ppp/secret", "rec-1") != nil {
		t.Fatal("deleted subscriber's secret left on the router")
	}

	// Another tenant's router and subscriber are not found.
	other := m.DB.Client.Tenant.Create().SetName("Other").SetSlug("other").SetDomain("other.example").SaveX(tenancy.Bypass(bg))
	octx := viewer.ForTenant(bg, other.ID)
	ort := m.DB.Client.Router.Create().SetName("Theirs").SetHost("127.0.0.1").SetAPIPort(fake.Port()).SetUsername("ispgraph").SaveX(octx)
	ou := m.DB.Client.NetworkUser.Create().SetUsername("theirs").SetServicePassword("x").SaveX(octx)
	for _, q := range []struct{ query, id string }{
		{`query($id: ID!) { routerDrift(routerID: $id) { kind } }`, m.IDs.Encode(ort.ID)},
		{`mutation($id: ID!) { reconcileRouter(routerID: $id) }`, m.IDs.Encode(ort.ID)},
		{`mutation($id: ID!) { deleteNetworkUser(id: $id) { id } }`, m.IDs.Encode(ou.ID)},
	} {
		if r := post(t, base, token, q.query, map[string]any{"id": q.id}); r.code() != "NOT_FOUND" {
			t.Errorf("%s across tenants: %+v", q.query, r.Errors)
		}
	}
	if got := m.DB.Client.NetworkUser.GetX(octx, ou.ID); got.Status != networkuser.StatusACTIVE {
		t.Fatal("another tenant's subscriber was changed")
	}
}
