package mikrotik_test

import (
	"context"
	"testing"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
	"github.com/ispgraph/ispgraph/internal/tenancy"
)

// TestBurstInTheProfile: a package's burst fields extend the PPP profile's
// rate limit, and a change of them is reconciled.
func TestBurstInTheProfile(t *testing.T) {
	f := newFixture(t)
	f.db.Client.ServicePackage.UpdateOne(f.basic).SetBurstUpKbps(2000).SetBurstDownKbps(10000).
		SetBurstThresholdUpKbps(800).SetBurstThresholdDownKbps(4000).SetBurstTimeSeconds(16).ExecX(f.ctx)
	f.db.Client.NetworkUser.Create().SetUsername("burst").SetServicePassword("pw").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).ExecX(f.ctx)
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if p := f.fake.Find("/ppp/profile", "basic-5m"); p == nil || p["rate-limit"] != "1000k/5000k 2000k/10000k 800k/4000k 16/16" {
		t.Fatalf("profile %v", p)
	}
	// Burst removed: the next reconciliation sets the plain rate.
	f.db.Client.ServicePackage.UpdateOne(f.basic).SetBurstUpKbps(0).SetBurstDownKbps(0).ExecX(f.ctx)
	if _, err := f.svc.Reconcile(context.Background(), f.tenant, f.router.ID); err != nil {
		t.Fatal(err)
	}
	if p := f.fake.Find("/ppp/profile", "basic-5m"); p["rate-limit"] != "1000k/5000k" {
		t.Fatalf("profile after the burst was removed %v", p)
	}
}

// TestAddressListSuspension: under the ADDRESS_LIST mode a suspended PPPoE
// subscriber keeps an enabled secret on the ispgraph-suspended profile (its
// session ended once, so it reconnects into the list) and a suspended STATIC
// one stays queued and is listed in ispgraph-suspended; reactivation undoes
// both, and reconciliation finds nothing to repair in between.
func TestAddressListSuspension(t *testing.T) {
	f := newFixture(t)
	f.db.Client.Tenant.UpdateOneID(f.tenant).SetSettings(map[string]any{mikrotik.SettingSuspensionMode: mikrotik.SuspendAddressList}).
		ExecX(tenancy.Bypass(f.ctx))
	ppp := f.db.Client.NetworkUser.Create().SetUsername("lisa").SetServicePassword("pw").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).SaveX(f.ctx)
	shop := f.db.Client.NetworkUser.Create().SetUsername("shop").SetServiceType(networkuser.ServiceTypeSTATIC).
		SetStaticIP("100.64.0.30").SetPackageID(f.basic.ID).SetRouterID(f.router.ID).SaveX(f.ctx)
	noErrors(t, f.runJobs(), jobs.RouterProvision, 2)
	f.fake.Add("/ppp/active", routerostest.Row{"name": "lisa", "address": "10.0.0.30"})

	setStatus := func(s networkuser.Status) {
		t.Helper()
		if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
			return c.NetworkUser.Update().Where(networkuser.IDIn(ppp.ID, shop.ID)).SetStatus(s).Exec(ctx)
		}); err != nil {
			t.Fatal(err)
		}
		noErrors(t, f.runJobs(), jobs.RouterProvision, 2)
	}
	lists := func() map[string]bool {
		out := map[string]bool{}
		for _, r := range f.fake.Rows("/ip/firewall/address-list") {
			out[r["list"]+":"+r["address"]] = true
		}
		return out
	}

	setStatus(networkuser.StatusSUSPENDED)
	sec := f.fake.Find("/ppp/secret", "lisa")
	if sec["disabled"] != "false" || sec["profile"] != mikrotik.SuspendedProfile {
		t.Fatalf("suspended secret %v", sec)
	}
	if p := f.fake.Find("/ppp/profile", mikrotik.SuspendedProfile); p == nil || p["address-list"] != mikrotik.SuspendedList {
		t.Fatalf("suspended profile %v", p)
	}
	if f.fake.Find("/ppp/active", "lisa") != nil {
		t.Fatal("the session was not ended to move it into the list")
	}
	q := f.fake.Find("/queue/simple", "shop")
	if l := lists(); q["disabled"] != "false" || !l["ispgraph-suspended:100.64.0.30"] || !l["ispgraph-active:100.64.0.30"] {
		t.Fatalf("suspended STATIC subscriber: queue %v, lists %v", q, l)
	}
	// Back online into the list: not drift, and reconciliation leaves it.
	f.fake.Add("/ppp/active", routerostest.Row{"name": "lisa", "address": "10.0.0.30"})
	if d, err := f.svc.RouterDrift(f.ctx, f.router.ID); err != nil || len(d) != 0 {
		t.Fatalf("drift while listed: %v %v", driftKinds(d), err)
	}

	setStatus(networkuser.StatusACTIVE)
	if sec := f.fake.Find("/ppp/secret", "lisa"); sec["profile"] != "basic-5m" || sec["disabled"] != "false" {
		t.Fatalf("reactivated secret %v", sec)
	}
	if l := lists(); l["ispgraph-suspended:100.64.0.30"] || !l["ispgraph-active:100.64.0.30"] {
		t.Fatalf("reactivated lists %v", l)
	}
	if d, err := f.svc.RouterDrift(f.ctx, f.router.ID); err != nil || len(d) != 0 {
		t.Fatalf("drift after reactivation: %v %v", driftKinds(d), err)
	}

	// INACTIVE is not a suspension: disabled and out of every list.
	setStatus(networkuser.StatusINACTIVE)
	if sec := f.fake.Find("/ppp/secret", "lisa"); sec["disabled"] != "true" {
		t.Fatalf("inactive secret %v", sec)
	}
	if l := lists(); len(l) != 0 {
		t.Fatalf("inactive lists %v", l)
	}
}
