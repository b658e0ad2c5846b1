package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
)

// foreignItem is an item the operator made on a router by hand (no ispgraph
// marker): ispgraph must never change or remove it.
type foreignItem struct {
	menu, id string
	row      routerostest.Row // as made
}

// clashName is the name of the operator's PPTP secret that a subscriber
// created during the day also takes.
const clashName = "noc-tunnel"

// routerTrouble is what the router scenario saw, for its checks.
type routerTrouble struct {
	ran bool
	// refusal: the router refused the login and the change was recorded as
	// not in step; then the password fixed over the API converged.
	refusalRecorded, refusalConverged bool
	refusalError, routerLastError     string
	// clash: the subscriber named like the operator's secret showed the clash.
	clashReported bool
	clashError    string
	// trap: a !trap'd change; drift: hand-made changes on the router.
	trapHit, trapConverged bool
	driftMade              map[string]string // name → the kind routerDrift must list
	driftListed            map[string]string // name → kind routerDrift listed
	driftRepaired          bool
}

// addForeign puts the operator's own items on a tenant's router before
// ispgraph knows it: a PPP profile, a PPTP secret, a queue and an entry in the
// very address list ispgraph manages.
func (t *tenantRun) addForeign() {
	for _, f := range []struct {
		menu string
		row  routerostest.Row
	}{
		{"/ppp/profile", routerostest.Row{"name": "noc-profile", "rate-limit": "1M/1M", "comment": "NOC, made by hand"}},
		{"/ppp/secret", routerostest.Row{"name": clashName, "service": "pptp", "profile": "noc-profile", "password": "noc-pass", "comment": "NOC tunnel, made by hand"}},
		{"/queue/simple", routerostest.Row{"name": "noc-uplink", "target": "10.99.0.0/24", "max-limit": "100M/100M"}},
		{"/ip/firewall/address-list", routerostest.Row{"list": "ispgraph-active", "address": "10.99.0.1", "comment": "allowed by hand"}},
	} {
		id := t.router.Add(f.menu, f.row)
		var row routerostest.Row
		for _, r := range t.router.Rows(f.menu) {
			if r[".id"] == id {
				row = r
			}
		}
		t.foreign = append(t.foreign, foreignItem{menu: f.menu, id: id, row: row})
	}
}

// foreignName reports whether a secret name is the operator's.
func (t *tenantRun) foreignName(name string) bool {
	for _, f := range t.foreign {
		if f.menu == "/ppp/secret" && f.row["name"] == name {
			return true
		}
	}
	return false
}

// nodeState reads a subscriber's status and router state by id.
func (t *tenantRun) nodeState(ctx context.Context, id string) (subState, error) {
	var out struct{ Node subState }
	err := t.api.call(ctx, `query($id: ID!) { node(id: $id) { ... on NetworkUser { id username status routerSyncedAt routerSyncError } } }`,
		map[string]any{"id": id}, &out)
	return out.Node, err
}

// fullSecretReads counts whole-menu reads of /ppp/secret (what a
// reconciliation or a routerDrift query starts with).
func fullSecretReads(r *routerostest.Server) int {
	n := 0
	for _, c := range r.Commands() {
		if len(c) == 1 && c[0] == "/ppp/secret/print" {
			n++
		}
	}
	return n
}

// routers: the first tenant's router refuses ispgraph's login (its password
// was changed on the router), staff fix the password over the API and the
// change converges; a subscriber named like the operator's secret shows the
// clash and is deleted; then the router refuses one command (!trap) while
// someone edits the router by hand, and reconciliation repairs both.
func (d *day) routers(ctx context.Context, db *checkDB) {
	t := d.tenants[0]
	rs := &d.rt
	rs.ran = true
	d.logf("routers: %s's router refuses the login, a name clash, a !trap and hand-made drift", t.slug)

	// 1. The router's API password was changed on the router.
	pw := "rotated-" + randHex(4)
	t.router.SetPassword(pw)
	t.router.DropConnections()
	victim := t.subs[roleCash2]
	if err := t.api.call(ctx, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "Soak: suspended while the router refuses") { id } }`,
		map[string]any{"id": victim.id}, nil); err != nil {
		d.note("%s: suspendNetworkUser: %v", t.slug, err)
	}
	_, rs.refusalRecorded = d.waitFor(ctx, "the change met the refused login (routerSyncError on the subscriber)", 20*time.Second, func() (bool, string) {
		s, err := t.nodeState(ctx, victim.id)
		if err != nil {
			return false, err.Error()
		}
		if s.RouterSyncError == nil || !strings.Contains(*s.RouterSyncError, "invalid user name or password") {
			return false, fmt.Sprintf("routerSyncError %v", deref(s.RouterSyncError))
		}
		rs.refusalError = *s.RouterSyncError
		return true, ""
	})
	var rt struct {
		Node struct {
			APIStatus string
			LastError *string
		}
	}
	if err := t.api.call(ctx, `query($id: ID!) { node(id: $id) { ... on Router { apiStatus lastError } } }`, map[string]any{"id": t.routerID}, &rt); err == nil {
		rs.routerLastError = rt.Node.APIStatus + ": " + deref(rt.Node.LastError)
		d.logf("   router shows %s", rs.routerLastError)
	}
	if err := t.api.call(ctx, `mutation($id: ID!, $pw: String!) { updateRouter(id: $id, input: {password: $pw}) { id } }`,
		map[string]any{"id": t.routerID, "pw": pw}, nil); err != nil {
		d.note("%s: updateRouter(password): %v", t.slug, err)
	}
	el, ok := d.waitFor(ctx, "the router converged after its password was fixed over the API", 45*time.Second, func() (bool, string) { return d.routerInStep(ctx, db) })
	rs.refusalConverged = ok
	d.figure("router refused the login: password fixed → converged", fmt.Sprintf("%.1fs", el.Seconds()))

	// 2. A subscriber takes the name of the operator's PPTP secret.
	var cr struct{ CreateNetworkUser struct{ ID string } }
	if err := t.api.call(ctx, `mutation($in: CreateNetworkUserInput!) { createNetworkUser(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"username": clashName, "servicePassword": "clash-pw", "fullName": "Named like the NOC tunnel",
		"serviceType": "PPPOE", "routerID": t.routerID, "packageID": t.packageID,
	}}, &cr); err != nil {
		d.note("%s: createNetworkUser %s: %v", t.slug, clashName, err)
	} else {
		_, rs.clashReported = d.waitFor(ctx, "the name clash is reported on the subscriber", 20*time.Second, func() (bool, string) {
			s, err := t.nodeState(ctx, cr.CreateNetworkUser.ID)
			if err != nil {
				return false, err.Error()
			}
			if s.RouterSyncError == nil || !strings.Contains(*s.RouterSyncError, "name clash") {
				return false, fmt.Sprintf("routerSyncError %v", deref(s.RouterSyncError))
			}
			rs.clashError = *s.RouterSyncError
			return true, ""
		})
		if err := t.api.call(ctx, `mutation($id: ID!) { deleteNetworkUser(id: $id) { id } }`, map[string]any{"id": cr.CreateNetworkUser.ID}, nil); err != nil {
			d.note("%s: deleteNetworkUser %s: %v", t.slug, clashName, err)
		}
	}

	// 3. Right after a reconciliation, a command is refused (!trap) and the
	// router is edited by hand; the next scheduled one must repair both.
	before := fullSecretReads(t.router)
	d.waitFor(ctx, "a scheduled reconciliation passed", 25*time.Second, func() (bool, string) {
		return fullSecretReads(t.router) > before, "waiting for the ReconcileRouters schedule"
	})
	time.Sleep(time.Second) // let it finish its writes
	t0 := time.Now()
	t.router.TrapNext("/ppp/secret/set", "failure: configuration is being changed by another session")
	if err := t.api.call(ctx, `mutation($id: ID!) { activateNetworkUser(id: $id, reason: "Soak: paid after the router refused") { id } }`,
		map[string]any{"id": victim.id}, nil); err != nil {
		d.note("%s: activateNetworkUser: %v", t.slug, err)
	}
	rs.driftMade = map[string]string{}
	hand := func(name, kind string, ok bool) {
		if ok {
			rs.driftMade[name] = kind
		} else {
			d.note("%s: %s is not on the router to change by hand", t.slug, name)
		}
	}
	hand(t.subs[roleCash3].username, "DIFFERENT", t.router.Set("/ppp/secret", t.subs[roleCash3].username, routerostest.Row{"disabled": "true"}))
	hand(t.subs[roleGateway1].username, "DIFFERENT", t.router.Set("/ppp/secret", t.subs[roleGateway1].username, routerostest.Row{"profile": "default", "password": "changed-by-hand"}))
	if r := t.router.Find("/ppp/secret", t.subs[roleGateway2].username); r != nil {
		t.router.Remove("/ppp/secret", r[".id"])
		hand(t.subs[roleGateway2].username, "MISSING", true)
	} else {
		hand(t.subs[roleGateway2].username, "MISSING", false)
	}
	t.router.Add("/ppp/secret", routerostest.Row{"name": "soak-" + t.slug + "-gone", "password": "x", "profile": "default", "service": "pppoe", "comment": "ispgraph:999999"})
	rs.driftMade["soak-"+t.slug+"-gone"] = "ORPHAN"
	suspended := t.subs[roleStaffSuspended].username
	t.router.Add("/ppp/active", routerostest.Row{"name": suspended, "address": "10.20.0.99", "uptime": "1m"})
	rs.driftMade[suspended] = "ONLINE"
	var dr struct {
		RouterDrift []struct{ Kind, Menu, Name, Detail string }
	}
	rs.driftListed = map[string]string{}
	if err := t.api.call(ctx, `query($id: ID!) { routerDrift(routerID: $id) { kind menu name detail } }`, map[string]any{"id": t.routerID}, &dr); err != nil {
		d.note("%s: routerDrift: %v", t.slug, err)
	}
	for _, it := range dr.RouterDrift {
		rs.driftListed[it.Name] = it.Kind
		d.logf("   routerDrift: %s %s %s — %s", it.Kind, it.Menu, it.Name, it.Detail)
	}
	_, rs.trapHit = d.waitFor(ctx, "the router refused a command (!trap)", 10*time.Second, func() (bool, string) {
		return !t.router.TrapPending("/ppp/secret/set"), "no /ppp/secret/set yet"
	})
	el, ok = d.waitFor(ctx, "the !trap'd change and the hand-made drift repaired by reconciliation", 45*time.Second, func() (bool, string) { return d.routerInStep(ctx, db) })
	rs.trapConverged, rs.driftRepaired = ok, ok
	d.figure("router refused a command (!trap): refused → converged", fmt.Sprintf("%.1fs", el.Seconds()))
	d.figure("router edited by hand → repaired (reconciliation every 20s)", fmt.Sprintf("%.1fs", time.Since(t0).Seconds()))
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// checkRefusals: the router scenario's refusals were recorded and converged
// once fixed, and the name clash was reported instead of taken over.
func (d *day) checkRefusals(_ context.Context, _ *checkDB, c *check) {
	c.what = "a refused login or !trap is recorded and converges once fixed; a name clash is reported"
	rs := d.rt
	if !rs.ran {
		c.fail("the router scenario did not run")
		return
	}
	if !rs.refusalRecorded {
		c.fail("the refused login was not recorded on the subscriber (routerSyncError %q)", rs.refusalError)
	}
	if !rs.refusalConverged {
		c.fail("the router did not converge after its password was fixed over the API")
	}
	if !rs.clashReported {
		c.fail("the subscriber named like the operator's secret %q did not show a name clash", clashName)
	}
	if !rs.trapHit {
		c.fail("the !trap was never met")
	}
	if !rs.trapConverged {
		c.fail("the !trap'd change did not converge")
	}
	c.detail = "login, clash, !trap"
}

// checkDrift: routerDrift listed every hand-made difference with its kind,
// reconciliation repaired them, and every soak router shows no drift now.
func (d *day) checkDrift(ctx context.Context, _ *checkDB, c *check) {
	c.what = "routerDrift listed the hand-made drift, reconciliation repaired it, no drift left"
	rs := d.rt
	if !rs.ran {
		c.fail("the router scenario did not run")
		return
	}
	names := make([]string, 0, len(rs.driftMade))
	for n := range rs.driftMade {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if got := rs.driftListed[n]; got != rs.driftMade[n] {
			c.fail("routerDrift listed %s as %q, want %s", n, got, rs.driftMade[n])
		}
	}
	if !rs.driftRepaired {
		c.fail("the hand-made drift was not repaired")
	}
	left := 0
	for _, t := range d.tenants {
		var dr struct {
			RouterDrift []struct{ Kind, Menu, Name, Detail string }
		}
		if err := t.api.call(ctx, `query($id: ID!) { routerDrift(routerID: $id) { kind menu name detail } }`, map[string]any{"id": t.routerID}, &dr); err != nil {
			c.err = err
			return
		}
		for _, it := range dr.RouterDrift {
			left++
			c.fail("%s router: %s %s %s (%s)", t.slug, it.Kind, it.Menu, it.Name, it.Detail)
		}
	}
	c.detail = fmt.Sprintf("%d made, %d left", len(rs.driftMade), left)
}

// checkForeign: the operator's items are as they were made, and no command
// that changes anything ever named them.
func (d *day) checkForeign(_ context.Context, _ *checkDB, c *check) {
	c.what = "the operator's own router items (no ispgraph marker) were never changed or named by a write"
	n := 0
	for _, t := range d.tenants {
		rows := map[string]routerostest.Row{}
		for _, f := range t.foreign {
			for _, r := range t.router.Rows(f.menu) {
				rows[f.menu+"|"+r[".id"]] = r
			}
		}
		for _, f := range t.foreign {
			n++
			got := rows[f.menu+"|"+f.id]
			if got == nil {
				c.fail("%s router: %s %s (%s) is gone", t.slug, f.menu, f.id, f.row["name"]+f.row["address"])
				continue
			}
			for k, v := range f.row {
				if got[k] != v {
					c.fail("%s router: %s %s: %s is %q, was %q", t.slug, f.menu, f.row["name"]+f.row["address"], k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := f.row[k]; !ok {
					c.fail("%s router: %s %s: %s=%q added", t.slug, f.menu, f.row["name"]+f.row["address"], k, got[k])
				}
			}
		}
		for _, cmd := range t.router.Commands() {
			if strings.HasSuffix(cmd[0], "/print") {
				continue
			}
			for _, w := range cmd[1:] {
				for _, f := range t.foreign {
					if strings.HasPrefix(cmd[0], f.menu+"/") && (w == "=.id="+f.id || w == "=numbers="+f.id) {
						c.fail("%s router: %s named the operator's %s %s", t.slug, cmd[0], f.menu, f.id)
					}
				}
			}
		}
	}
	c.detail = fmt.Sprintf("%d items on %d routers", n, len(d.tenants))
}
