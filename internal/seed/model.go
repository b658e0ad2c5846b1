// Package seed owns the data sets ispgraph is filled with: the demo tenant the
// embedded default starts with (written through ent, so it works on Postgres
// and SQLite) and the benchmark-sized data set of tenants t1…tN (bulk-loaded
// into Postgres with COPY).
//
// Both draw subscribers, invoices and payments from the same model, so the
// invariants the billing code relies on hold in either: an invoice's
// amount_paid is the sum of its completed payments, a paid invoice has paid_at
// (its last completed payment), numbers are gapless per tenant and year, and
// the sequences table continues where the data stops.
package seed

import (
	"cmp"
	"fmt"
	"github.com/ispgraph/ispgraph/internal/billing"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // tenants' billing time zones must load on hosts without a zoneinfo database

	"github.com/ispgraph/ispgraph/internal/money"
)

// RoleSpec is a role created in every seeded tenant; its fields mirror
// authz.RoleSpec, so a caller converts with seed.RoleSpec(r).
type RoleSpec struct {
	Name        string
	Description string
	Permissions []string
}

// AdminRole is the role the seeded admin user gets; the roles given to Demo
// and Bench must include it.
const AdminRole = "admin"

// Numbering conventions the billing code continues: payment numbers start
// with PaymentPrefix (invoice numbers with the tenant's invoice prefix), and
// the sequences row named InvoiceSequence or PaymentSequence (with the year)
// holds the last number used in that year.
const (
	// PaymentPrefix starts every payment number, e.g. PAY-2026-000001.
	PaymentPrefix = "PAY"
	// InvoiceSequence names the sequences row of a year's invoice numbers.
	InvoiceSequence = "invoice:%d"
	// PaymentSequence names the sequences row of a year's payment numbers.
	PaymentSequence = "payment:%d"
)

// Values of enum columns as stored (the ent enums are UPPER_CASE).
const (
	statusPaid      = "PAID"
	statusPending   = "PENDING"
	statusOverdue   = "OVERDUE"
	statusCompleted = "COMPLETED"
	statusFailed    = "FAILED"
)

// profile is what a seeded tenant is configured with.
type profile struct {
	name, slug, domain, subdomain string
	timezone, currency            string
	taxBP, graceDays              int
	invoicePrefix                 string
}

// packageSpec is a service plan of a seeded tenant.
type packageSpec struct {
	name, description string
	upKbps, downKbps  int
	price             int64 // minor units
	cycle             string
	validityDays      int
	profile           string
	weight            int // share of subscribers on the plan; 0: nobody is billed monthly on it
}

var demoPackages = []packageSpec{
	{"Home 5 Mbps", "Entry plan for browsing and e-mail", 2048, 5120, 50000, "MONTHLY", 30, "home-5m", 30},
	{"Home 10 Mbps", "Streaming for a small household", 4096, 10240, 80000, "MONTHLY", 30, "home-10m", 35},
	{"Home 25 Mbps", "HD streaming and video calls", 10240, 25600, 120000, "MONTHLY", 30, "home-25m", 20},
	{"Pro 50 Mbps", "Home office and gaming", 20480, 51200, 200000, "MONTHLY", 30, "pro-50m", 15},
	{"Day Pass 10 Mbps", "24 hours of hotspot access", 4096, 10240, 3000, "DAILY", 1, "day-10m", 0},
}

var benchPackages = []packageSpec{
	{"Home 5 Mbps", "Entry plan for browsing and e-mail", 2048, 5120, 50000, "MONTHLY", 30, "home-5m", 25},
	{"Home 10 Mbps", "Streaming for a small household", 4096, 10240, 80000, "MONTHLY", 30, "home-10m", 30},
	{"Home 20 Mbps", "A family's streaming and calls", 8192, 20480, 100000, "MONTHLY", 30, "home-20m", 20},
	{"Home 25 Mbps", "HD streaming and video calls", 10240, 25600, 120000, "MONTHLY", 30, "home-25m", 15},
	{"Pro 50 Mbps", "Home office and gaming", 20480, 51200, 200000, "MONTHLY", 30, "pro-50m", 10},
	{"Day Pass 10 Mbps", "24 hours of hotspot access", 4096, 10240, 3000, "DAILY", 1, "day-10m", 0},
}

// pickPackage returns the index of the plan a subscriber with draw u in [0,1) is on.
func pickPackage(pkgs []packageSpec, u float64) int {
	total := 0
	for _, p := range pkgs {
		total += p.weight
	}
	x := int(u * float64(total))
	for i, p := range pkgs {
		if x < p.weight {
			return i
		}
		x -= p.weight
	}
	return 0
}

// rng is splitmix64: tiny, fast and stable across Go releases, so a seed
// always yields the same data set. Every subscriber and invoice gets its own
// stream derived from (seed, tenant, kind, index...), which keeps generation
// independent of order and lets a pass be repeated exactly.
type rng struct{ s uint64 }

func newRNG(keys ...uint64) rng {
	r := rng{s: 0x6a09e667f3bcc909}
	for _, k := range keys {
		r.s ^= k
		r.s = r.next()
	}
	return r
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a value in [0,1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn returns a value in [0,n); n must be positive.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// within returns a duration in [0,d) truncated to seconds; zero when d <= 0.
func (r *rng) within(d time.Duration) time.Duration {
	if d <= time.Second {
		return 0
	}
	return time.Duration(r.next() % uint64(d)).Truncate(time.Second)
}

// period is one monthly billing period in the tenant's time zone; the
// instants are UTC.
type period struct {
	start    time.Time // first instant of the month, local midnight
	end      time.Time // last second of the month
	due      time.Time // end plus the tenant's grace days
	year     int       // local year of start: the year of the invoice number
	nextYear time.Time // start of the following local year, for payment numbers
}

func monthPeriod(year int, month time.Month, loc *time.Location, graceDays int) period {
	// Billing owns the period rule; the seeder writes the invoices it would.
	bp := billing.MonthPeriod(year, month, loc, graceDays)
	return period{
		start:    bp.Start.UTC(),
		end:      bp.End.UTC(),
		due:      bp.Due.UTC(),
		year:     bp.Year,
		nextYear: time.Date(bp.Year+1, time.January, 1, 0, 0, 0, 0, loc).UTC(),
	}
}

// yearOf returns the local year of t, for t before the end of the following year.
func (p period) yearOf(t time.Time) int {
	if t.Before(p.nextYear) {
		return p.year
	}
	return p.year + 1
}

// months returns k monthly periods, oldest first, ending with the month
// before now's month, or with now's month when current is set.
func months(now time.Time, loc *time.Location, graceDays, k int, current bool) []period {
	local := now.In(loc)
	first := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
	if !current {
		first = first.AddDate(0, -1, 0)
	}
	first = first.AddDate(0, -(k - 1), 0)
	out := make([]period, k)
	for i := range out {
		m := first.AddDate(0, i, 0)
		out[i] = monthPeriod(m.Year(), m.Month(), loc, graceDays)
	}
	return out
}

// currentPeriodEnd returns the last second of now's month in loc.
func currentPeriodEnd(now time.Time, loc *time.Location) time.Time {
	local := now.In(loc)
	return time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc).AddDate(0, 1, 0).Add(-time.Second).UTC()
}

// statusMix says how the invoices of one month end up.
type statusMix struct {
	paid    float64 // share paid in full
	partial float64 // share partly paid
	// pendingPastDue is the share of unpaid past-due invoices still PENDING,
	// as if the overdue sweep had not reached them; the rest are OVERDUE.
	pendingPastDue float64
}

// payFact is one payment towards an invoice.
type payFact struct {
	amount  int64
	method  string
	status  string
	at      time.Time // when it was made (paid_at when completed)
	failure string
}

// invoiceFact is how an invoice ends up, with the payments made towards it in
// time order.
type invoiceFact struct {
	status     string
	amountPaid int64
	paidAt     time.Time // zero unless PAID
	updatedAt  time.Time
	pays       [3]payFact
	n          int
}

func (f *invoiceFact) add(p payFact) {
	f.pays[f.n] = p
	f.n++
}

var failureReasons = []string{"insufficient balance", "transaction timed out", "cancelled by customer", "card declined"}

// pickMethod returns a payment method: cash and mobile wallets dominate, as at
// a Bangladeshi ISP. GATEWAY is left out: it needs a payment gateway row.
func pickMethod(r *rng) string {
	switch u := r.float(); {
	case u < 0.35:
		return "CASH"
	case u < 0.70:
		return "MOBILE_WALLET"
	case u < 0.85:
		return "BANK_TRANSFER"
	default:
		return "CARD"
	}
}

// part returns 20–70% of total in whole currency units, strictly between 0 and total.
func part(r *rng, total int64) int64 {
	amt := total * int64(20+r.intn(51)) / 100
	amt -= amt % money.Scale
	if amt <= 0 || amt >= total {
		amt = total / 2
	}
	return amt
}

// billInvoice decides how an invoice of total for p ends up by now: its
// status, the payments made towards it and when. Payments fall between the
// issue date and the earlier of the due date and now.
func billInvoice(r *rng, total int64, p period, now time.Time, m statusMix) invoiceFact {
	f := invoiceFact{updatedAt: p.start}
	latest := p.due
	if now.Before(latest) {
		latest = now
	}
	span := latest.Sub(p.start)
	at := func() time.Time { return p.start.Add(r.within(span)) }
	unpaid := func() string {
		if now.After(p.due) && r.float() >= m.pendingPastDue {
			return statusOverdue
		}
		return statusPending
	}
	failedFirst := r.float() < 0.02

	switch u := r.float(); {
	case span <= 0 || total < 2:
		f.status = statusPending
	case u < m.paid:
		if r.float() < 0.15 {
			first := part(r, total)
			t1, t2 := at(), at()
			if t2.Before(t1) {
				t1, t2 = t2, t1
			}
			f.add(payFact{amount: first, method: pickMethod(r), status: statusCompleted, at: t1})
			f.add(payFact{amount: total - first, method: pickMethod(r), status: statusCompleted, at: t2})
			f.paidAt = t2
		} else {
			t := at()
			f.add(payFact{amount: total, method: pickMethod(r), status: statusCompleted, at: t})
			f.paidAt = t
		}
		f.status = statusPaid
		f.amountPaid = total
	case u < m.paid+m.partial:
		amt := part(r, total)
		f.add(payFact{amount: amt, method: pickMethod(r), status: statusCompleted, at: at()})
		f.amountPaid = amt
		f.status = unpaid()
	default:
		f.status = unpaid()
	}

	if failedFirst && span > 0 {
		// A failed attempt precedes the first completed payment, if any.
		before := span
		if f.n > 0 {
			before = f.pays[0].at.Sub(p.start)
		}
		fail := payFact{
			amount:  total,
			method:  []string{"MOBILE_WALLET", "CARD"}[r.intn(2)],
			status:  statusFailed,
			at:      p.start.Add(r.within(before)),
			failure: failureReasons[r.intn(len(failureReasons))],
		}
		if f.n > 0 {
			fail.amount = f.pays[0].amount // the attempt the first payment repeated
		}
		copy(f.pays[1:], f.pays[:f.n])
		f.pays[0] = fail
		f.n++
	}
	for _, p := range f.pays[:f.n] {
		if p.at.After(f.updatedAt) {
			f.updatedAt = p.at
		}
	}
	return f
}

// subscriberFact is one generated subscriber.
type subscriberFact struct {
	fullName, email, phone, address  string
	serviceType, status, billingType string
	pkg, router                      int
	staticIP, mac                    string // "" for none
	expiresAt, suspendedAt           time.Time
	suspensionReason                 string
	servicePassword                  string // plain; encrypted before storing
	createdAt                        time.Time
}

// subscriberEnv is what subscriber generation depends on in a tenant.
type subscriberEnv struct {
	pkgs      []packageSpec
	routers   int
	since     time.Time // start of the first billed period: subscribers joined before it
	now       time.Time
	periodEnd time.Time // end of the current period, when active service ends
}

var (
	firstNames = []string{"Rahim", "Karim", "Fatema", "Ayesha", "Tanvir", "Nusrat", "Sakib", "Farhana",
		"Imran", "Sumaiya", "Hasan", "Jannat", "Rafiq", "Shirin", "Arif", "Mitu", "Nadia", "Sabbir",
		"Tasnim", "Mahmud", "Rubina", "Shakil", "Lamia", "Zahid"}
	lastNames = []string{"Ahmed", "Hossain", "Rahman", "Islam", "Khan", "Chowdhury", "Akter", "Uddin",
		"Sarker", "Begum", "Mia", "Das", "Roy", "Talukder", "Alam", "Siddique"}
	areas = []string{"Dhanmondi", "Mirpur", "Uttara", "Gulshan", "Banani", "Mohammadpur", "Bashundhara",
		"Motijheel", "Badda", "Rampura"}
)

const passwordAlphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// makeSubscriber generates subscriber i from its stream r; uStatus and uType
// in [0,1) pick its status and service type, so a caller can stratify them.
func makeSubscriber(r *rng, i int, env *subscriberEnv, uStatus, uType float64) subscriberFact {
	first := firstNames[r.intn(len(firstNames))]
	last := lastNames[r.intn(len(lastNames))]
	s := subscriberFact{
		fullName: first + " " + last,
		email:    strings.ToLower(first) + "." + strings.ToLower(last) + strconv.Itoa(i+1) + "@example.com",
		phone:    fmt.Sprintf("+8801%d%08d", 3+r.intn(7), r.intn(100_000_000)),
		address: fmt.Sprintf("House %d, Road %d, %s, Dhaka", 1+r.intn(120), 1+r.intn(30),
			areas[r.intn(len(areas))]),
		pkg:         pickPackage(env.pkgs, r.float()),
		router:      r.intn(env.routers),
		billingType: "POSTPAID",
		createdAt:   env.since.Add(-time.Duration(1+r.intn(365*24)) * time.Hour),
	}
	pw := make([]byte, 10)
	for j := range pw {
		pw[j] = passwordAlphabet[r.intn(len(passwordAlphabet))]
	}
	s.servicePassword = string(pw)

	switch {
	case uType < 0.70:
		s.serviceType = "PPPOE"
		if r.float() < 0.1 {
			s.billingType = "PREPAID"
		}
	case uType < 0.85:
		s.serviceType = "HOTSPOT"
		s.billingType = "PREPAID"
		s.mac = mac(i)
	default:
		s.serviceType = "STATIC"
		s.staticIP = fmt.Sprintf("100.64.%d.%d", (i/250)%256, i%250+2)
		s.mac = mac(i)
	}

	switch {
	case uStatus < 0.84:
		s.status = "ACTIVE"
		s.expiresAt = env.periodEnd
	case uStatus < 0.90:
		s.status = "SUSPENDED"
		s.expiresAt = env.periodEnd
		s.suspendedAt = env.now.Add(-time.Duration(1+r.intn(20*24)) * time.Hour).Truncate(time.Second)
		// A staff suspension: the seed does not give these subscribers an
		// overdue invoice, so billing's overdue reason would be untrue (and a
		// payment would wrongly reactivate them).
		s.suspensionReason = "Suspended by staff at the customer's request"
	case uStatus < 0.95:
		s.status = "EXPIRED"
		s.expiresAt = env.now.Add(-time.Duration(1+r.intn(60*24)) * time.Hour).Truncate(time.Second)
	default:
		s.status = "INACTIVE"
	}
	return s
}

// mac returns a locally administered MAC address unique to i.
func mac(i int) string {
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
}

// invoiceNumber formats an invoice number, e.g. INV-2026-000123.
func invoiceNumber(prefix string, year, n int) string {
	return fmt.Sprintf("%s-%d-%06d", prefix, year, n)
}

// paymentNumber formats a payment number, e.g. PAY-2026-000123.
func paymentNumber(year, n int) string {
	return fmt.Sprintf("%s-%d-%06d", PaymentPrefix, year, n)
}

// tax returns the tax on amount at taxBP basis points.
func tax(amount int64, taxBP int) int64 {
	return int64(money.Money(amount).MulRate(int64(taxBP), 10_000))
}

// yearCounts holds the last number used per year.
type yearCounts map[int]int

// sequenceRows returns the sequences rows (name, value) for invoice and
// payment counters, sorted by name.
func sequenceRows(inv, pay yearCounts) [][2]any {
	var rows [][2]any
	for y, n := range inv {
		rows = append(rows, [2]any{fmt.Sprintf(InvoiceSequence, y), int64(n)})
	}
	for y, n := range pay {
		rows = append(rows, [2]any{fmt.Sprintf(PaymentSequence, y), int64(n)})
	}
	slices.SortFunc(rows, func(a, b [2]any) int { return cmp.Compare(a[0].(string), b[0].(string)) })
	return rows
}

// checkRoles validates the roles to create: named, unique, with the admin role.
func checkRoles(roles []RoleSpec) error {
	if len(roles) == 0 {
		return fmt.Errorf("seed: no roles given: pass the default roles (authz.DefaultRoles)")
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if r.Name == "" {
			return fmt.Errorf("seed: a role has no name")
		}
		if seen[r.Name] {
			return fmt.Errorf("seed: role %q given twice", r.Name)
		}
		seen[r.Name] = true
	}
	if !seen[AdminRole] {
		return fmt.Errorf("seed: the roles do not include %q, which the seeded admin needs", AdminRole)
	}
	return nil
}
