package mikrotik_test

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hotspotuser"
	"github.com/ispgraph/ispgraph/ent/networksession"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/notification"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/router"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/ratelimit"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

type fixture struct {
	t      *testing.T
	ctx    context.Context // acts in the tenant
	db     *database.DB
	svc    *mikrotik.Service
	fake   *routerostest.Server
	tenant int
	router *ent.Router
	basic  *ent.ServicePackage
	gold   *ent.ServicePackage
	now    time.Time
	// sms records the sign-up SMS the SendHotspotOtp jobs sent; smsErr, when
	// set, is what the provider answers instead (once).
	sms    []string
	smsErr error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, testenv.PostgresURL(t), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	ten := db.Client.Tenant.Create().SetName("Fast Net").SetSlug("fastnet").SetDomain("fastnet.example").SaveX(tenancy.Bypass(ctx))
	f := &fixture{t: t, ctx: viewer.ForTenant(ctx, ten.ID), db: db, tenant: ten.ID, fake: routerostest.Start(t),
		now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	pool := mikrotik.NewPool()
	pool.CommandTimeout = 500 * time.Millisecond
	pool.DialTimeout = 500 * time.Millisecond
	t.Cleanup(pool.Close)
	redisURL, prefix := testenv.RedisURL(t)
	ropt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	f.svc = &mikrotik.Service{Client: db.Client, Pool: pool, Now: func() time.Time { return f.now },
		OTPLimiter: &ratelimit.Limiter{Redis: rdb, Prefix: prefix, Period: time.Hour}}
	f.router = db.Client.Router.Create().SetName("Core").SetHost(f.fake.Host()).SetAPIPort(f.fake.Port()).
		SetUsername(f.fake.Username).SetPassword(f.fake.Password).SaveX(f.ctx)
	f.basic = db.Client.ServicePackage.Create().SetName("Basic").SetBandwidthUpKbps(1000).SetBandwidthDownKbps(5000).
		SetPrice(money.Money(50000)).SetValidityDays(30).SetRouterProfile("basic-5m").SaveX(f.ctx)
	f.gold = db.Client.ServicePackage.Create().SetName("Gold").SetBandwidthUpKbps(5000).SetBandwidthDownKbps(50000).
		SetPrice(money.Money(150000)).SetValidityDays(7).SetRouterProfile("gold-50m").SaveX(f.ctx)
	return f
}

// inTx runs fn in a transaction, like a mutation.
func (f *fixture) inTx(fn func(ctx context.Context, c *ent.Client) error) error {
	f.t.Helper()
	tx, err := f.db.Client.Tx(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := fn(ent.NewTxContext(f.ctx, tx), tx.Client()); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// runJobs plays relay and worker: it takes the pending outbox jobs, runs the
// router ones through the service and returns their errors by job name.
func (f *fixture) runJobs() map[string][]error {
	f.t.Helper()
	rows := f.db.Client.OutboxJob.Query().Where(outboxjob.StatusEQ(outboxjob.StatusPENDING)).
		Order(ent.Asc(outboxjob.FieldID)).AllX(f.ctx)
	out := map[string][]error{}
	for _, r := range rows {
		var err error
		switch r.JobName {
		case jobs.RouterProvision:
			var a jobs.RouterProvisionArgs
			mustDecode(f.t, r.Args, &a)
			err = f.svc.Apply(context.Background(), a)
		case jobs.HotspotProvision:
			var a jobs.HotspotProvisionArgs
			mustDecode(f.t, r.Args, &a)
			err = f.svc.ApplyHotspot(context.Background(), a)
		case jobs.SyncMikrotikSession:
			var a jobs.SyncMikrotikSessionArgs
			mustDecode(f.t, r.Args, &a)
			_, err = f.svc.Sync(context.Background(), a.TenantID, a.RouterID, a.Username)
		case jobs.ReconcileRouter:
			var a jobs.ReconcileRouterArgs
			mustDecode(f.t, r.Args, &a)
			_, err = f.svc.Reconcile(context.Background(), a.TenantID, a.RouterID)
		case jobs.SendHotspotOtp:
			var a jobs.SendHotspotOtpArgs
			mustDecode(f.t, r.Args, &a)
			err = f.svc.SendOTP(context.Background(), a, f.sendSMS)
		default:
			continue // other engineers' jobs (SMS)
		}
		out[r.JobName] = append(out[r.JobName], err)
		if err == nil || !mikrotik.Retryable(err) {
			f.db.Client.OutboxJob.UpdateOne(r).SetStatus(outboxjob.StatusENQUEUED).ExecX(f.ctx)
		}
	}
	return out
}

// sendSMS is the fixture's SMS provider.
func (f *fixture) sendSMS(_ context.Context, to, text string) (string, error) {
	f.sms = append(f.sms, to+": "+text)
	if err := f.smsErr; err != nil {
		f.smsErr = nil
		return "", err
	}
	return "ref-" + strconv.Itoa(len(f.sms)), nil
}

func mustDecode(t *testing.T, m map[string]any, dst jobs.Args) {
	t.Helper()
	if err := jobs.FromMap(m, dst); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) pending(name string) int {
	return f.db.Client.OutboxJob.Query().Where(outboxjob.JobName(name), outboxjob.StatusEQ(outboxjob.StatusPENDING)).CountX(f.ctx)
}

func (f *fixture) user(id int) *ent.NetworkUser {
	return f.db.Client.NetworkUser.GetX(f.ctx, id)
}

func noErrors(t *testing.T, res map[string][]error, name string, want int) {
	t.Helper()
	if len(res[name]) != want {
		t.Fatalf("%s: ran %d jobs, want %d (%v)", name, len(res[name]), want, res)
	}
	for _, err := range res[name] {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestClientTLSConcurrentAndRedial(t *testing.T) {
	fake := routerostest.StartTLS(t)
	pool := &mikrotik.Pool{DialTimeout: time.Second, CommandTimeout: 300 * time.Millisecond}
	defer pool.Close()
	conn := pool.Get(1, mikrotik.Endpoint{Host: fake.Host(), Port: fake.Port(), TLS: true,
		Username: fake.Username, Password: fake.Password, TLSConfig: fake.ClientTLS()})

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows, err := conn.Run(context.Background(), "/system/identity/print")
			if err == nil && (len(rows) != 1 || rows[0]["name"] != fake.Identity) {
				err = errors.New("wrong identity reply")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if fake.Logins() != 1 {
		t.Fatalf("%d logins for one pooled connection", fake.Logins())
	}

	// A router that stops answering: the command times out, is retryable, and
	// the next command dials a fresh connection.
	fake.Hang(true)
	_, err := conn.Run(context.Background(), "/system/identity/print")
	var ue *mikrotik.UnreachableError
	if !errors.As(err, &ue) || !mikrotik.Retryable(err) {
		t.Fatalf("hung router: %v", err)
	}
	fake.Hang(false)
	if _, err := conn.Run(context.Background(), "/system/identity/print"); err != nil {
		t.Fatal(err)
	}
	if fake.Logins() != 2 {
		t.Fatalf("%d logins, want a redial after the timeout", fake.Logins())
	}

	// Wrong credentials: a clear, non-retryable error.
	bad := pool.Get(2, mikrotik.Endpoint{Host: fake.Host(), Port: fake.Port(), TLS: true,
		Username: fake.Username, Password: "wrong", TLSConfig: fake.ClientTLS()})
	_, err = bad.Run(context.Background(), "/system/identity/print")
	if err == nil || mikrotik.Retryable(err) || !strings.Contains(err.Error(), "invalid user name or password") {
		t.Fatalf("bad login: %v", err)
	}
}

func TestHealthCheck(t *testing.T) {
	f := newFixture(t)
	res, err := f.svc.Check(context.Background(), f.tenant, f.router.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity != "fake-router" || res.Version == "" {
		t.Fatalf("result %+v", res)
	}
	r := f.db.Client.Router.GetX(f.ctx, f.router.ID)
	if r.APIStatus != router.APIStatusONLINE || r.ResponseTimeMs == nil || r.LastCheckedAt == nil || r.LastError != nil {
		t.Fatalf("router after check: %+v", r)
	}
	// The figures are stored on the router (the fake's /system/resource).
	if r.CPULoad == nil || *r.CPULoad != 3 || r.FreeMemory == nil || *r.FreeMemory != 123456789 ||
		r.TotalMemory == nil || *r.TotalMemory != 268435456 || r.UptimeSeconds == nil || *r.UptimeSeconds != (7+2)*86400+3*3600 ||
		r.RouterosVersion == nil || *r.RouterosVersion != "7.14.3 (stable)" || r.Identity == nil || *r.Identity != "fake-router" ||
		r.BoardName == nil || *r.BoardName != "fake" || r.LastSeenAt == nil || !r.LastSeenAt.Equal(f.now) {
		t.Fatalf("health figures not stored: %+v", r)
	}

	// A refused login: the router answered (last seen moves), it is not
	// OFFLINE, the figures of the last good check stay.
	f.now = f.now.Add(time.Minute)
	f.fake.SetPassword("changed")
	f.fake.DropConnections()
	if _, err := f.svc.Check(context.Background(), f.tenant, f.router.ID); err == nil || mikrotik.Retryable(err) {
		t.Fatalf("refused login: %v", err)
	}
	r = f.db.Client.Router.GetX(f.ctx, f.router.ID)
	if r.APIStatus != router.APIStatusONLINE || r.LastError == nil || !r.LastSeenAt.Equal(f.now) || *r.CPULoad != 3 {
		t.Fatalf("router after a refused check: %+v", r)
	}
	f.fake.SetPassword(f.router.Password)
	seen := f.now
	f.now = f.now.Add(time.Minute)

	f.fake.Close() // the router goes down
	_, err = f.svc.Check(context.Background(), f.tenant, f.router.ID)
	if err == nil || !mikrotik.Retryable(err) {
		t.Fatalf("down router: %v", err)
	}
	r = f.db.Client.Router.GetX(f.ctx, f.router.ID)
	if r.APIStatus != router.APIStatusOFFLINE || r.LastError == nil || !strings.Contains(*r.LastError, "unreachable") ||
		!r.LastSeenAt.Equal(seen) {
		t.Fatalf("router after failed check: %+v", r)
	}

	refs, err := f.svc.ActiveRouters(context.Background())
	if err != nil || len(refs) != 1 || refs[0].RouterID != f.router.ID || refs[0].TenantID != f.tenant {
		t.Fatalf("active routers %+v %v", refs, err)
	}
}

func TestSyncSessions(t *testing.T) {
	f := newFixture(t)
	alice := f.db.Client.NetworkUser.Create().SetUsername("alice").SetRouterID(f.router.ID).SetRouterSyncedAt(f.now).SaveX(f.ctx)
	hs := f.db.Client.HotspotUser.Create().SetPhone("+8801700000001").SetUsername("8801700000001").SaveX(f.ctx)
	aliceID := f.fake.Add("/ppp/active", routerostest.Row{"name": "alice", "address": "10.0.0.2", "caller-id": "AA:BB:CC:00:00:01", "uptime": "1h2m3s", "service": "pppoe"})
	f.fake.Add("/ppp/active", routerostest.Row{"name": "stranger", "address": "10.0.0.9", "uptime": "5m"})
	f.fake.Add("/ip/hotspot/active", routerostest.Row{"user": "8801700000001", "address": "10.5.0.3", "mac-address": "AA:BB:CC:00:00:02",
		"uptime": "10m", "bytes-in": "1000", "bytes-out": "2000"})
	// PPPoE byte counts: alice's from her dynamic interface (past 32 bits),
	// the stranger's from the session's dynamic queue (upload/download).
	f.fake.Add("/interface", routerostest.Row{"name": "<pppoe-alice>", "type": "pppoe-in", "rx-byte": "5000000000", "tx-byte": "123456"})
	f.fake.Add("/interface", routerostest.Row{"name": "ether1", "type": "ether", "rx-byte": "1", "tx-byte": "1"})
	f.fake.Add("/queue/simple", routerostest.Row{"name": "<pppoe-stranger>", "bytes": "11/22"})

	res, err := f.svc.Sync(context.Background(), f.tenant, f.router.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Started != 3 || res.Unknown != 1 || res.Closed != 0 {
		t.Fatalf("first sync %+v", res)
	}
	s := f.db.Client.NetworkSession.Query().Where(networksession.Username("alice")).OnlyX(f.ctx)
	if s.NetworkUserID == nil || *s.NetworkUserID != alice.ID || s.UptimeSeconds != 3723 || !s.StartedAt.Equal(f.now.Add(-3723*time.Second)) ||
		s.Kind != networksession.KindPPPOE || s.CallerID != "AA:BB:CC:00:00:01" || s.BytesIn != 5000000000 || s.BytesOut != 123456 {
		t.Fatalf("alice's session %+v", s)
	}
	h := f.db.Client.NetworkSession.Query().Where(networksession.KindEQ(networksession.KindHOTSPOT)).OnlyX(f.ctx)
	if h.HotspotUserID == nil || *h.HotspotUserID != hs.ID || h.BytesOut != 2000 {
		t.Fatalf("hotspot session %+v", h)
	}
	unknown := f.db.Client.NetworkSession.Query().Where(networksession.Username("stranger")).OnlyX(f.ctx)
	if unknown.NetworkUserID != nil || unknown.HotspotUserID != nil || unknown.BytesIn != 11 || unknown.BytesOut != 22 {
		t.Fatalf("unknown session matched or without bytes: %+v", unknown)
	}

	// Alice logs off; a sync for one username touches only that username.
	f.fake.Remove("/ppp/active", aliceID)
	f.now = f.now.Add(time.Minute)
	res, err = f.svc.Sync(context.Background(), f.tenant, f.router.ID, "stranger")
	if err != nil || res.Updated != 1 || res.Closed != 0 || res.Started != 0 {
		t.Fatalf("one-user sync %+v %v", res, err)
	}
	res, err = f.svc.Sync(context.Background(), f.tenant, f.router.ID, "")
	if err != nil || res.Updated != 2 || res.Closed != 1 || res.Started != 0 {
		t.Fatalf("second sync %+v %v", res, err)
	}
	s = f.db.Client.NetworkSession.GetX(f.ctx, s.ID)
	if s.Status != networksession.StatusCLOSED || s.EndedAt == nil || !s.EndedAt.Equal(f.now) {
		t.Fatalf("ended session %+v", s)
	}
	r := f.db.Client.Router.GetX(f.ctx, f.router.ID)
	if r.LastSyncedAt == nil || !r.LastSyncedAt.Equal(f.now) || r.APIStatus != router.APIStatusONLINE {
		t.Fatalf("router after sync %+v", r)
	}
	if n := f.db.Client.NetworkSession.Query().Where(networksession.StatusEQ(networksession.StatusACTIVE)).CountX(f.ctx); n != 2 {
		t.Fatalf("%d active sessions, want 2", n)
	}
}

func TestProvisioningFollowsEveryChange(t *testing.T) {
	f := newFixture(t)
	var u *ent.NetworkUser
	// Created: the secret is added with the package's profile.
	if err := f.inTx(func(ctx context.Context, c *ent.Client) (err error) {
		u, err = c.NetworkUser.Create().SetUsername("bob").SetServicePassword("pw-1").SetPackageID(f.basic.ID).
			SetRouterID(f.router.ID).Save(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if f.pending(jobs.RouterProvision) != 1 || f.user(u.ID).RouterSyncedAt != nil {
		t.Fatal("create did not enqueue provisioning or marked the subscriber in step")
	}
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	sec := f.fake.Find("/ppp/secret", "bob")
	if sec == nil || sec["password"] != "pw-1" || sec["profile"] != "basic-5m" || sec["disabled"] != "false" || sec["service"] != "pppoe" {
		t.Fatalf("secret after create: %v", sec)
	}
	if got := f.user(u.ID); got.RouterSyncedAt == nil || got.RouterSyncError != nil {
		t.Fatalf("subscriber not in step after the job: %+v", got)
	}

	update := func(fn func(*ent.NetworkUserUpdateOne)) {
		t.Helper()
		if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
			up := c.NetworkUser.UpdateOneID(u.ID)
			fn(up)
			return up.Exec(ctx)
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A change the router does not care about enqueues nothing.
	update(func(up *ent.NetworkUserUpdateOne) { up.SetEmail("bob@example.com") })
	if f.pending(jobs.RouterProvision) != 0 || f.user(u.ID).RouterSyncedAt == nil {
		t.Fatal("an e-mail change reached for the router")
	}

	// Password and package changes set the secret.
	update(func(up *ent.NetworkUserUpdateOne) { up.SetServicePassword("pw-2").SetPackageID(f.gold.ID) })
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if sec := f.fake.Find("/ppp/secret", "bob"); sec["password"] != "pw-2" || sec["profile"] != "gold-50m" {
		t.Fatalf("secret after update: %v", sec)
	}

	// Suspended while online: the secret is disabled and the session kicked.
	f.fake.Add("/ppp/active", routerostest.Row{"name": "bob", "address": "10.0.0.7"})
	f.fake.Add("/ppp/active", routerostest.Row{"name": "carol", "address": "10.0.0.8"})
	update(func(up *ent.NetworkUserUpdateOne) {
		up.SetStatus(networkuser.StatusSUSPENDED).SetSuspensionReason("unpaid")
	})
	if f.user(u.ID).RouterSyncedAt != nil {
		t.Fatal("suspension not marked as waiting for the router")
	}
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if sec := f.fake.Find("/ppp/secret", "bob"); sec["disabled"] != "true" {
		t.Fatalf("secret after suspension: %v", sec)
	}
	if f.fake.Find("/ppp/active", "bob") != nil || f.fake.Find("/ppp/active", "carol") == nil {
		t.Fatalf("sessions after suspension: %v", f.fake.Rows("/ppp/active"))
	}

	// Activated (through a bulk update, as billing's reactivation may do).
	if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		return c.NetworkUser.Update().Where(networkuser.StatusEQ(networkuser.StatusSUSPENDED)).
			SetStatus(networkuser.StatusACTIVE).ClearSuspensionReason().Exec(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if sec := f.fake.Find("/ppp/secret", "bob"); sec["disabled"] != "false" {
		t.Fatalf("secret after activation: %v", sec)
	}

	// Renamed: the old secret goes, the new one comes.
	update(func(up *ent.NetworkUserUpdateOne) { up.SetUsername("robert") })
	noErrors(t, f.runJobs(), jobs.RouterProvision, 2)
	if f.fake.Find("/ppp/secret", "bob") != nil || f.fake.Find("/ppp/secret", "robert") == nil {
		t.Fatalf("secrets after rename: %v", f.fake.Rows("/ppp/secret"))
	}

	// Deleted: the secret is removed.
	if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		return c.NetworkUser.DeleteOneID(u.ID).Exec(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if len(f.fake.Rows("/ppp/secret")) != 0 {
		t.Fatalf("secrets after delete: %v", f.fake.Rows("/ppp/secret"))
	}

	// A rolled-back change enqueues nothing.
	err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		if _, err := c.NetworkUser.Create().SetUsername("ghost").SetRouterID(f.router.ID).Save(ctx); err != nil {
			return err
		}
		return errors.New("rolled back")
	})
	if err == nil || f.pending(jobs.RouterProvision) != 0 {
		t.Fatalf("rolled-back create left %d jobs", f.pending(jobs.RouterProvision))
	}
}

func TestProvisioningWithRouterDown(t *testing.T) {
	f := newFixture(t)
	f.fake.Close()
	// The change itself succeeds: the router is only reached by the job.
	u, err := f.db.Client.NetworkUser.Create().SetUsername("dave").SetServicePassword("pw").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).Save(f.ctx)
	if err != nil {
		t.Fatalf("create with the router down: %v", err)
	}
	res := f.runJobs()
	if len(res[jobs.RouterProvision]) != 1 || res[jobs.RouterProvision][0] == nil || !mikrotik.Retryable(res[jobs.RouterProvision][0]) {
		t.Fatalf("job against a down router: %v", res)
	}
	got := f.user(u.ID)
	if got.RouterSyncedAt != nil || got.RouterSyncError == nil || !strings.Contains(*got.RouterSyncError, "unreachable") {
		t.Fatalf("subscriber after a failed push: synced %v error %v", got.RouterSyncedAt, got.RouterSyncError)
	}
	if r := f.db.Client.Router.GetX(f.ctx, f.router.ID); r.APIStatus != router.APIStatusOFFLINE {
		t.Fatalf("router status %s", r.APIStatus)
	}
	if f.pending(jobs.RouterProvision) != 1 {
		t.Fatal("the retryable job was dropped")
	}

	// The router comes back (here: on a new port); the retry succeeds.
	back := routerostest.Start(t)
	f.db.Client.Router.UpdateOneID(f.router.ID).SetAPIPort(back.Port()).ExecX(f.ctx)
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	got = f.user(u.ID)
	if got.RouterSyncedAt == nil || got.RouterSyncError != nil || back.Find("/ppp/secret", "dave") == nil {
		t.Fatalf("after the retry: synced %v error %v", got.RouterSyncedAt, got.RouterSyncError)
	}
}

func TestProvisioningTrap(t *testing.T) {
	f := newFixture(t)
	f.fake.TrapNext("/ppp/secret/add", "input does not match any value of profile")
	u := f.db.Client.NetworkUser.Create().SetUsername("erin").SetPackageID(f.basic.ID).SetRouterID(f.router.ID).SaveX(f.ctx)
	res := f.runJobs()
	err := res[jobs.RouterProvision][0]
	var de *mikrotik.DeviceError
	if !errors.As(err, &de) || mikrotik.Retryable(err) {
		t.Fatalf("trap: %v", err)
	}
	got := f.user(u.ID)
	if got.RouterSyncError == nil || *got.RouterSyncError != "router refused /ppp/secret/add: input does not match any value of profile" {
		t.Fatalf("recorded error %v", got.RouterSyncError)
	}
	r := f.db.Client.Router.GetX(f.ctx, f.router.ID)
	if r.APIStatus != router.APIStatusONLINE || r.LastError == nil || !strings.Contains(*r.LastError, "profile") {
		t.Fatalf("router after trap %+v", r)
	}
	// The connection survived the trap: no second login.
	if f.fake.Logins() != 1 {
		t.Fatalf("%d logins", f.fake.Logins())
	}
}

func TestImportSecrets(t *testing.T) {
	f := newFixture(t)
	f.db.Client.NetworkUser.Create().SetUsername("existing").SetRouterSyncedAt(f.now).SaveX(f.ctx)
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "frank", "password": "f-pw", "profile": "basic-5m", "service": "pppoe", "comment": "Frank Smith"})
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "grace", "password": "g-pw", "profile": "Gold", "service": "any", "disabled": "true", "remote-address": "10.9.0.5"})
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "heidi", "password": "h-pw", "profile": "legacy-2m"})
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "existing", "password": "x", "profile": "basic-5m"})
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "vpn1", "password": "x", "service": "l2tp"})

	var res *mikrotik.ImportResult
	if err := f.inTx(func(ctx context.Context, c *ent.Client) (err error) {
		res, err = f.svc.ImportSecrets(ctx, f.router.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if res.Created != 3 || strings.Join(res.Skipped, ",") != "existing,vpn1" || strings.Join(res.UnmatchedProfiles, ",") != "legacy-2m" {
		t.Fatalf("import %+v", res)
	}
	frank := f.db.Client.NetworkUser.Query().Where(networkuser.Username("frank")).OnlyX(f.ctx)
	if frank.PackageID == nil || *frank.PackageID != f.basic.ID || frank.FullName != "Frank Smith" || frank.ServicePassword != "f-pw" ||
		frank.Status != networkuser.StatusACTIVE || frank.RouterSyncedAt == nil {
		t.Fatalf("frank %+v", frank)
	}
	grace := f.db.Client.NetworkUser.Query().Where(networkuser.Username("grace")).OnlyX(f.ctx)
	if grace.PackageID == nil || *grace.PackageID != f.gold.ID || grace.Status != networkuser.StatusSUSPENDED || grace.StaticIP == nil {
		t.Fatalf("grace %+v", grace)
	}
	if f.pending(jobs.RouterProvision) != 0 {
		t.Fatal("imported subscribers were pushed back to the router")
	}
	// The reconciliation queued with the import (and the one queued by the
	// router's first contact) adopts the imported secrets: marker in front of
	// the comment, nothing else changed.
	noErrors(t, f.runJobs(), jobs.ReconcileRouter, 2)
	if s := f.fake.Find("/ppp/secret", "frank"); s["comment"] != "ispgraph:"+strconv.Itoa(frank.ID)+" Frank Smith" || s["password"] != "f-pw" || s["profile"] != "basic-5m" {
		t.Fatalf("frank's secret after adoption: %v", s)
	}
	if s := f.fake.Find("/ppp/secret", "vpn1"); s["comment"] != "" || s["service"] != "l2tp" {
		t.Fatalf("a skipped secret was touched: %v", s)
	}
	drift, err := f.svc.RouterDrift(f.ctx, f.router.ID)
	if err != nil {
		t.Fatal(err)
	}
	// "existing" was never imported (a subscriber without a router had the name).
	if got := driftKinds(drift); strings.Contains(got, "frank") || strings.Contains(got, "grace") || strings.Contains(got, "heidi") {
		t.Fatalf("imported subscribers still drift:\n%s", got)
	}
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

func TestHotspotOTP(t *testing.T) {
	f := newFixture(t)
	second := routerostest.Start(t)
	f.db.Client.Router.Create().SetName("Branch").SetHost(second.Host()).SetAPIPort(second.Port()).
		SetUsername(second.Username).SetPassword(second.Password).ExecX(f.ctx)

	// The tenant's numbers default to Bangladesh's calling code.
	f.db.Client.Tenant.UpdateOneID(f.tenant).SetSettings(map[string]any{mikrotik.SettingPhoneCountryCode: "880"}).ExecX(tenancy.Bypass(f.ctx))
	phones := []string{"01711-000000", "+880 1711-000000", "008801711000000", "8801711000000"}
	request := func(pkg *int) (*mikrotik.OTPRequest, string, error) {
		var out *mikrotik.OTPRequest
		err := f.inTx(func(ctx context.Context, c *ent.Client) (err error) {
			// Every spelling of the number is the same user.
			out, err = f.svc.RequestOTP(ctx, phones[len(f.sms)%len(phones)], pkg, "198.51.100.7")
			return err
		})
		if err != nil {
			return nil, "", err
		}
		n := f.db.Client.Notification.Query().Where(notification.Kind("otp")).Order(ent.Desc(notification.FieldID)).FirstX(f.ctx)
		if n.Recipient != "+8801711000000" || n.Channel != notification.ChannelSMS || codeRE.MatchString(n.Body) || n.BatchID == nil {
			t.Fatalf("notification %+v", n)
		}
		// The code is made by the SMS job, when it sends.
		if f.db.Client.HotspotUser.Query().Where(hotspotuser.OtpHashNotNil()).CountX(f.ctx) != 0 {
			t.Fatal("a code exists before its SMS is sent")
		}
		noErrors(t, f.runJobs(), jobs.SendHotspotOtp, 1)
		m := codeRE.FindStringSubmatch(f.sms[len(f.sms)-1])
		n = f.db.Client.Notification.GetX(f.ctx, n.ID)
		if m == nil || !strings.HasPrefix(f.sms[len(f.sms)-1], "+8801711000000: ") || n.Status != notification.StatusSENT ||
			strings.Contains(n.Body, m[1]) || n.ProviderRef == nil {
			t.Fatalf("sent %q, notification %+v", f.sms, n)
		}
		return out, m[1], nil
	}
	verify := func(code string) (*mikrotik.SignIn, error) {
		var out *mikrotik.SignIn
		err := f.inTx(func(ctx context.Context, c *ent.Client) (err error) {
			out, err = f.svc.VerifyOTP(ctx, "+8801711000000", code)
			return err
		})
		return out, err
	}

	if _, _, err := request(nil); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("new phone without a package: %v", err)
	}
	req, code, err := request(&f.gold.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !req.ExpiresAt.Equal(f.now.Add(10 * time.Minute)) {
		t.Fatalf("request %+v", req)
	}
	hu := f.db.Client.HotspotUser.Query().OnlyX(f.ctx)
	if hu.Status != hotspotuser.StatusPENDING || *hu.OtpHash == code || len(*hu.OtpHash) != 64 {
		t.Fatalf("pending user %+v", hu)
	}
	if _, _, err := request(nil); apperr.CodeOf(err) != apperr.RateLimited {
		t.Fatalf("resend within a minute: %v", err)
	}

	// Wrong codes count, even though each request rolls back.
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := 0; i < 4; i++ {
		if _, err := verify(wrong); apperr.CodeOf(err) != apperr.BadUserInput {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if n := f.db.Client.HotspotUser.GetX(f.ctx, hu.ID).OtpAttempts; n != 4 {
		t.Fatalf("%d attempts recorded", n)
	}
	if _, err := verify(wrong); apperr.CodeOf(err) != apperr.RateLimited {
		t.Fatalf("fifth wrong code: %v", err)
	}
	if _, err := verify(code); apperr.CodeOf(err) != apperr.RateLimited {
		t.Fatalf("right code after the attempts ran out: %v", err)
	}

	// A new code, a minute later; an expired one is refused.
	f.now = f.now.Add(2 * time.Minute)
	_, code, err = request(nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := verify(code)
	if err != nil {
		t.Fatal(err)
	}
	wantExp := f.now.AddDate(0, 0, 7)
	if in.User.Status != hotspotuser.StatusACTIVE || !in.User.Verified || !in.User.ExpiresAt.Equal(wantExp) || in.Password == "" || in.Username != "8801711000000" {
		t.Fatalf("sign-in %+v %+v", in, in.User)
	}
	if _, err := verify(code); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("code reused: %v", err)
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 2) // one per active router
	for _, srv := range []*routerostest.Server{f.fake, second} {
		row := srv.Find("/ip/hotspot/user", "8801711000000")
		if row == nil || row["password"] != in.Password || row["profile"] != "gold-50m" || row["disabled"] != "false" {
			t.Fatalf("hotspot user on router: %v", row)
		}
	}

	// Renewing before expiry extends from the current expiry.
	f.now = f.now.Add(24 * time.Hour)
	_, code, err = request(nil)
	if err != nil {
		t.Fatal(err)
	}
	if in, err = verify(code); err != nil || !in.User.ExpiresAt.Equal(wantExp.AddDate(0, 0, 7)) {
		t.Fatalf("renewal: %v %v", err, in)
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 2)

	// Expired code.
	f.now = f.now.Add(time.Hour)
	if _, _, err = request(nil); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(11 * time.Minute)
	if _, err := verify("123456"); apperr.CodeOf(err) != apperr.BadUserInput || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired code: %v", err)
	}

	// The expiry routine disables the user on the routers and kicks it.
	f.fake.Add("/ip/hotspot/active", routerostest.Row{"user": "8801711000000", "address": "10.5.0.9"})
	f.now = wantExp.AddDate(0, 0, 8)
	n, err := f.svc.ExpireAllHotspotUsers(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 2)
	if row := f.fake.Find("/ip/hotspot/user", "8801711000000"); row["disabled"] != "true" {
		t.Fatalf("expired user on router: %v", row)
	}
	if len(f.fake.Rows("/ip/hotspot/active")) != 0 {
		t.Fatal("expired user's session left running")
	}
	if n, _ := f.svc.ExpireAllHotspotUsers(context.Background()); n != 0 {
		t.Fatalf("expired twice: %d", n)
	}
}

// driftKinds summarises drift as "KIND menu name" lines, sorted.
func driftKinds(ds []mikrotik.Drift) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind+" "+d.Menu+" "+d.Name)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestReconcileRepairsDriftAndLeavesForeignItems(t *testing.T) {
	f := newFixture(t)
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "office", "password": "vpn", "service": "pptp", "comment": "office VPN"})
	f.fake.Add("/ppp/profile", routerostest.Row{"name": "gold-50m", "rate-limit": "9M/9M", "comment": "operator's"})
	bob := f.db.Client.NetworkUser.Create().SetUsername("bob").SetServicePassword("pw-b").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).SaveX(f.ctx)
	carol := f.db.Client.NetworkUser.Create().SetUsername("carol").SetServicePassword("pw-c").SetPackageID(f.gold.ID).
		SetRouterID(f.router.ID).SetStatus(networkuser.StatusSUSPENDED).SetStaticIP("10.9.0.3").SaveX(f.ctx)
	shop := f.db.Client.NetworkUser.Create().SetUsername("shop").SetServiceType(networkuser.ServiceTypeSTATIC).
		SetStaticIP("100.64.0.10").SetPackageID(f.basic.ID).SetRouterID(f.router.ID).SaveX(f.ctx)
	// A subscriber named like the operator's PPTP secret.
	office := f.db.Client.NetworkUser.Create().SetUsername("office").SetServicePassword("other").SetRouterID(f.router.ID).SaveX(f.ctx)
	f.runJobs()

	if sec := f.fake.Find("/ppp/secret", "office"); sec["service"] != "pptp" || sec["password"] != "vpn" || sec["comment"] != "office VPN" {
		t.Fatalf("the operator's secret was changed: %v", sec)
	}
	if got := f.user(office.ID); got.RouterSyncedAt != nil || got.RouterSyncError == nil || !strings.Contains(*got.RouterSyncError, "clash") {
		t.Fatalf("clash not recorded: %+v", got)
	}
	prof := f.fake.Find("/ppp/profile", "basic-5m")
	if prof == nil || prof["rate-limit"] != "1000k/5000k" || !strings.HasPrefix(prof["comment"], "ispgraph:package:") {
		t.Fatalf("package profile: %v", prof)
	}
	if p := f.fake.Find("/ppp/profile", "gold-50m"); p["rate-limit"] != "9M/9M" || p["comment"] != "operator's" {
		t.Fatalf("the operator's profile was changed: %v", p)
	}
	q := f.fake.Find("/queue/simple", "shop")
	if q == nil || q["target"] != "100.64.0.10/32" || q["max-limit"] != "1000k/5000k" || q["disabled"] != "false" {
		t.Fatalf("static queue: %v", q)
	}
	if al := f.fake.Rows("/ip/firewall/address-list"); len(al) != 1 || al[0]["address"] != "100.64.0.10" || al[0]["list"] != mikrotik.AllowedList {
		t.Fatalf("address list: %v", al)
	}

	// Drift made by hand on the router.
	sec := f.fake.Find("/ppp/secret", "bob")
	f.fake.Remove("/ppp/secret", sec[".id"])
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "bob", "password": "pw-b", "profile": "default", "service": "pppoe", "comment": "ispgraph:" + strconv.Itoa(bob.ID) + " flat 3"})
	f.fake.Remove("/ppp/secret", f.fake.Find("/ppp/secret", "carol")[".id"])
	f.fake.Add("/ppp/secret", routerostest.Row{"name": "zed", "password": "z", "service": "pppoe", "comment": "ispgraph:999999"})
	f.fake.Add("/ppp/active", routerostest.Row{"name": "carol", "address": "10.9.0.3"})
	f.fake.Add("/ppp/active", routerostest.Row{"name": "zed", "address": "10.9.0.4"})
	f.fake.Add("/ppp/active", routerostest.Row{"name": "walkin", "address": "10.9.0.5"})
	f.fake.Remove("/ip/firewall/address-list", f.fake.Rows("/ip/firewall/address-list")[0][".id"])

	drift, err := f.svc.RouterDrift(f.ctx, f.router.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"CLASH /ppp/secret office",
		"DIFFERENT /ppp/secret bob",
		"MISSING /ip/firewall/address-list ispgraph-active:100.64.0.10",
		"MISSING /ppp/secret carol",
		"ONLINE /ppp/active carol",
		"ORPHAN /ppp/secret zed",
	}, "\n")
	if got := driftKinds(drift); got != want {
		t.Fatalf("drift:\n%s\nwant:\n%s", got, want)
	}
	before := len(f.fake.Commands())
	res, err := f.svc.Reconcile(context.Background(), f.tenant, f.router.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 5 || res.Clashes != 1 || len(res.Drift) != 6 || res.InStep != 3 {
		t.Fatalf("reconcile %+v", res)
	}
	t.Logf("reconcile: %d drift items, %d repairs, %d router commands", len(res.Drift), res.Applied, len(f.fake.Commands())-before)
	if s := f.fake.Find("/ppp/secret", "bob"); s["profile"] != "basic-5m" || s["comment"] != "ispgraph:"+strconv.Itoa(bob.ID)+" flat 3" {
		t.Fatalf("bob after reconcile: %v (the operator's text after the marker must stay)", s)
	}
	if s := f.fake.Find("/ppp/secret", "carol"); s == nil || s["disabled"] != "true" || s["remote-address"] != "10.9.0.3" {
		t.Fatalf("carol after reconcile: %v", s)
	}
	if f.fake.Find("/ppp/secret", "zed") != nil || f.fake.Find("/ppp/active", "zed") != nil || f.fake.Find("/ppp/active", "carol") != nil {
		t.Fatalf("orphan or offline session left: %v %v", f.fake.Rows("/ppp/secret"), f.fake.Rows("/ppp/active"))
	}
	if f.fake.Find("/ppp/active", "walkin") == nil || f.fake.Find("/ppp/secret", "office")["service"] != "pptp" {
		t.Fatal("reconcile touched what ispgraph does not own")
	}
	if got := f.user(carol.ID); got.RouterSyncedAt == nil {
		t.Fatal("carol not recorded in step")
	}
	if got := f.user(shop.ID); got.RouterSyncedAt == nil {
		t.Fatal("shop not recorded in step")
	}
	drift, err = f.svc.RouterDrift(f.ctx, f.router.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := driftKinds(drift); got != "CLASH /ppp/secret office" {
		t.Fatalf("drift after reconcile:\n%s", got)
	}
}

func TestLifecycleReachesTheRouter(t *testing.T) {
	f := newFixture(t)
	u := f.db.Client.NetworkUser.Create().SetUsername("ivan").SetServicePassword("pw").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).SetStaticIP("10.1.1.1").SaveX(f.ctx)
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if s := f.fake.Find("/ppp/secret", "ivan"); s["remote-address"] != "10.1.1.1" || s["comment"] != "ispgraph:"+strconv.Itoa(u.ID) {
		t.Fatalf("secret %v", s)
	}
	// The operator notes something after the marker; pushes keep it.
	sec := f.fake.Find("/ppp/secret", "ivan")
	f.fake.Remove("/ppp/secret", sec[".id"])
	sec["comment"] += " tower B"
	delete(sec, ".id")
	f.fake.Add("/ppp/secret", sec)

	// Static IP cleared: remote-address leaves the router.
	f.db.Client.NetworkUser.UpdateOneID(u.ID).ClearStaticIP().ExecX(f.ctx)
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	s := f.fake.Find("/ppp/secret", "ivan")
	if _, ok := s["remote-address"]; ok || s["comment"] != "ispgraph:"+strconv.Itoa(u.ID)+" tower B" {
		t.Fatalf("secret after clearing the static IP: %v", s)
	}
	// Package change: the profile is set and the live session ended.
	f.fake.Add("/ppp/active", routerostest.Row{"name": "ivan", "address": "10.0.0.9"})
	f.db.Client.NetworkUser.UpdateOneID(u.ID).SetPackageID(f.gold.ID).ExecX(f.ctx)
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if s := f.fake.Find("/ppp/secret", "ivan"); s["profile"] != "gold-50m" || f.fake.Find("/ppp/active", "ivan") != nil {
		t.Fatalf("after a package change: secret %v, sessions %v", s, f.fake.Rows("/ppp/active"))
	}
	if p := f.fake.Find("/ppp/profile", "gold-50m"); p["rate-limit"] != "5000k/50000k" {
		t.Fatalf("gold profile %v", p)
	}
}

func TestRefusedChangeConvergesAfterTheRouterIsFixed(t *testing.T) {
	f := newFixture(t)
	f.fake.SetPassword("changed-on-the-router")
	u := f.db.Client.NetworkUser.Create().SetUsername("judy").SetServicePassword("pw").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).SaveX(f.ctx)
	res := f.runJobs()
	if err := res[jobs.RouterProvision][0]; err == nil || mikrotik.Retryable(err) {
		t.Fatalf("a refused login must end the job: %v", err)
	}
	if f.pending(jobs.RouterProvision) != 0 || f.fake.Find("/ppp/secret", "judy") != nil {
		t.Fatal("the refused job stayed queued or reached the router")
	}
	steps := 0
	// A scheduled reconciliation while the router still refuses changes nothing.
	if _, err := f.svc.Reconcile(context.Background(), f.tenant, f.router.ID); err == nil || mikrotik.Retryable(err) {
		t.Fatalf("reconcile with a refused login: %v", err)
	}
	steps++
	// The operator fixes the router's password in ispgraph: that queues a
	// reconciliation in the same transaction.
	f.db.Client.Router.UpdateOneID(f.router.ID).SetPassword("changed-on-the-router").ExecX(f.ctx)
	if n := f.pending(jobs.ReconcileRouter); n != 1 {
		t.Fatalf("%d reconciliations queued by the fix, want 1", n)
	}
	steps++
	noErrors(t, f.runJobs(), jobs.ReconcileRouter, 1)
	t.Logf("converged after %d reconciliations (the scheduled one refused, the one queued by the fix repaired)", steps)
	if f.fake.Find("/ppp/secret", "judy") == nil || f.user(u.ID).RouterSyncedAt == nil {
		t.Fatal("not converged")
	}
}

func TestRouterBackOnlineIsReconciled(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Sync(context.Background(), f.tenant, f.router.ID, ""); err != nil {
		t.Fatal(err)
	}
	// First contact (UNKNOWN → ONLINE) reconciles once.
	if n := f.pending(jobs.ReconcileRouter); n != 1 {
		t.Fatalf("%d reconciliations after first contact, want 1", n)
	}
	f.runJobs()
	f.fake.Hang(true)
	u := f.db.Client.NetworkUser.Create().SetUsername("kim").SetServicePassword("pw").SetRouterID(f.router.ID).SaveX(f.ctx)
	if err := f.runJobs()[jobs.RouterProvision][0]; !mikrotik.Retryable(err) {
		t.Fatalf("job against a hanging router: %v", err)
	}
	if r := f.db.Client.Router.GetX(f.ctx, f.router.ID); r.APIStatus != router.APIStatusOFFLINE {
		t.Fatalf("router %s, want OFFLINE", r.APIStatus)
	}
	f.db.Client.OutboxJob.Update().Where(outboxjob.JobName(jobs.RouterProvision)).SetStatus(outboxjob.StatusENQUEUED).ExecX(f.ctx)
	f.fake.Hang(false)
	f.fake.DropConnections()
	f.now = f.now.Add(2 * time.Minute)
	// The next sync finds it back: a reconciliation is queued at once and
	// carries the change the provisioning job is still backing off from.
	if _, err := f.svc.Sync(context.Background(), f.tenant, f.router.ID, ""); err != nil {
		t.Fatal(err)
	}
	if n := f.pending(jobs.ReconcileRouter); n != 1 {
		t.Fatalf("%d reconciliations after coming back, want 1", n)
	}
	noErrors(t, f.runJobs(), jobs.ReconcileRouter, 1)
	if f.fake.Find("/ppp/secret", "kim") == nil || f.user(u.ID).RouterSyncedAt == nil {
		t.Fatal("not converged after the router came back")
	}
}

func TestExpiryIsEnforced(t *testing.T) {
	f := newFixture(t)
	past := f.now.Add(-time.Hour)
	u := f.db.Client.NetworkUser.Create().SetUsername("lee").SetServicePassword("pw").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).SetExpiresAt(past).SaveX(f.ctx)
	later := f.db.Client.NetworkUser.Create().SetUsername("max").SetServicePassword("pw").SetRouterID(f.router.ID).
		SetExpiresAt(f.now.Add(time.Hour)).SaveX(f.ctx)
	f.runJobs()
	f.fake.Add("/ppp/active", routerostest.Row{"name": "lee"})
	n, err := f.svc.ExpireNetworkUsers(context.Background(), f.tenant)
	if err != nil || n != 1 {
		t.Fatalf("expired %d (%v), want 1", n, err)
	}
	if f.user(u.ID).Status != networkuser.StatusEXPIRED || f.user(later.ID).Status != networkuser.StatusACTIVE {
		t.Fatal("wrong subscribers expired")
	}
	noErrors(t, f.runJobs(), jobs.RouterProvision, 1)
	if s := f.fake.Find("/ppp/secret", "lee"); s["disabled"] != "true" || f.fake.Find("/ppp/active", "lee") != nil {
		t.Fatalf("expired subscriber still enabled or online: %v", s)
	}
	if n, _ := f.svc.ExpireNetworkUsers(context.Background(), f.tenant); n != 0 {
		t.Fatalf("second run expired %d", n)
	}
}

func TestDeleteKeepsTheBooksAndClearsTheRouter(t *testing.T) {
	f := newFixture(t)
	u := f.db.Client.NetworkUser.Create().SetUsername("nina").SetServicePassword("pw").SetPackageID(f.basic.ID).
		SetRouterID(f.router.ID).SaveX(f.ctx)
	shop := f.db.Client.NetworkUser.Create().SetUsername("kiosk").SetServiceType(networkuser.ServiceTypeSTATIC).
		SetStaticIP("100.64.0.20").SetRouterID(f.router.ID).SaveX(f.ctx)
	noErrors(t, f.runJobs(), jobs.RouterProvision, 2)
	f.fake.Add("/ppp/active", routerostest.Row{"name": "nina"})
	if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		if _, err := f.svc.DeleteNetworkUser(ctx, u.ID); err != nil {
			return err
		}
		_, err := f.svc.DeleteNetworkUser(ctx, shop.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	noErrors(t, f.runJobs(), jobs.RouterProvision, 2)
	if f.fake.Find("/ppp/secret", "nina") != nil || f.fake.Find("/ppp/active", "nina") != nil ||
		f.fake.Find("/queue/simple", "kiosk") != nil || len(f.fake.Rows("/ip/firewall/address-list")) != 0 {
		t.Fatalf("deleted subscribers left on the router: %v %v %v", f.fake.Rows("/ppp/secret"), f.fake.Rows("/queue/simple"), f.fake.Rows("/ip/firewall/address-list"))
	}
	got := f.user(u.ID)
	if got.Status != networkuser.StatusDELETED || got.RouterSyncedAt == nil {
		t.Fatalf("subscriber after delete: %s, synced %v", got.Status, got.RouterSyncedAt)
	}
	// A deleted subscriber stays as it was deleted: an edit, a suspension or
	// a second delete is a CONFLICT and changes nothing; a bulk change leaves
	// it out; its credit (billing's history) may still move.
	for name, change := range map[string]func(ctx context.Context, c *ent.Client) error{
		"edit": func(ctx context.Context, c *ent.Client) error {
			return c.NetworkUser.UpdateOneID(u.ID).SetFullName("Nina Again").Exec(ctx)
		},
		"activate": func(ctx context.Context, c *ent.Client) error {
			return c.NetworkUser.UpdateOneID(u.ID).SetStatus(networkuser.StatusACTIVE).Exec(ctx)
		},
		"delete again": func(ctx context.Context, _ *ent.Client) error {
			_, err := f.svc.DeleteNetworkUser(ctx, u.ID)
			return err
		},
	} {
		if err := f.inTx(change); apperr.CodeOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "deleted") {
			t.Fatalf("%s of a deleted subscriber: %v", name, err)
		}
	}
	if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		n, err := c.NetworkUser.Update().Where(networkuser.IDIn(u.ID, shop.ID)).SetEmail("all@example.com").Save(ctx)
		if err == nil && n != 0 {
			err = errors.New("bulk change touched " + strconv.Itoa(n) + " deleted subscribers")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		return c.NetworkUser.UpdateOneID(u.ID).AddCredit(500).Exec(ctx)
	}); err != nil {
		t.Fatalf("credit of a deleted subscriber: %v", err)
	}
	if got := f.user(u.ID); got.FullName != "" || got.Email != "" || got.Status != networkuser.StatusDELETED || got.Credit != 500 || f.pending(jobs.RouterProvision) != 0 {
		t.Fatalf("deleted subscriber changed: %+v", got)
	}
	// The password rule: a PPPoE subscriber needs one.
	bare := f.db.Client.NetworkUser.Create().SetUsername("bare").SaveX(f.ctx)
	var ae *apperr.Error
	if err := f.svc.CheckServicePassword(bare); !errors.As(err, &ae) || ae.Code != apperr.BadUserInput {
		t.Fatalf("PPPoE without a password: %v", err)
	}
	if err := f.svc.CheckServicePassword(f.user(shop.ID)); err != nil {
		t.Fatalf("STATIC without a password: %v", err)
	}
}

func TestStaffHotspotChangesArePushed(t *testing.T) {
	f := newFixture(t)
	var h *ent.HotspotUser
	if err := f.inTx(func(ctx context.Context, c *ent.Client) (err error) {
		h, err = c.HotspotUser.Create().SetPhone("+8801911000111").SetUsername("8801911000111").SetPassword("hs-pw").
			SetPackageID(f.basic.ID).SetStatus(hotspotuser.StatusACTIVE).Save(ctx)
		if err != nil {
			return err
		}
		return f.svc.EnqueueHotspotUser(ctx, h)
	}); err != nil {
		t.Fatal(err)
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 1)
	if hu := f.fake.Find("/ip/hotspot/user", "8801911000111"); hu == nil || hu["disabled"] != "false" {
		t.Fatalf("hotspot user after create: %v", hu)
	}
	f.fake.Add("/ip/hotspot/active", routerostest.Row{"user": "8801911000111"})
	if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		u, err := c.HotspotUser.UpdateOneID(h.ID).SetStatus(hotspotuser.StatusSUSPENDED).Save(ctx)
		if err != nil {
			return err
		}
		return f.svc.EnqueueHotspotUser(ctx, u)
	}); err != nil {
		t.Fatal(err)
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 1)
	if hu := f.fake.Find("/ip/hotspot/user", "8801911000111"); hu["disabled"] != "true" || len(f.fake.Rows("/ip/hotspot/active")) != 0 {
		t.Fatalf("hotspot user after suspension: %v, sessions %v", hu, f.fake.Rows("/ip/hotspot/active"))
	}
}

func TestDroppedConnectionIsRedialledOnce(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Sync(context.Background(), f.tenant, f.router.ID, ""); err != nil {
		t.Fatal(err)
	}
	f.fake.DropConnections()
	if _, err := f.svc.Sync(context.Background(), f.tenant, f.router.ID, ""); err != nil {
		t.Fatalf("sync after a dropped connection: %v", err)
	}
	if r := f.db.Client.Router.GetX(f.ctx, f.router.ID); r.APIStatus != router.APIStatusONLINE || r.LastError != nil {
		t.Fatalf("router after a re-dial: %s %v", r.APIStatus, r.LastError)
	}
	if f.fake.Logins() != 2 {
		t.Fatalf("%d logins, want 2 (one re-dial)", f.fake.Logins())
	}
	// A router that is really gone is still reported OFFLINE.
	f.fake.Close()
	if _, err := f.svc.Sync(context.Background(), f.tenant, f.router.ID, ""); !mikrotik.Retryable(err) {
		t.Fatalf("sync of a closed router: %v", err)
	}
	if r := f.db.Client.Router.GetX(f.ctx, f.router.ID); r.APIStatus != router.APIStatusOFFLINE {
		t.Fatalf("router %s, want OFFLINE", r.APIStatus)
	}
}
