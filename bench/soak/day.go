package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
)

// soakSubscribers is how many subscribers the soak creates on each tenant's
// router; their index decides their part in the day (see the roles below).
const soakSubscribers = 14

// Roles by subscriber index, in every tenant.
const (
	roleCash1, roleCash2, roleCash3 = 0, 1, 2 // pay the overdue invoice in cash: reactivated (roleCash2 also suspended and activated while its router refuses)
	roleGateway1, roleGateway2      = 3, 4    // pay through Stripe (succeeds): reactivated by the worker
	roleDeclined                    = 5       // Stripe declines: FAILED with a reason, stays suspended
	rolePartial                     = 6       // pays half in cash (stays suspended), the rest through Stripe while Redis is lost
	roleRetried                     = 7       // pays in cash, the request sent twice with one idempotency key
	roleStaffActivated              = 8       // activated by staff while the router is down
	roleStaffSuspended              = 9       // pays, then suspended by staff while the router is down
	roleLate                        = 10      // created while the router is down
	roleCredit                      = 11      // overpays: the credit pays the next invoice
	roleOnline1, roleOnline2        = 12, 13  // pay in the portal on Stripe Checkout: the webhook reconnects them
)

// tenantRun is one tenant of the soak and what was created in it.
type tenantRun struct {
	slug, email, password string
	api                   *api
	router                *routerostest.Server
	routerID, packageID   string
	gatewayID             string
	subs                  []*subscriber
	foreign               []foreignItem // the operator's own items on the router
}

// subscriber is one of the soak's subscribers.
type subscriber struct {
	id, username, password string
}

// expectation is how a payment recorded by the soak must end.
type expectation struct {
	tenant, key, status, why string
}

// day is the scripted ISP day and the figures it measured.
type day struct {
	e       *env
	tenants []*tenantRun
	smtp    *smtpSink
	sms     *smsSink
	stripe  *stripeFake
	partner *partnerSink // the partner's webhook receiver (partner.go)
	start   time.Time
	end     time.Time // the day's budget
	expect  []expectation
	figures [][2]string
	notes   []string
	rt      routerTrouble // what the router scenario saw
	n       int           // unique suffixes

	// Router session syncs seen on the first router when Redis was lost, and
	// when the first one after it arrived.
	// What the online step found wrong, and what it did.
	online       []string
	onlineDetail string

	wipedAt       time.Time
	syncsAtWipe   int
	firstSyncSeen time.Time

	inst instanceResults // the instances step (instances.go)
	subs subsResults     // the subscriptions window (subscriptions.go)
}

// syncs counts the session syncs a router has received (each reads the
// hotspot sessions once).
func syncs(r *routerostest.Server) int {
	n := 0
	for _, p := range r.CommandPaths() {
		if p == "/ip/hotspot/active/print" {
			n++
		}
	}
	return n
}

// noteSchedules records when the first scheduled router sync after the Redis
// loss reached the first tenant's router.
func (d *day) noteSchedules() {
	if !d.wipedAt.IsZero() && d.firstSyncSeen.IsZero() && syncs(d.tenants[0].router) > d.syncsAtWipe {
		d.firstSyncSeen = time.Now()
	}
}

func (d *day) logf(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *day) figure(name, value string) {
	d.figures = append(d.figures, [2]string{name, value})
	d.logf("   %s: %s", name, value)
}

func (d *day) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.notes = append(d.notes, msg)
	d.logf("   ! %s", msg)
}

// waitFor polls cond until it holds, the timeout passes or the day's budget
// ends. It never fails the run: what was not reached shows in the checks.
func (d *day) waitFor(ctx context.Context, what string, timeout time.Duration, cond func() (bool, string)) (time.Duration, bool) {
	t0 := time.Now()
	limit := t0.Add(timeout)
	if limit.After(d.end) {
		limit = d.end
	}
	last := ""
	for {
		ok, state := cond()
		if ok {
			el := time.Since(t0)
			d.logf("   ✓ %s (%.1fs)", what, el.Seconds())
			return el, true
		}
		last = state
		if time.Now().After(limit) || ctx.Err() != nil {
			d.note("not reached in %.0fs: %s (%s)", time.Since(t0).Seconds(), what, last)
			return time.Since(t0), false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (d *day) uniq() int { d.n++; return d.n }

// --- API helpers -----------------------------------------------------------

type subState struct {
	ID, Username, Status string
	RouterSyncedAt       *string
	RouterSyncError      *string
	Invoices             struct {
		Edges []struct {
			Node invoiceState
		}
	}
}

type invoiceState struct {
	ID, Number, Status, Total, AmountPaid, PeriodStart string
}

// subscribers reads the soak's subscribers of a tenant with their invoices
// (newest period first).
func (t *tenantRun) subscribers(ctx context.Context) (map[string]subState, error) {
	var out struct {
		NetworkUsers struct {
			Edges []struct{ Node subState }
		}
	}
	err := t.api.call(ctx, `{ networkUsers(first: 100, where: {usernameHasPrefix: "soak-"}) { edges { node {
		id username status routerSyncedAt routerSyncError
		invoices(first: 5, orderBy: {field: ISSUED_AT, direction: DESC}) { edges { node { id number status total amountPaid periodStart } } } } } } }`, nil, &out)
	if err != nil {
		return nil, err
	}
	m := map[string]subState{}
	for _, e := range out.NetworkUsers.Edges {
		m[e.Node.ID] = e.Node
	}
	return m, nil
}

// openInvoice is the subscriber's oldest unpaid invoice.
func openInvoice(s subState) (invoiceState, bool) {
	var found invoiceState
	ok := false
	for _, e := range s.Invoices.Edges {
		if e.Node.Status == "PENDING" || e.Node.Status == "OVERDUE" {
			if !ok || e.Node.PeriodStart < found.PeriodStart {
				found, ok = e.Node, true
			}
		}
	}
	return found, ok
}

// record calls recordPayment and notes how the payment must end.
func (d *day) record(ctx context.Context, t *tenantRun, inv invoiceState, amount, method, txid, expect, why string) (string, error) {
	key := fmt.Sprintf("soak-%s-%d", t.slug, d.uniq())
	return d.recordKey(ctx, t, key, inv, amount, method, txid, expect, why)
}

func (d *day) recordKey(ctx context.Context, t *tenantRun, key string, inv invoiceState, amount, method, txid, expect, why string) (string, error) {
	in := map[string]any{"invoiceID": inv.ID, "amount": amount, "method": method, "idempotencyKey": key}
	if txid != "" {
		in["transactionID"] = txid
		in["paymentGatewayID"] = t.gatewayID
	}
	var out struct {
		RecordPayment struct{ ID, Status string }
	}
	if err := t.api.call(ctx, `mutation($in: RecordPaymentInput!) { recordPayment(input: $in) { id status } }`, map[string]any{"in": in}, &out); err != nil {
		return "", err
	}
	d.expect = append(d.expect, expectation{tenant: t.slug, key: key, status: expect, why: why})
	return out.RecordPayment.ID, nil
}

// routerInStep reports whether every soak subscriber of every tenant is on
// its router as the database says (see checkRouters) — used while waiting.
func (d *day) routerInStep(ctx context.Context, db *checkDB) (bool, string) {
	problems, err := d.routerProblems(ctx, db)
	if err != nil {
		return false, err.Error()
	}
	if len(problems) == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("%d differences, e.g. %s", len(problems), problems[0])
}

// --- the day -----------------------------------------------------------------

// morning: a router, a package, a gateway and the subscribers of each tenant.
func (d *day) morning(ctx context.Context, db *checkDB) error {
	d.logf("morning: routers, packages, a Stripe gateway and %d subscribers per tenant", soakSubscribers)
	for _, t := range d.tenants {
		t.addForeign()
		if err := d.registerPartner(ctx, t); err != nil {
			return err
		}
		var r struct{ CreateRouter struct{ ID string } }
		if err := t.api.call(ctx, `mutation($p: Int!) { createRouter(input: {name: "Soak POP", host: "127.0.0.1", apiPort: $p, username: "ispgraph", password: "secret"}) { id } }`,
			map[string]any{"p": t.router.Port()}, &r); err != nil {
			return err
		}
		t.routerID = r.CreateRouter.ID
		var p struct{ CreatePackage struct{ ID string } }
		if err := t.api.call(ctx, `mutation { createPackage(input: {name: "Soak 20M", bandwidthUpKbps: 10000, bandwidthDownKbps: 20000, price: "500.00", billingCycle: MONTHLY, routerProfile: "soak-20M"}) { id } }`,
			nil, &p); err != nil {
			return err
		}
		t.packageID = p.CreatePackage.ID
		var g struct{ CreatePaymentGateway struct{ ID string } }
		if err := t.api.call(ctx, `mutation { createPaymentGateway(input: {provider: STRIPE, name: "Stripe", active: true, testMode: true}) { id } }`, nil, &g); err != nil {
			return err
		}
		t.gatewayID = g.CreatePaymentGateway.ID
		if err := t.api.call(ctx, `mutation($id: ID!, $c: Map!) { setPaymentGatewayConfiguration(id: $id, configuration: $c) { id } }`,
			map[string]any{"id": t.gatewayID, "c": map[string]any{"secret_key": d.stripe.key, "webhook_secret": d.stripe.webhookSecret}}, nil); err != nil {
			return err
		}
		for i := 0; i < soakSubscribers; i++ {
			if i == roleLate {
				t.subs = append(t.subs, nil) // created while the router is down
				continue
			}
			s, err := d.createSubscriber(ctx, t, i)
			if err != nil {
				return err
			}
			t.subs = append(t.subs, s)
		}
	}
	// They have been customers for months: there is no API for a join date,
	// so the soak sets it in its own database, before any billing.
	n, err := db.backdateSoakSubscribers(ctx)
	if err != nil {
		return err
	}
	d.logf("   %d subscribers created over the API (join date set 100 days back in SQL)", n)
	el, _ := d.waitFor(ctx, "every subscriber's PPP secret is on its router", 60*time.Second, func() (bool, string) { return d.routerInStep(ctx, db) })
	d.figure("provisioning: create → on the router (all)", fmt.Sprintf("%.1fs", el.Seconds()))
	// Everyone is online.
	for _, t := range d.tenants {
		for i, s := range t.subs {
			if s != nil {
				t.router.Add("/ppp/active", routerostest.Row{"name": s.username, "address": fmt.Sprintf("10.20.0.%d", i+10), "uptime": "5h"})
			}
		}
	}
	return nil
}

func (d *day) createSubscriber(ctx context.Context, t *tenantRun, i int) (*subscriber, error) {
	s := &subscriber{username: fmt.Sprintf("soak-%s-%02d", t.slug, i), password: fmt.Sprintf("pw-%s-%02d", t.slug, i)}
	var out struct{ CreateNetworkUser struct{ ID string } }
	err := t.api.call(ctx, `mutation($in: CreateNetworkUserInput!) { createNetworkUser(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"username": s.username, "servicePassword": s.password, "fullName": fmt.Sprintf("Soak Customer %s %d", t.slug, i),
		"email": s.username + "@customers.example", "phone": fmt.Sprintf("+88017%02d0000%02d", len(t.slug), i),
		"serviceType": "PPPOE", "routerID": t.routerID, "packageID": t.packageID,
	}}, &out)
	s.id = out.CreateNetworkUser.ID
	return s, err
}

// billing: invoices for a period long past, then the (accelerated) overdue
// schedule suspends everyone who has not paid.
func (d *day) billing(ctx context.Context, db *checkDB) {
	period := time.Now().UTC().AddDate(0, -2, 0).Format("2006-01")
	d.logf("billing: generateInvoices(period: %q) — due long ago; the overdue schedule must suspend and the routers disable", period)
	for _, t := range d.tenants {
		var out struct {
			GenerateInvoices struct{ Created, Existing, Skipped int }
		}
		if err := t.api.call(ctx, `mutation($p: String) { generateInvoices(period: $p) { created existing skipped } }`, map[string]any{"p": period}, &out); err != nil {
			d.note("%s: generateInvoices: %v", t.slug, err)
			continue
		}
		d.logf("   %s: %d invoices created, %d existing, %d skipped", t.slug, out.GenerateInvoices.Created, out.GenerateInvoices.Existing, out.GenerateInvoices.Skipped)
	}
	el, _ := d.waitFor(ctx, "every soak subscriber SUSPENDED by the overdue run, secrets disabled, sessions kicked", 75*time.Second, func() (bool, string) {
		for _, t := range d.tenants {
			subs, err := t.subscribers(ctx)
			if err != nil {
				return false, err.Error()
			}
			for _, s := range subs {
				if s.Status != "SUSPENDED" {
					return false, s.Username + " is " + s.Status
				}
			}
		}
		return d.routerInStep(ctx, db)
	})
	d.figure("overdue: invoices issued → suspended on the router (all)", fmt.Sprintf("%.1fs", el.Seconds()))
}

// payments: cash, gateway, declined, partial, a retried request and credit.
func (d *day) payments(ctx context.Context, db *checkDB) {
	d.logf("payments: cash, Stripe (ok and declined), partial, a retried request, an overpayment")
	for _, t := range d.tenants {
		subs, err := t.subscribers(ctx)
		if err != nil {
			d.note("%s: read subscribers: %v", t.slug, err)
			continue
		}
		pay := func(i int, f func(inv invoiceState) error) {
			s := t.subs[i]
			inv, ok := openInvoice(subs[s.id])
			if !ok {
				d.note("%s: %s has no open invoice to pay", t.slug, s.username)
				return
			}
			if err := f(inv); err != nil {
				d.note("%s: payment by %s: %v", t.slug, s.username, err)
			}
		}
		for _, i := range []int{roleCash1, roleCash2, roleCash3, roleStaffSuspended} {
			pay(i, func(inv invoiceState) error {
				_, err := d.record(ctx, t, inv, inv.Total, "CASH", "", "COMPLETED", "cash in full")
				return err
			})
		}
		for _, i := range []int{roleGateway1, roleGateway2} {
			pay(i, func(inv invoiceState) error {
				_, err := d.record(ctx, t, inv, inv.Total, "GATEWAY", fmt.Sprintf("pi_ok_%d_%d", minor(inv.Total), d.uniq()), "COMPLETED", "Stripe says succeeded")
				return err
			})
		}
		pay(roleDeclined, func(inv invoiceState) error {
			_, err := d.record(ctx, t, inv, inv.Total, "GATEWAY", fmt.Sprintf("pi_declined_%d", d.uniq()), "FAILED", "Stripe declines the card")
			return err
		})
		pay(rolePartial, func(inv invoiceState) error {
			_, err := d.record(ctx, t, inv, money(minor(inv.Total)/2), "CASH", "", "COMPLETED", "half in cash")
			return err
		})
		// A payment taken by mistake and refunded (payment.refunded).
		pay(rolePartial, func(inv invoiceState) error {
			id, err := d.record(ctx, t, inv, "1.00", "CASH", "", "REFUNDED", "1.00 taken by mistake, refunded")
			if err != nil {
				return err
			}
			return t.api.call(ctx, `mutation($id: ID!) { refundPayment(id: $id, reason: "Soak: taken by mistake") { id } }`, map[string]any{"id": id}, nil)
		})
		pay(roleRetried, func(inv invoiceState) error {
			key := fmt.Sprintf("soak-%s-retried", t.slug)
			id1, err := d.recordKey(ctx, t, key, inv, inv.Total, "CASH", "", "COMPLETED", "cash, request sent twice")
			if err != nil {
				return err
			}
			d.expect = d.expect[:len(d.expect)-1]
			id2, err := d.recordKey(ctx, t, key, inv, inv.Total, "CASH", "", "COMPLETED", "cash, request sent twice")
			if err == nil && id1 != id2 {
				d.note("%s: the same idempotency key gave two payments (%s, %s)", t.slug, id1, id2)
			}
			return err
		})
		pay(roleCredit, func(inv invoiceState) error {
			_, err := d.record(ctx, t, inv, money(minor(inv.Total)+20000), "CASH", "", "COMPLETED", "overpaid by 200.00")
			return err
		})
	}
	want := []int{roleCash1, roleCash2, roleCash3, roleGateway1, roleGateway2, roleRetried, roleStaffSuspended, roleCredit}
	el, _ := d.waitFor(ctx, "payers ACTIVE again and enabled on the router (cash at once, Stripe through the worker)", 45*time.Second, func() (bool, string) {
		for _, t := range d.tenants {
			subs, err := t.subscribers(ctx)
			if err != nil {
				return false, err.Error()
			}
			for _, i := range want {
				if s := subs[t.subs[i].id]; s.Status != "ACTIVE" {
					return false, s.Username + " is " + s.Status
				}
			}
		}
		return d.routerInStep(ctx, db)
	})
	d.figure("reactivation: payment → enabled on the router (all payers)", fmt.Sprintf("%.1fs", el.Seconds()))
}

// newMonth bills the current month (the credit pays one invoice) and sends
// the suspended subscribers an SMS.
func (d *day) newMonth(ctx context.Context) {
	d.logf("new month: generateInvoices() for the current month, bulk SMS to suspended subscribers")
	for _, t := range d.tenants {
		var out struct {
			GenerateInvoices struct{ Created, Existing int }
		}
		if err := t.api.call(ctx, `mutation { generateInvoices { created existing } }`, nil, &out); err != nil {
			d.note("%s: generateInvoices: %v", t.slug, err)
		} else {
			d.logf("   %s: %d created, %d existing (the GenerateInvoices schedule may have been first)", t.slug, out.GenerateInvoices.Created, out.GenerateInvoices.Existing)
		}
		var sms struct {
			SendBulkSms struct{ Recipients int }
		}
		if err := t.api.call(ctx, `mutation { sendBulkSms(input: {message: "Your internet is suspended: pay your invoice to reconnect.", status: SUSPENDED}) { recipients } }`, nil, &sms); err != nil {
			d.note("%s: sendBulkSms: %v", t.slug, err)
		} else {
			d.logf("   %s: SMS queued for %d suspended subscribers", t.slug, sms.SendBulkSms.Recipients)
		}
	}
}

// routerDown takes the first tenant's router away while staff keep working,
// then brings it back; the changes must reach it.
func (d *day) routerDown(ctx context.Context, db *checkDB) {
	t := d.tenants[0]
	d.logf("router down: %s's router stops answering; staff activate, suspend and create subscribers meanwhile", t.slug)
	t.router.Close()
	if err := t.api.call(ctx, `mutation($id: ID!) { activateNetworkUser(id: $id, reason: "Soak: promised to pay") { id } }`, map[string]any{"id": t.subs[roleStaffActivated].id}, nil); err != nil {
		d.note("%s: activateNetworkUser: %v", t.slug, err)
	}
	if err := t.api.call(ctx, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "Soak: abuse report") { id } }`, map[string]any{"id": t.subs[roleStaffSuspended].id}, nil); err != nil {
		d.note("%s: suspendNetworkUser: %v", t.slug, err)
	}
	s, err := d.createSubscriber(ctx, t, roleLate)
	if err != nil {
		d.note("%s: createNetworkUser while the router is down: %v", t.slug, err)
	}
	t.subs[roleLate] = s
	d.waitFor(ctx, "the jobs met the dead router (routerSyncError on the changed subscribers)", 30*time.Second, func() (bool, string) {
		subs, err := t.subscribers(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, i := range []int{roleStaffActivated, roleStaffSuspended, roleLate} {
			if t.subs[i] == nil {
				continue
			}
			if s := subs[t.subs[i].id]; s.RouterSyncError == nil {
				return false, s.Username + " has no sync error yet"
			}
		}
		return true, ""
	})
	if err := t.router.Reopen(); err != nil {
		d.note("router cannot come back: %v", err)
		return
	}
	d.logf("   router back (same port, same state)")
	el, _ := d.waitFor(ctx, "the router converged with the database", 100*time.Second, func() (bool, string) { return d.routerInStep(ctx, db) })
	d.figure("router outage: back → converged", fmt.Sprintf("%.1fs", el.Seconds()))
	// The other tenant's late subscriber joins normally.
	for _, o := range d.tenants[1:] {
		if s, err := d.createSubscriber(ctx, o, roleLate); err == nil {
			o.subs[roleLate] = s
		} else {
			d.note("%s: createNetworkUser: %v", o.slug, err)
		}
	}
}

// workerKilled kills the worker with SIGKILL while a router job is in
// progress (the router hangs), then starts a new one.
func (d *day) workerKilled(ctx context.Context, db *checkDB) {
	t := d.tenants[len(d.tenants)-1]
	d.logf("worker killed: %s's router hangs, staff suspend a subscriber, the worker is SIGKILLed mid-job", t.slug)
	t.router.Hang(true)
	if err := t.api.call(ctx, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "Soak: suspended while the worker dies") { id } }`,
		map[string]any{"id": t.subs[roleCash1].id}, nil); err != nil {
		d.note("%s: suspendNetworkUser: %v", t.slug, err)
	}
	_, inFlight := d.waitFor(ctx, "a RouterProvision job in progress", 20*time.Second, func() (bool, string) {
		n, err := d.inProgress(ctx, "RouterProvision")
		return err == nil && n > 0, fmt.Sprint(n, err)
	})
	if err := d.e.killWorker(); err != nil {
		d.note("SIGKILL worker: %v", err)
	}
	d.logf("   worker killed (job in flight: %v)", inFlight)
	t.router.Hang(false)
	if err := d.e.startWorker(); err != nil {
		d.note("restart worker: %v", err)
		return
	}
	el, _ := d.waitFor(ctx, "the killed job ran again and the router converged", 60*time.Second, func() (bool, string) { return d.routerInStep(ctx, db) })
	d.figure("worker killed: restart → converged", fmt.Sprintf("%.1fs", el.Seconds()))
}

// inProgress counts jobs of a kind in gocraft's in-progress lists.
func (d *day) inProgress(ctx context.Context, job string) (int64, error) {
	keys, err := d.e.rdb.Keys(ctx, d.e.namespace+":jobs:"+job+":*:inprogress").Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, k := range keys {
		l, err := d.e.rdb.LLen(ctx, k).Result()
		if err != nil {
			return 0, err
		}
		n += l
	}
	return n, nil
}

// reopenAfter is the soak's ISPGRAPH_OUTBOX_REOPEN_AFTER: longer than
// ProcessPayment's 120 s timeout (jobs.Table), so the sweep never doubles a
// running payment, and short enough for the day: the jobs Redis lost are
// enqueued again from their outbox rows this long after their enqueue.
const reopenAfter = 125 * time.Second

// redisLostWait bounds the wait after the Redis loss: the outbox rows are
// reopened reopenAfter after their enqueue (a few seconds before the loss),
// the relay's sweep runs every reopenAfter/4, then the jobs run. The
// ReconcileRouters schedule (every 20 s in the soak) may repair the router
// sooner.
const redisLostWait = reopenAfter + reopenAfter/4 + 30*time.Second

// redisLost records gateway payments while Stripe has an outage (their jobs
// wait for a retry in Redis), then loses every Redis key of the soak.
func (d *day) redisLost(ctx context.Context, db *checkDB) {
	d.logf("redis lost: Stripe has an outage and a router is down, so payments and a router change wait in Redis for a retry; then every soak key is deleted and connections dropped")
	d.stripe.setOutage(true)
	rt := d.tenants[len(d.tenants)-1]
	rt.router.Close()
	if err := rt.api.call(ctx, `mutation($id: ID!) { suspendNetworkUser(id: $id, reason: "Soak: suspended just before Redis is lost") { id } }`,
		map[string]any{"id": rt.subs[roleCredit].id}, nil); err != nil {
		d.note("%s: suspendNetworkUser: %v", rt.slug, err)
	}
	var flaky []string
	for _, t := range d.tenants {
		subs, err := t.subscribers(ctx)
		if err != nil {
			d.note("%s: %v", t.slug, err)
			continue
		}
		s := subs[t.subs[rolePartial].id]
		inv, ok := openInvoice(s)
		if !ok {
			d.note("%s: %s has no open invoice", t.slug, s.Username)
			continue
		}
		rest := minor(inv.Total) - minor(inv.AmountPaid)
		txid := fmt.Sprintf("pi_flaky_%d_%d", rest, d.uniq())
		if _, err := d.record(ctx, t, inv, money(rest), "GATEWAY", txid, "COMPLETED", "Stripe recovers after the outage"); err != nil {
			d.note("%s: %v", t.slug, err)
			continue
		}
		flaky = append(flaky, txid)
	}
	d.waitFor(ctx, "the jobs failed once and wait for a retry (Stripe asked and answered 503; the router change met the dead router)", 15*time.Second, func() (bool, string) {
		for _, id := range flaky {
			if d.stripe.seen(id) == 0 {
				return false, id + " not asked yet"
			}
		}
		subs, err := rt.subscribers(ctx)
		if err != nil {
			return false, err.Error()
		}
		if s := subs[rt.subs[roleCredit].id]; s.RouterSyncError == nil {
			return false, s.Username + " has no sync error yet"
		}
		return true, ""
	})
	if err := d.e.snapshotJobs(ctx); err != nil {
		d.note("read the job sets before the loss: %v", err)
	}
	d.figure("jobs in Redis when it was lost (retry set, queues)", fmt.Sprintf("%d waiting for a retry %s, %d queued", len(d.e.retryAtWipe), jobNames(d.e.retryAtWipe), d.e.queuedAtWipe))
	d.syncsAtWipe = syncs(d.tenants[0].router)
	n, err := d.e.wipeRedis(ctx)
	d.wipedAt = time.Now()
	if err != nil {
		d.note("wipe redis: %v", err)
	}
	d.stripe.setOutage(false)
	if err := rt.router.Reopen(); err != nil {
		d.note("router cannot come back: %v", err)
	}
	d.logf("   %d keys deleted, soak connections closed; Stripe and %s's router are back", n, rt.slug)
	// Work goes on after the loss.
	t := d.tenants[0]
	if subs, err := t.subscribers(ctx); err == nil {
		if inv, ok := openInvoice(subs[t.subs[roleDeclined].id]); ok {
			if _, err := d.record(ctx, t, inv, inv.Total, "CASH", "", "COMPLETED", "cash after the Redis loss"); err != nil {
				d.note("%s: cash payment after the Redis loss: %v", t.slug, err)
			}
		}
	}
	el, _ := d.waitFor(ctx, "the payments and the router change in flight when Redis was lost took effect", redisLostWait, func() (bool, string) {
		d.noteSchedules()
		if ok, why := d.routerInStep(ctx, db); !ok {
			return false, why
		}
		for _, t := range d.tenants {
			subs, err := t.subscribers(ctx)
			if err != nil {
				return false, err.Error()
			}
			if s := subs[t.subs[rolePartial].id]; s.Status != "ACTIVE" {
				return false, s.Username + " is " + s.Status
			}
		}
		return true, ""
	})
	d.figure("Redis lost: payments and router change in flight → done", fmt.Sprintf("%.1fs", el.Seconds()))
}

// settle waits for the day's work to finish: no payment pending, queues
// empty, routers in step.
func (d *day) settle(ctx context.Context, db *checkDB) {
	d.logf("evening: waiting for the work to settle (until %s at the latest)", d.end.Format("15:04:05"))
	d.waitFor(ctx, "no pending payment, empty queues and retries, routers in step", time.Until(d.end)+time.Second, func() (bool, string) {
		d.noteSchedules()
		if n, err := db.count(ctx, `SELECT count(*) FROM payments WHERE status = 'PENDING'`); err != nil || n > 0 {
			return false, fmt.Sprintf("%d payments pending", n)
		}
		if q, err := d.e.queueDepth(ctx); err != nil || q > 0 {
			return false, fmt.Sprintf("%d jobs queued or waiting for a retry", q)
		}
		if n, err := db.count(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'PENDING'`); err != nil || n > 0 {
			return false, fmt.Sprintf("%d partner webhook deliveries pending", n)
		}
		return d.routerInStep(ctx, db)
	})
	d.noteSchedules()
	if d.firstSyncSeen.IsZero() {
		d.figure("schedules after the Redis loss: first router session sync", fmt.Sprintf("none within %.0fs", time.Since(d.wipedAt).Seconds()))
	} else {
		d.figure("schedules after the Redis loss: first router session sync", fmt.Sprintf("%.1fs (every 10s before)", d.firstSyncSeen.Sub(d.wipedAt).Seconds()))
	}
}

// minor parses a Money string ("1250.00") into minor units.
func minor(m string) int64 {
	neg := strings.HasPrefix(m, "-")
	m = strings.TrimPrefix(m, "-")
	whole, frac, _ := strings.Cut(m, ".")
	var n int64
	for _, c := range whole + (frac + "00")[:2] {
		n = n*10 + int64(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

// money formats minor units as a Money string.
func money(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}
