package billing_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/ent/payment"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/ent/sequence"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/billing"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/seed"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// env is one tenant in a fresh database with a billing service whose clock
// the test sets.
type env struct {
	t      *testing.T
	db     *database.DB
	svc    *billing.Service
	ctx    context.Context // acts for the tenant
	tenant *ent.Tenant
	router *ent.Router
	now    time.Time
	mu     sync.Mutex
}

func (e *env) setNow(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = t
}

func newPostgres(t *testing.T, tz string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, testenv.PostgresURL(t), database.Options{MaxOpenConns: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx, t.Logf); err != nil {
		t.Fatal(err)
	}
	return newEnv(t, db, tz)
}

func newSQLite(t *testing.T, tz string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := database.OpenSQLite(ctx, filepath.Join(t.TempDir(), "ispgraph.db"), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateSchema(ctx); err != nil {
		t.Fatal(err)
	}
	return newEnv(t, db, tz)
}

func newEnv(t *testing.T, db *database.DB, tz string) *env {
	ctx := context.Background()
	ten := db.Client.Tenant.Create().SetName("ISP").SetSlug("isp").SetDomain("isp.example").
		SetTimezone(tz).SetTaxRateBp(500).SetGraceDays(7).SetInvoicePrefix("INV").
		SaveX(tenancy.Bypass(ctx))
	e := &env{t: t, db: db, tenant: ten, ctx: viewer.ForTenant(ctx, ten.ID),
		now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	e.svc = &billing.Service{Client: db.Client, Now: func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.now
	}}
	e.router = db.Client.Router.Create().SetName("core").SetHost("192.0.2.1").SetUsername("api").SaveX(e.ctx)
	return e
}

func (e *env) pkg(name, price string, cycle servicepackage.BillingCycle) *ent.ServicePackage {
	return e.db.Client.ServicePackage.Create().SetName(name).SetBandwidthUpKbps(1024).SetBandwidthDownKbps(4096).
		SetPrice(money.MustParse(price)).SetBillingCycle(cycle).SaveX(e.ctx)
}

func (e *env) subscribers(n int, pkg *ent.ServicePackage, joined time.Time) []*ent.NetworkUser {
	out := make([]*ent.NetworkUser, n)
	for i := range out {
		out[i] = e.db.Client.NetworkUser.Create().SetUsername(fmt.Sprintf("%s-%d", pkg.Name, i)).
			SetPackageID(pkg.ID).SetRouterID(e.router.ID).SetCreatedAt(joined).SaveX(e.ctx)
	}
	return out
}

func code(err error) apperr.Code {
	if err == nil {
		return ""
	}
	return apperr.CodeOf(err)
}

func (e *env) invoice(id int) *ent.Invoice  { return e.db.Client.Invoice.GetX(e.ctx, id) }
func (e *env) user(id int) *ent.NetworkUser { return e.db.Client.NetworkUser.GetX(e.ctx, id) }

func (e *env) jobs(name string) []*ent.OutboxJob {
	return e.db.Client.OutboxJob.Query().Where(outboxjob.JobName(name)).Order(ent.Asc(outboxjob.FieldID)).AllX(e.ctx)
}

// routerActions counts the router provisioning jobs by action.
func (e *env) routerActions() map[string]int {
	out := map[string]int{}
	for _, j := range e.jobs(jobs.RouterProvision) {
		a, _ := j.Args["action"].(string)
		out[a]++
	}
	return out
}

func (e *env) seqValue(name string) int64 {
	s, err := e.db.Client.Sequence.Query().Where(sequence.Name(name)).Only(e.ctx)
	if ent.IsNotFound(err) {
		return 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return s.Value
}

// checkGapless asserts numbers are prefix-year-000001 … in order with no gap
// or duplicate, continuing after first.
func checkGapless(t *testing.T, numbers []string, prefix string, year int, first int64) {
	t.Helper()
	slices.Sort(numbers)
	for i, n := range numbers {
		if want := fmt.Sprintf("%s-%d-%06d", prefix, year, first+int64(i)); n != want {
			t.Fatalf("number %d is %s, want %s (all: %v)", i, n, want, numbers)
		}
	}
}

var joined = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func TestGenerateInvoicesConcurrentNoDuplicateNoGap(t *testing.T) {
	e := newPostgres(t, "Asia/Dhaka")
	monthly := e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY)
	nus := e.subscribers(40, monthly, joined)
	// Seeded data left the counter at 41, as internal/seed writes it.
	e.db.Client.Sequence.Create().SetName("invoice:2026").SetValue(41).ExecX(e.ctx)

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.GenerateInvoices(e.ctx, "2026-03")
			errs <- err
		}()
	}
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := e.svc.GenerateInvoice(e.ctx, nus[i*3].ID, "2026-03")
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
	invs := e.db.Client.Invoice.Query().AllX(e.ctx)
	if len(invs) != 40 {
		t.Fatalf("%d invoices, want 40", len(invs))
	}
	var numbers []string
	for _, inv := range invs {
		numbers = append(numbers, inv.Number)
		if inv.Amount != money.MustParse("500.00") || inv.Tax != money.MustParse("25.00") || inv.Total != money.MustParse("525.00") {
			t.Fatalf("invoice amounts %s + %s = %s", inv.Amount, inv.Tax, inv.Total)
		}
	}
	checkGapless(t, numbers, "INV", 2026, 42)
	if v := e.seqValue("invoice:2026"); v != 81 {
		t.Fatalf("sequence at %d, want 81", v)
	}
	if n := len(e.jobs(jobs.SendInvoiceEmail)); n != 40 {
		t.Fatalf("%d invoice e-mails enqueued, want 40", n)
	}

	// Running again creates nothing.
	res, err := e.svc.GenerateInvoices(e.ctx, "2026-03")
	if err != nil || res.Created != 0 || res.Existing != 40 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	inv, created, err := e.svc.GenerateInvoice(e.ctx, nus[0].ID, "2026-03")
	if err != nil || created || inv.NetworkUserID != nus[0].ID {
		t.Fatalf("single again: created %v, %v", created, err)
	}
	if v := e.seqValue("invoice:2026"); v != 81 {
		t.Fatalf("sequence moved to %d on a run that created nothing", v)
	}
}

func TestGenerateInvoicesCyclesAndTimeZones(t *testing.T) {
	for _, tc := range []struct {
		tz                string
		start, end, due   string
		daily             string // 29 days of 900.00 ÷ 30, + 5%
		suspendedNotBills bool
	}{
		{"Asia/Dhaka", "2028-01-31T18:00:00Z", "2028-02-29T17:59:59Z", "2028-03-07T17:59:59Z", "913.50", true},
		{"America/Bogota", "2028-02-01T05:00:00Z", "2028-03-01T04:59:59Z", "2028-03-08T04:59:59Z", "913.50", true},
	} {
		t.Run(tc.tz, func(t *testing.T) {
			e := newPostgres(t, tc.tz)
			e.setNow(time.Date(2028, 2, 15, 0, 0, 0, 0, time.UTC))
			monthly := e.pkg("monthly", "500.00", servicepackage.BillingCycleMONTHLY)
			daily := e.pkg("daily", "900.00", servicepackage.BillingCycleDAILY)
			once := e.pkg("install", "1000.00", servicepackage.BillingCycleONETIME)
			m := e.subscribers(1, monthly, joined)[0]
			d := e.subscribers(1, daily, joined)[0]
			o := e.subscribers(1, once, joined)[0]
			// Joined in the evening of Feb 10 UTC: Feb 11 in Dhaka, Feb 10 in Bogota.
			late := e.db.Client.NetworkUser.Create().SetUsername("late").SetPackageID(daily.ID).
				SetCreatedAt(time.Date(2028, 2, 10, 20, 0, 0, 0, time.UTC)).SaveX(e.ctx)
			e.db.Client.NetworkUser.Create().SetUsername("off").SetPackageID(monthly.ID).
				SetStatus(networkuser.StatusSUSPENDED).SetCreatedAt(joined).SaveX(e.ctx)

			res, err := e.svc.GenerateInvoices(e.ctx, "") // the current local month: February 2028
			if err != nil {
				t.Fatal(err)
			}
			if res.Period.String() != "2028-02" || res.Created != 4 || res.Skipped != 0 {
				t.Fatalf("result %+v", res)
			}
			byUser := map[int]*ent.Invoice{}
			for _, inv := range e.db.Client.Invoice.Query().AllX(e.ctx) {
				byUser[inv.NetworkUserID] = inv
				if inv.PeriodStart.UTC().Format(time.RFC3339) != tc.start || inv.PeriodEnd.UTC().Format(time.RFC3339) != tc.end ||
					inv.DueDate.UTC().Format(time.RFC3339) != tc.due {
					t.Fatalf("period %s – %s due %s", inv.PeriodStart.UTC(), inv.PeriodEnd.UTC(), inv.DueDate.UTC())
				}
			}
			if got := byUser[m.ID].Total.String(); got != "525.00" {
				t.Errorf("monthly total %s", got)
			}
			if got := byUser[d.ID].Total.String(); got != tc.daily {
				t.Errorf("daily total %s, want %s", got, tc.daily)
			}
			if got := byUser[o.ID].Total.String(); got != "1050.00" {
				t.Errorf("one-time total %s", got)
			}
			// Dhaka: Feb 11–29 = 19 days; Bogota: Feb 10–29 = 20 days (900 × d ÷ 30 + 5%).
			wantLate := map[string]string{"Asia/Dhaka": "598.50", "America/Bogota": "630.00"}[tc.tz]
			if got := byUser[late.ID].Total.String(); got != wantLate {
				t.Errorf("late joiner total %s, want %s", got, wantLate)
			}

			// March: the one-time package is not billed again.
			res, err = e.svc.GenerateInvoices(e.ctx, "2028-03")
			if err != nil || res.Created != 3 || res.Skipped != 1 {
				t.Fatalf("march: %+v, %v", res, err)
			}
			if _, _, err := e.svc.GenerateInvoice(e.ctx, o.ID, "2028-04"); code(err) != apperr.Conflict {
				t.Fatalf("one-time billed twice: %v", err)
			}
		})
	}
}

func TestInvoiceNumberYearIsLocal(t *testing.T) {
	e := newPostgres(t, "Asia/Dhaka")
	// 19:00 UTC on New Year's Eve is 01:00 on January 1st in Dhaka.
	e.setNow(time.Date(2026, 12, 31, 19, 0, 0, 0, time.UTC))
	nu := e.subscribers(1, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)[0]
	inv, _, err := e.svc.GenerateInvoice(e.ctx, nu.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Number != "INV-2027-000001" {
		t.Fatalf("number %s", inv.Number)
	}
	p, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: inv.ID, Amount: inv.Total, Method: payment.MethodCASH, IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Number != "PAY-2027-000001" {
		t.Fatalf("payment number %s", p.Number)
	}
}

// invoiceFor generates one subscriber's March 2026 invoice (total 525.00).
func (e *env) invoiceFor(nu *ent.NetworkUser) *ent.Invoice {
	inv, _, err := e.svc.GenerateInvoice(e.ctx, nu.ID, "2026-03")
	if err != nil {
		e.t.Fatal(err)
	}
	return inv
}

func TestRecordPaymentIdempotentUnderConcurrency(t *testing.T) {
	e := newPostgres(t, "Asia/Dhaka")
	nu := e.subscribers(1, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)[0]
	inv := e.invoiceFor(nu)
	in := billing.PaymentInput{InvoiceID: inv.ID, Amount: money.MustParse("200.00"), Method: payment.MethodCASH, IdempotencyKey: "counter-7f3a"}

	var wg sync.WaitGroup
	ids := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := e.svc.RecordPayment(e.ctx, in)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- p.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[int]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("50 calls with one key made %d payments", len(seen))
	}
	if n := e.db.Client.Payment.Query().CountX(e.ctx); n != 1 {
		t.Fatalf("%d payment rows", n)
	}
	got := e.invoice(inv.ID)
	if got.AmountPaid != money.MustParse("200.00") || got.Status != invoice.StatusPENDING {
		t.Fatalf("invoice paid %s, %s", got.AmountPaid, got.Status)
	}
	// Same key, different input: CONFLICT, nothing changes.
	in.Amount = money.MustParse("201.00")
	if _, err := e.svc.RecordPayment(e.ctx, in); code(err) != apperr.Conflict {
		t.Fatalf("same key, other amount: %v", err)
	}
	if e.invoice(inv.ID).AmountPaid != money.MustParse("200.00") {
		t.Fatal("a refused payment changed the invoice")
	}
	if v := e.seqValue("payment:2026"); v != 1 {
		t.Fatalf("payment sequence %d", v)
	}
}

func TestConcurrentPaymentsToOneInvoice(t *testing.T) {
	e := newPostgres(t, "America/Bogota")
	nu := e.subscribers(1, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)[0]
	inv := e.invoiceFor(nu) // 525.00
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: inv.ID, Amount: money.MustParse("26.25"),
				Method: payment.MethodBANK_TRANSFER, IdempotencyKey: fmt.Sprintf("k%d", i)})
			mu.Lock()
			defer mu.Unlock()
			switch code(err) {
			case "":
				ok++
			case apperr.Conflict:
				refused++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// 525.00 / 26.25 = 20 payments fit; the rest find the invoice paid.
	if ok != 20 || refused != 10 {
		t.Fatalf("%d recorded, %d refused", ok, refused)
	}
	got := e.invoice(inv.ID)
	if got.AmountPaid != got.Total || got.Status != invoice.StatusPAID || got.PaidAt == nil {
		t.Fatalf("invoice %s of %s, %s", got.AmountPaid, got.Total, got.Status)
	}
	var numbers []string
	for _, p := range e.db.Client.Payment.Query().AllX(e.ctx) {
		numbers = append(numbers, p.Number)
	}
	checkGapless(t, numbers, "PAY", 2026, 1)
	if u := e.user(nu.ID); u.Credit != 0 {
		t.Fatalf("credit %s", u.Credit)
	}
}

func TestOverpaymentCreditAndRefund(t *testing.T) {
	e := newPostgres(t, "Asia/Dhaka")
	nu := e.subscribers(1, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)[0]
	march := e.invoiceFor(nu) // 525.00
	pay := func(inv *ent.Invoice, amount, key string) *ent.Payment {
		p, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: inv.ID, Amount: money.MustParse(amount), Method: payment.MethodCASH, IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := pay(march, "300.00", "a")
	p2 := pay(march, "400.00", "b") // 175.00 over
	if got := e.invoice(march.ID); got.AmountPaid != money.MustParse("525.00") || got.Status != invoice.StatusPAID {
		t.Fatalf("march %s %s", got.AmountPaid, got.Status)
	}
	if c := e.user(nu.ID).Credit; c != money.MustParse("175.00") {
		t.Fatalf("credit %s", c)
	}
	// Refunding p1 (300.00): 400.00 remain against 525.00, the credit is taken back.
	if _, err := e.svc.RefundPayment(e.ctx, p1.ID, "paid twice by mistake"); err != nil {
		t.Fatal(err)
	}
	got := e.invoice(march.ID)
	if got.AmountPaid != money.MustParse("400.00") || got.Status != invoice.StatusPENDING || got.PaidAt != nil {
		t.Fatalf("after refund %s %s", got.AmountPaid, got.Status)
	}
	if c := e.user(nu.ID).Credit; c != 0 {
		t.Fatalf("credit after refund %s", c)
	}
	if _, err := e.svc.RefundPayment(e.ctx, p1.ID, "again"); code(err) != apperr.Conflict {
		t.Fatalf("second refund: %v", err)
	}
	p3 := pay(march, "225.00", "c") // 100.00 over
	if c := e.user(nu.ID).Credit; c != money.MustParse("100.00") {
		t.Fatalf("credit %s", c)
	}
	// April's invoice takes the credit.
	april, _, err := e.svc.GenerateInvoice(e.ctx, nu.ID, "2026-04")
	if err != nil {
		t.Fatal(err)
	}
	if april.CreditApplied != money.MustParse("100.00") || april.AmountPaid != money.MustParse("100.00") || april.Status != invoice.StatusPENDING {
		t.Fatalf("april %+v", april)
	}
	if c := e.user(nu.ID).Credit; c != 0 {
		t.Fatalf("credit after april %s", c)
	}
	// p3's overpayment is spent: refunding it is refused, nothing changes.
	if _, err := e.svc.RefundPayment(e.ctx, p3.ID, "x"); code(err) != apperr.Conflict {
		t.Fatalf("refund of spent credit: %v", err)
	}
	// Ledger: every unit paid is on an invoice or in credit; credit applied
	// moved money between them, so Σ completed payments = Σ amount paid + credit.
	var paid, amountPaid money.Money
	for _, p := range e.db.Client.Payment.Query().Where(payment.StatusEQ(payment.StatusCOMPLETED)).AllX(e.ctx) {
		paid += p.Amount
	}
	for _, inv := range e.db.Client.Invoice.Query().AllX(e.ctx) {
		amountPaid += inv.AmountPaid
	}
	if credit := e.user(nu.ID).Credit; paid != amountPaid+credit {
		t.Fatalf("payments %s != amount paid %s + credit %s", paid, amountPaid, credit)
	}
	// Cancelling April returns its credit; March (paid) cannot be cancelled.
	if _, err := e.svc.CancelInvoice(e.ctx, april.ID, "moved away"); err != nil {
		t.Fatal(err)
	}
	if c := e.user(nu.ID).Credit; c != money.MustParse("100.00") {
		t.Fatalf("credit after cancel %s", c)
	}
	if _, err := e.svc.CancelInvoice(e.ctx, march.ID, "x"); code(err) != apperr.Conflict {
		t.Fatalf("cancel paid: %v", err)
	}
	if _, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: april.ID, Amount: 100, Method: payment.MethodCASH, IdempotencyKey: "d"}); code(err) != apperr.Conflict {
		t.Fatalf("pay cancelled: %v", err)
	}
	_ = p2
}

func TestGatewayPaymentStaysPendingUntilVerified(t *testing.T) {
	e := newPostgres(t, "Asia/Dhaka")
	nu := e.subscribers(1, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)[0]
	inv := e.invoiceFor(nu)
	gw := e.db.Client.PaymentGateway.Create().SetProvider("BKASH").SetName("bKash").SaveX(e.ctx)
	ref := "TRX123"
	p, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: inv.ID, Amount: inv.Total, Method: payment.MethodGATEWAY,
		IdempotencyKey: "g1", TransactionID: &ref, PaymentGatewayID: &gw.ID})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payment.StatusPENDING || e.invoice(inv.ID).AmountPaid != 0 {
		t.Fatalf("gateway payment %s", p.Status)
	}
	js := e.jobs(jobs.ProcessPayment)
	var args jobs.ProcessPaymentArgs
	if len(js) != 1 || jobs.FromMap(js[0].Args, &args) != nil || args.PaymentID != p.ID || args.TenantID != e.tenant.ID {
		t.Fatalf("process payment jobs %+v", js)
	}
	// The job completes it, twice (a retried job): one effect.
	for i := 0; i < 2; i++ {
		if p, err = e.svc.CompletePayment(e.ctx, p.ID, "TRX123"); err != nil || p.Status != payment.StatusCOMPLETED {
			t.Fatalf("complete: %v", err)
		}
	}
	if got := e.invoice(inv.ID); got.Status != invoice.StatusPAID || got.AmountPaid != got.Total {
		t.Fatalf("invoice %s %s", got.Status, got.AmountPaid)
	}
	if _, err := e.svc.FailPayment(e.ctx, p.ID, "late decline"); code(err) != apperr.Conflict {
		t.Fatalf("fail completed: %v", err)
	}
	// A second gateway payment that fails changes nothing.
	march2 := e.invoiceFor(e.subscribers(1, e.pkg("pro", "100.00", servicepackage.BillingCycleMONTHLY), joined)[0])
	q, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: march2.ID, Amount: march2.Total, Method: payment.MethodGATEWAY,
		IdempotencyKey: "g2", PaymentGatewayID: &gw.ID})
	if err != nil {
		t.Fatal(err)
	}
	if q, err = e.svc.FailPayment(e.ctx, q.ID, "insufficient balance"); err != nil || q.Status != payment.StatusFAILED {
		t.Fatalf("fail: %v", err)
	}
	if _, err := e.svc.CompletePayment(e.ctx, q.ID, ""); code(err) != apperr.Conflict {
		t.Fatalf("complete failed: %v", err)
	}
	if e.invoice(march2.ID).AmountPaid != 0 {
		t.Fatal("failed payment counted")
	}
}

func TestOverdueSuspendsAndFullPaymentReactivates(t *testing.T) {
	e := newPostgres(t, "America/Bogota")
	nus := e.subscribers(3, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)
	invs := make([]*ent.Invoice, len(nus))
	for i, nu := range nus {
		invs[i] = e.invoiceFor(nu) // due 2026-04-07 23:59:59 in Bogota = 04-08T04:59:59Z
	}
	if _, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: invs[2].ID, Amount: invs[2].Total, Method: payment.MethodCASH, IdempotencyKey: "paid"}); err != nil {
		t.Fatal(err)
	}
	// One second before the local due date passes: nothing.
	e.setNow(time.Date(2026, 4, 8, 4, 59, 59, 0, time.UTC))
	if res, err := e.svc.ProcessOverdue(e.ctx); err != nil || res.MarkedOverdue != 0 {
		t.Fatalf("before due: %+v %v", res, err)
	}
	e.setNow(time.Date(2026, 4, 8, 5, 0, 0, 0, time.UTC))
	res, err := e.svc.ProcessOverdue(e.ctx)
	if err != nil || res.MarkedOverdue != 2 || res.Suspended != 2 {
		t.Fatalf("overdue run: %+v %v", res, err)
	}
	u := e.user(nus[0].ID)
	if u.Status != networkuser.StatusSUSPENDED || u.SuspensionReason == nil || *u.SuspensionReason != billing.OverdueReason || u.SuspendedAt == nil {
		t.Fatalf("user %+v", u)
	}
	if e.user(nus[2].ID).Status != networkuser.StatusACTIVE {
		t.Fatal("paid subscriber suspended")
	}
	// The router follows the status change: the provisioning hook on
	// subscribers (internal/mikrotik) writes one disable job per suspension.
	if acts := e.routerActions(); acts["disable"] != 2 {
		t.Fatalf("router jobs %v", acts)
	}
	if res, err := e.svc.ProcessOverdue(e.ctx); err != nil || res != (billing.OverdueResult{}) {
		t.Fatalf("second run: %+v %v", res, err)
	}
	// A partial payment keeps the suspension, the full one lifts it.
	pay := func(amount, key string) {
		if _, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: invs[0].ID, Amount: money.MustParse(amount), Method: payment.MethodCASH, IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	pay("100.00", "p1")
	if e.user(nus[0].ID).Status != networkuser.StatusSUSPENDED || e.invoice(invs[0].ID).Status != invoice.StatusOVERDUE {
		t.Fatal("partial payment lifted the suspension")
	}
	pay("425.00", "p2")
	if u := e.user(nus[0].ID); u.Status != networkuser.StatusACTIVE || u.SuspensionReason != nil {
		t.Fatalf("after full payment %s", u.Status)
	}
	if js := e.jobs(jobs.RouterProvision); js[len(js)-1].Args["action"] != "upsert" || int(js[len(js)-1].Args["network_user_id"].(float64)) != nus[0].ID {
		t.Fatalf("reactivation did not put the subscriber back on its router: %+v", js[len(js)-1])
	}
	// Staff suspension is not lifted by payments, and refusals are clear.
	if _, err := e.svc.SuspendNetworkUser(e.ctx, nus[2].ID, "abuse report"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SuspendNetworkUser(e.ctx, nus[2].ID, "again"); code(err) != apperr.Conflict {
		t.Fatalf("suspend twice: %v", err)
	}
	if _, err := e.svc.ActivateNetworkUser(e.ctx, nus[1].ID, "promised to pay"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ActivateNetworkUser(e.ctx, nus[1].ID, ""); code(err) != apperr.Conflict {
		t.Fatalf("activate twice: %v", err)
	}
	// Refunding reopens the paid invoice as OVERDUE (its due date has passed).
	p, _ := e.db.Client.Payment.Query().Where(payment.IdempotencyKey("p2")).Only(e.ctx)
	if _, err := e.svc.RefundPayment(e.ctx, p.ID, "bounced"); err != nil {
		t.Fatal(err)
	}
	if got := e.invoice(invs[0].ID); got.Status != invoice.StatusOVERDUE || got.AmountPaid != money.MustParse("100.00") {
		t.Fatalf("reopened %s %s", got.Status, got.AmountPaid)
	}
}

// TestSQLiteEmbeddedDefault runs the lifecycle on the embedded default's
// SQLite, which has no FOR UPDATE: the same code must work there.
func TestSQLiteEmbeddedDefault(t *testing.T) {
	e := newSQLite(t, "Asia/Dhaka")
	nus := e.subscribers(5, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.GenerateInvoices(e.ctx, "2026-03"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	invs := e.db.Client.Invoice.Query().AllX(e.ctx)
	if len(invs) != 5 {
		t.Fatalf("%d invoices", len(invs))
	}
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: invs[0].ID, Amount: money.MustParse("600.00"), Method: payment.MethodCASH, IdempotencyKey: "one"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := e.db.Client.Payment.Query().CountX(e.ctx); n != 1 {
		t.Fatalf("%d payments", n)
	}
	if c := e.user(invs[0].NetworkUserID).Credit; c != money.MustParse("75.00") {
		t.Fatalf("credit %s", c)
	}
	e.setNow(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	if res, err := e.svc.ProcessOverdue(e.ctx); err != nil || res.MarkedOverdue != 4 || res.Suspended != 4 {
		t.Fatalf("overdue: %+v %v", res, err)
	}
	if _, err := e.svc.ActivateNetworkUser(e.ctx, nus[1].ID, "ok"); err != nil {
		t.Fatal(err)
	}
	p := e.db.Client.Payment.Query().OnlyX(e.ctx)
	if _, err := e.svc.RefundPayment(e.ctx, p.ID, "test"); err != nil {
		t.Fatal(err)
	}
}

// TestNumberingMatchesSeed: the seeder writes the counters billing advances.
func TestNumberingMatchesSeed(t *testing.T) {
	if billing.InvoiceSequence != seed.InvoiceSequence || billing.PaymentSequence != seed.PaymentSequence || billing.PaymentPrefix != seed.PaymentPrefix {
		t.Fatal("billing and internal/seed disagree on sequence names or the payment prefix")
	}
}

// TestEverythingAtOnce runs generation, payments, refunds, the overdue
// routine and staff suspensions concurrently: no deadlock or other failure,
// and afterwards every subscriber's ledger adds up and numbers are gapless.
func TestEverythingAtOnce(t *testing.T) {
	e := newPostgres(t, "America/Bogota")
	nus := e.subscribers(12, e.pkg("home", "500.00", servicepackage.BillingCycleMONTHLY), joined)
	march := make([]*ent.Invoice, len(nus))
	for i, nu := range nus {
		march[i] = e.invoiceFor(nu)
	}
	e.setNow(time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC)) // March is past due
	var wg sync.WaitGroup
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && code(err) != apperr.Conflict {
				t.Error(err)
			}
		}()
	}
	for i := 0; i < 3; i++ {
		run(func() error { _, err := e.svc.GenerateInvoices(e.ctx, "2026-04"); return err })
		run(func() error { _, err := e.svc.ProcessOverdue(e.ctx); return err })
	}
	for i := 0; i < 36; i++ {
		inv := march[i%len(march)]
		run(func() error {
			p, err := e.svc.RecordPayment(e.ctx, billing.PaymentInput{InvoiceID: inv.ID, Amount: money.MustParse("300.00"),
				Method: payment.MethodCASH, IdempotencyKey: fmt.Sprintf("x%d", i)})
			if err == nil && i%5 == 0 {
				_, err = e.svc.RefundPayment(e.ctx, p.ID, "test")
			}
			return err
		})
	}
	for i := 0; i < 6; i++ {
		nu := nus[i*2]
		run(func() error {
			if _, err := e.svc.SuspendNetworkUser(e.ctx, nu.ID, "check"); err != nil {
				return err
			}
			_, err := e.svc.ActivateNetworkUser(e.ctx, nu.ID, "ok")
			return err
		})
	}
	wg.Wait()

	for _, nu := range nus {
		var paid, amountPaid money.Money
		for _, p := range e.db.Client.Payment.Query().Where(payment.NetworkUserID(nu.ID), payment.StatusEQ(payment.StatusCOMPLETED)).AllX(e.ctx) {
			paid += p.Amount
		}
		for _, inv := range e.db.Client.Invoice.Query().Where(invoice.NetworkUserID(nu.ID)).AllX(e.ctx) {
			amountPaid += inv.AmountPaid
			if inv.AmountPaid > inv.Total || (inv.AmountPaid == inv.Total) != (inv.Status == invoice.StatusPAID) {
				t.Fatalf("invoice %s: %s of %s, %s", inv.Number, inv.AmountPaid, inv.Total, inv.Status)
			}
		}
		if credit := e.user(nu.ID).Credit; paid != amountPaid+credit || credit < 0 {
			t.Fatalf("%s: payments %s != amount paid %s + credit %s", nu.Username, paid, amountPaid, credit)
		}
	}
	var invNumbers, payNumbers []string
	for _, inv := range e.db.Client.Invoice.Query().AllX(e.ctx) {
		invNumbers = append(invNumbers, inv.Number)
	}
	for _, p := range e.db.Client.Payment.Query().AllX(e.ctx) {
		payNumbers = append(payNumbers, p.Number)
	}
	// April bills the subscribers that were ACTIVE when a generator reached
	// them (some were suspended at that moment): one invoice each at most.
	if len(invNumbers) < 12 || len(invNumbers) > 24 {
		t.Fatalf("%d invoices", len(invNumbers))
	}
	checkGapless(t, invNumbers, "INV", 2026, 1)
	checkGapless(t, payNumbers, "PAY", 2026, 1)
}
