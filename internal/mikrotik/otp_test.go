package mikrotik_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hotspotuser"
	"github.com/ispgraph/ispgraph/ent/notification"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/mikrotik/routerostest"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

func (f *fixture) requestOTP(phone, address string, pkg *int) error {
	return f.inTx(func(ctx context.Context, c *ent.Client) error {
		_, err := f.svc.RequestOTP(ctx, phone, pkg, address)
		return err
	})
}

func (f *fixture) verifyOTP(phone, code string) (*mikrotik.SignIn, error) {
	var out *mikrotik.SignIn
	err := f.inTx(func(ctx context.Context, c *ent.Client) (err error) {
		out, err = f.svc.VerifyOTP(ctx, phone, code)
		return err
	})
	return out, err
}

// otpJob returns the arguments of the newest SendHotspotOtp job.
func (f *fixture) otpJob() jobs.SendHotspotOtpArgs {
	f.t.Helper()
	row := f.db.Client.OutboxJob.Query().Where(outboxjob.JobName(jobs.SendHotspotOtp)).Order(ent.Desc(outboxjob.FieldID)).FirstX(f.ctx)
	var a jobs.SendHotspotOtpArgs
	mustDecode(f.t, row.Args, &a)
	return a
}

func lastCode(t *testing.T, sent []string) string {
	t.Helper()
	if len(sent) == 0 {
		t.Fatal("no SMS sent")
	}
	m := codeRE.FindStringSubmatch(sent[len(sent)-1])
	if m == nil {
		t.Fatalf("no code in %q", sent[len(sent)-1])
	}
	return m[1]
}

// TestOTPNeverResent: the code is made when its SMS is sent; a retry after
// the code was used sends nothing; a retry after a failed send sends a new
// code and the first one no longer works; no code is readable anywhere but
// in the SMS.
func TestOTPNeverResent(t *testing.T) {
	f := newFixture(t)
	const phone = "+8801711000001"
	if err := f.requestOTP(phone, "198.51.100.7", &f.gold.ID); err != nil {
		t.Fatal(err)
	}
	a := f.otpJob()

	// The provider takes the message but its answer is lost: the job fails
	// and will be retried. The customer uses the code in the meantime.
	f.smsErr = errors.New("provider timeout")
	if err := f.svc.SendOTP(context.Background(), a, f.sendSMS); err == nil || !mikrotik.Retryable(err) {
		t.Fatalf("failed send: %v", err)
	}
	used := lastCode(t, f.sms)
	if _, err := f.verifyOTP(phone, used); err != nil {
		t.Fatalf("verify the delivered code: %v", err)
	}
	if err := f.svc.SendOTP(context.Background(), a, f.sendSMS); err != nil {
		t.Fatalf("retry after use: %v", err)
	}
	if len(f.sms) != 1 {
		t.Fatalf("the retry after use sent %q", f.sms[1:])
	}
	n := f.db.Client.Notification.GetX(f.ctx, a.NotificationID)
	if n.Status != notification.StatusFAILED || n.Error == nil || !strings.Contains(*n.Error, "used") {
		t.Fatalf("notification after the used retry: %+v", n)
	}

	// A new request; the first send fails, the retry makes a new code: the
	// first one (perhaps delivered late) no longer works, the new one does.
	f.now = f.now.Add(2 * time.Minute)
	if err := f.requestOTP(phone, "198.51.100.7", nil); err != nil {
		t.Fatal(err)
	}
	a = f.otpJob()
	f.smsErr = errors.New("provider timeout")
	_ = f.svc.SendOTP(context.Background(), a, f.sendSMS)
	first := lastCode(t, f.sms)
	if err := f.svc.SendOTP(context.Background(), a, f.sendSMS); err != nil {
		t.Fatal(err)
	}
	second := lastCode(t, f.sms)
	if len(f.sms) != 3 {
		t.Fatalf("sent %q", f.sms)
	}
	if first != second {
		if _, err := f.verifyOTP(phone, first); apperr.CodeOf(err) != apperr.BadUserInput {
			t.Fatalf("the replaced code: %v", err)
		}
	}
	if _, err := f.verifyOTP(phone, second); err != nil {
		t.Fatalf("the new code: %v", err)
	}
	// A third run of the finished job sends nothing.
	if err := f.svc.SendOTP(context.Background(), a, f.sendSMS); err != nil || len(f.sms) != 3 {
		t.Fatalf("rerun of a sent job: %v, %d SMS", err, len(f.sms))
	}
	// No stored text carries a code.
	for _, n := range f.db.Client.Notification.Query().AllX(f.ctx) {
		if codeRE.MatchString(n.Body) {
			t.Fatalf("a notification body holds a code: %q", n.Body)
		}
	}
}

// TestOTPLimitsAndPhones: the per-phone and per-address hourly limits, and
// phone numbers normalised to E.164 with the tenant's calling code.
func TestOTPLimitsAndPhones(t *testing.T) {
	f := newFixture(t)
	// Without a calling code (the fixture's tenant pays in USD) a national
	// number is refused; with one, its spellings are one user.
	if err := f.requestOTP("01912-000777", "198.51.100.8", &f.basic.ID); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("national number without a calling code: %v", err)
	}
	f.db.Client.Tenant.UpdateOneID(f.tenant).SetSettings(map[string]any{mikrotik.SettingPhoneCountryCode: "880"}).ExecX(tenancy.Bypass(f.ctx))
	for i, p := range []string{"01912-000777", "+8801912000777", "(0191) 2000-777", "008801912000777"} {
		if err := f.requestOTP(p, "198.51.100.8", &f.basic.ID); err != nil {
			t.Fatalf("request %d (%s): %v", i, p, err)
		}
		f.now = f.now.Add(61 * time.Second)
	}
	if n := f.db.Client.HotspotUser.Query().CountX(f.ctx); n != 1 {
		t.Fatalf("%d hotspot users for one number", n)
	}
	if u := f.db.Client.HotspotUser.Query().OnlyX(f.ctx); u.Phone != "+8801912000777" || u.Username != "8801912000777" {
		t.Fatalf("stored phone %q username %q", u.Phone, u.Username)
	}
	// The fifth request in the hour is the last; the sixth is refused.
	if err := f.requestOTP("01912000777", "198.51.100.9", nil); err != nil {
		t.Fatalf("fifth request: %v", err)
	}
	f.now = f.now.Add(61 * time.Second)
	if err := f.requestOTP("01912000777", "198.51.100.9", nil); apperr.CodeOf(err) != apperr.RateLimited || !strings.Contains(err.Error(), "phone") {
		t.Fatalf("sixth request for one phone in an hour: %v", err)
	}
	// One address asking for many phones.
	var err error
	for i := 0; i < mikrotik.OTPPerAddressPerHour+1 && err == nil; i++ {
		err = f.requestOTP(fmt.Sprintf("+88017000000%02d", i), "203.0.113.50", &f.basic.ID)
		if err != nil && i != mikrotik.OTPPerAddressPerHour {
			t.Fatalf("request %d from one address: %v", i, err)
		}
	}
	if apperr.CodeOf(err) != apperr.RateLimited || !strings.Contains(err.Error(), "address") {
		t.Fatalf("request past the address limit: %v", err)
	}
	// An hour later both limits have room again. The limiter counts on
	// Redis's clock (GCRA keeps one arrival time per key): moving each key's
	// time back an hour is what the hour passing would do.
	f.now = f.now.Add(time.Hour)
	l := f.svc.OTPLimiter
	keys, err := l.Redis.Keys(context.Background(), l.Prefix+"*hotspot-otp*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("limiter keys: %v %v", keys, err)
	}
	for _, k := range keys {
		if err := l.Redis.IncrByFloat(context.Background(), k, -time.Hour.Seconds()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.requestOTP("01912000777", "203.0.113.50", nil); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
}

// TestHotspotLimitsMACAndDelete: the package's uptime and data limits and the
// user's MAC binding reach the router and are unset when removed; staff
// delete a hotspot user and it leaves every router; another tenant cannot.
func TestHotspotLimitsMACAndDelete(t *testing.T) {
	f := newFixture(t)
	f.db.Client.ServicePackage.UpdateOne(f.gold).SetUptimeLimitSeconds(5400).SetDataLimitBytes(5_000_000_000).ExecX(f.ctx)
	var u *ent.HotspotUser
	if err := f.inTx(func(ctx context.Context, c *ent.Client) (err error) {
		u, err = c.HotspotUser.Create().SetPhone("+8801711000002").SetUsername("8801711000002").SetPassword("hs-pw").
			SetPackageID(f.gold.ID).SetStatus(hotspotuser.StatusACTIVE).SetMACAddress("aa:bb:cc:00:00:02").Save(ctx)
		if err != nil {
			return err
		}
		return f.svc.EnqueueHotspotUser(ctx, u)
	}); err != nil {
		t.Fatal(err)
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 1)
	row := f.fake.Find("/ip/hotspot/user", "8801711000002")
	if row == nil || row["limit-uptime"] != "1h30m" || row["limit-bytes-total"] != "5000000000" || row["mac-address"] != "AA:BB:CC:00:00:02" ||
		row["comment"] != "ispgraph:hotspot:"+fmt.Sprint(u.ID) {
		t.Fatalf("hotspot user on the router: %v", row)
	}
	if d, err := f.svc.RouterDrift(f.ctx, f.router.ID); err != nil || len(d) != 0 {
		t.Fatalf("drift after the push: %v %v", driftKinds(d), err)
	}
	// Limits and binding removed: unset on the router.
	f.db.Client.ServicePackage.UpdateOne(f.gold).ClearUptimeLimitSeconds().ClearDataLimitBytes().ExecX(f.ctx)
	if err := f.inTx(func(ctx context.Context, c *ent.Client) error {
		u = c.HotspotUser.UpdateOne(u).ClearMACAddress().SaveX(ctx)
		return f.svc.EnqueueHotspotUser(ctx, u)
	}); err != nil {
		t.Fatal(err)
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 1)
	row = f.fake.Find("/ip/hotspot/user", "8801711000002")
	if _, ok := row["limit-uptime"]; ok || row["limit-bytes-total"] != "" || row["mac-address"] != "" {
		t.Fatalf("limits left on the router: %v", row)
	}

	// Another tenant's staff cannot delete it.
	other := f.db.Client.Tenant.Create().SetName("Other").SetSlug("other").SetDomain("other.example").SaveX(tenancy.Bypass(f.ctx))
	octx := viewer.ForTenant(context.Background(), other.ID)
	if err := f.svc.DeleteHotspotUser(octx, u.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("delete from another tenant: %v", err)
	}
	// An operator's own hotspot user of another name stays.
	f.fake.Add("/ip/hotspot/user", routerostest.Row{"name": "guest", "password": "x", "comment": "lobby"})
	f.fake.Add("/ip/hotspot/active", routerostest.Row{"user": "8801711000002", "address": "10.5.0.2"})
	if err := f.inTx(func(ctx context.Context, _ *ent.Client) error { return f.svc.DeleteHotspotUser(ctx, u.ID) }); err != nil {
		t.Fatal(err)
	}
	if f.db.Client.HotspotUser.Query().Where(hotspotuser.ID(u.ID)).ExistX(f.ctx) {
		t.Fatal("deleted hotspot user still in the books")
	}
	noErrors(t, f.runJobs(), jobs.HotspotProvision, 1)
	if f.fake.Find("/ip/hotspot/user", "8801711000002") != nil || len(f.fake.Rows("/ip/hotspot/active")) != 0 ||
		f.fake.Find("/ip/hotspot/user", "guest") == nil {
		t.Fatalf("after delete: users %v, sessions %v", f.fake.Rows("/ip/hotspot/user"), f.fake.Rows("/ip/hotspot/active"))
	}
}
