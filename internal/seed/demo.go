package seed

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Fixed names of the demo data set that scripts and docs rely on.
const (
	// DemoSlug is the demo tenant's slug (the tenant of the demo login).
	DemoSlug = "demo"
	// DemoAdminEmail is the demo staff login.
	DemoAdminEmail = "admin@demo.example"
	// DemoSubscribers is the number of subscribers in the demo tenant.
	DemoSubscribers = 25
	// DemoMonths is the number of monthly invoices per demo subscriber, ending with the current month.
	DemoMonths = 3
	// GeneratedPasswordLength is the length of a password Demo generates.
	GeneratedPasswordLength = 16
)

var demoProfile = profile{
	name:          "Demo ISP",
	slug:          DemoSlug,
	domain:        "demo.localhost",
	subdomain:     "demo",
	timezone:      "Asia/Dhaka",
	currency:      "BDT",
	taxBP:         500,
	graceDays:     7,
	invoicePrefix: "INV",
}

// demoSeed fixes the demo data: every fresh instance shows the same subscribers.
const demoSeed = 20260101

// DemoOptions configures Demo.
type DemoOptions struct {
	// Password is the demo admin's password; when empty a random one is
	// generated and returned in DemoResult.Password.
	Password string
	// HashPassword hashes a login password (auth.HashPassword); required.
	HashPassword func(string) (string, error)
	// Roles are the tenant's default roles (authz.DefaultRoles); required, must include "admin".
	Roles []RoleSpec
	// Encrypt encrypts a secret the routers need (subscribers' service
	// passwords); when nil they are left empty.
	Encrypt func(string) (string, error)
	// Now is the reference time for periods and statuses; zero means time.Now().
	Now time.Time
}

// DemoResult says what Demo did.
type DemoResult struct {
	// Created is false when the demo tenant already existed and nothing was written.
	Created  bool
	TenantID int
	// AdminEmail is the staff login of the demo tenant.
	AdminEmail string
	// Password is the admin's password when Demo generated it (print it once); empty otherwise.
	Password string
	// CustomerUsername is a subscriber whose customer-portal password is the admin's password.
	CustomerUsername string
	// Counts of the rows written.
	Packages, Subscribers, Invoices, Payments int
}

// String summarises the result for a command's output; it never contains a
// password that was not generated.
func (r DemoResult) String() string {
	if !r.Created {
		return fmt.Sprintf("demo tenant %q already exists: nothing seeded", DemoSlug)
	}
	s := fmt.Sprintf("demo tenant %q seeded: %d packages, %d subscribers, %d invoices, %d payments; staff login %s",
		DemoSlug, r.Packages, r.Subscribers, r.Invoices, r.Payments, r.AdminEmail)
	if r.Password != "" {
		s += " / " + r.Password
	}
	return s
}

// Demo creates the demo tenant with its roles, admin, packages, a router,
// subscribers, three months of invoices and their payments, in one
// transaction through ent, so it runs on Postgres and SQLite alike. It does
// nothing when the tenant exists already.
func Demo(ctx context.Context, client *ent.Client, opts DemoOptions) (DemoResult, error) {
	if opts.HashPassword == nil {
		return DemoResult{}, errors.New("seed: DemoOptions.HashPassword is required")
	}
	if err := checkRoles(opts.Roles); err != nil {
		return DemoResult{}, err
	}
	if exists, err := demoExists(ctx, client); err != nil || exists {
		return DemoResult{AdminEmail: DemoAdminEmail}, err
	}

	res := DemoResult{Created: true, AdminEmail: DemoAdminEmail}
	password := opts.Password
	if password == "" {
		var err error
		if password, err = GeneratePassword(GeneratedPasswordLength); err != nil {
			return DemoResult{}, err
		}
		res.Password = password
	}
	hash, err := opts.HashPassword(password)
	if err != nil {
		return DemoResult{}, fmt.Errorf("seed: hash the demo password: %w", err)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)

	tx, err := client.Tx(ctx)
	if err != nil {
		return DemoResult{}, fmt.Errorf("seed: begin: %w", err)
	}
	if err := fillDemo(ctx, tx.Client(), opts, hash, now, &res); err != nil {
		_ = tx.Rollback()
		if ent.IsConstraintError(err) {
			// Another process seeded the demo tenant concurrently.
			if exists, xerr := demoExists(ctx, client); xerr == nil && exists {
				return DemoResult{AdminEmail: DemoAdminEmail}, nil
			}
		}
		return DemoResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return DemoResult{}, fmt.Errorf("seed: commit the demo tenant: %w", err)
	}
	return res, nil
}

func demoExists(ctx context.Context, client *ent.Client) (bool, error) {
	ok, err := client.Tenant.Query().Where(tenant.Slug(DemoSlug)).Exist(tenancy.Bypass(ctx))
	if err != nil {
		return false, fmt.Errorf("seed: look for the demo tenant: %w", err)
	}
	return ok, nil
}

// fillDemo writes the demo tenant through c, a transactional client.
func fillDemo(ctx context.Context, c *ent.Client, opts DemoOptions, hash string, now time.Time, res *DemoResult) error {
	p := demoProfile
	loc, err := time.LoadLocation(p.timezone)
	if err != nil {
		return fmt.Errorf("seed: time zone %s: %w", p.timezone, err)
	}
	t, err := c.Tenant.Create().
		SetName(p.name).SetSlug(p.slug).SetDomain(p.domain).SetSubdomain(p.subdomain).
		SetTimezone(p.timezone).SetCurrency(p.currency).SetTaxRateBp(p.taxBP).
		SetInvoicePrefix(p.invoicePrefix).SetGraceDays(p.graceDays).
		SetCreatedAt(now).SetUpdatedAt(now).
		Save(tenancy.Bypass(ctx))
	if err != nil {
		return fmt.Errorf("seed: create the demo tenant: %w", err)
	}
	res.TenantID = t.ID
	ctx = viewer.ForTenant(ctx, t.ID)

	roles, err := c.Role.MapCreateBulk(opts.Roles, func(rc *ent.RoleCreate, i int) {
		r := opts.Roles[i]
		rc.SetName(r.Name).SetDescription(r.Description).SetPermissions(nonNil(r.Permissions)).
			SetBuiltin(true).SetCreatedAt(now).SetUpdatedAt(now)
	}).Save(ctx)
	if err != nil {
		return fmt.Errorf("seed: create roles: %w", err)
	}
	var adminRoleID int
	for _, r := range roles {
		if r.Name == AdminRole {
			adminRoleID = r.ID
		}
	}
	admin, err := c.User.Create().
		SetName("Demo Admin").SetEmail(DemoAdminEmail).SetPasswordHash(hash).
		SetRoleID(adminRoleID).SetActive(true).SetCreatedAt(now).SetUpdatedAt(now).
		Save(ctx)
	if err != nil {
		return fmt.Errorf("seed: create the demo admin: %w", err)
	}

	pkgs, err := c.ServicePackage.MapCreateBulk(demoPackages, func(pc *ent.ServicePackageCreate, i int) {
		s := demoPackages[i]
		pc.SetName(s.name).SetDescription(s.description).
			SetBandwidthUpKbps(s.upKbps).SetBandwidthDownKbps(s.downKbps).
			SetPrice(money.Money(s.price)).SetBillingCycle(servicepackage.BillingCycle(s.cycle)).
			SetValidityDays(s.validityDays).SetRouterProfile(s.profile).
			SetCreatedAt(now).SetUpdatedAt(now)
	}).Save(ctx)
	if err != nil {
		return fmt.Errorf("seed: create packages: %w", err)
	}
	res.Packages = len(pkgs)

	// The router's address is a documentation address (RFC 5737): it is
	// created INACTIVE so no sync, health check or job ever dials it; an
	// operator sets a real address and activates it.
	rt, err := c.Router.Create().
		SetName("Core Router").SetHost("192.0.2.1").SetAPIPort(8728).SetUsername("api").
		SetStatus(router.StatusINACTIVE).SetCreatedAt(now).SetUpdatedAt(now).
		Save(ctx)
	if err != nil {
		return fmt.Errorf("seed: create the router: %w", err)
	}

	periods := months(now, loc, p.graceDays, DemoMonths, true)
	env := &subscriberEnv{pkgs: demoPackages, routers: 1, since: periods[0].start, now: now,
		periodEnd: currentPeriodEnd(now, loc)}
	subs := make([]subscriberFact, DemoSubscribers)
	for i := range subs {
		r := newRNG(demoSeed, 1, uint64(i))
		// Stratified draws: the demo always shows every status and service type.
		uStatus := (float64(i) + 0.5) / DemoSubscribers
		uType := float64(i+1) * 0.6180339887498949
		uType -= float64(int(uType))
		subs[i] = makeSubscriber(&r, i, env, uStatus, uType)
	}
	secrets := make([]string, len(subs))
	if opts.Encrypt != nil {
		for i, s := range subs {
			if secrets[i], err = opts.Encrypt(s.servicePassword); err != nil {
				return fmt.Errorf("seed: encrypt a service password: %w", err)
			}
		}
	}
	nus, err := c.NetworkUser.MapCreateBulk(subs, func(nc *ent.NetworkUserCreate, i int) {
		s := subs[i]
		nc.SetServicePassword(secrets[i]).SetUsername(demoUsername(s, i)).SetFullName(s.fullName).SetEmail(s.email).
			SetPhone(s.phone).SetAddress(s.address).SetPortalPasswordHash(hash).
			SetServiceType(networkuser.ServiceType(s.serviceType)).
			SetStatus(networkuser.Status(s.status)).
			SetBillingType(networkuser.BillingType(s.billingType)).
			SetPackageID(pkgs[s.pkg].ID).SetRouterID(rt.ID).
			SetCreatedAt(s.createdAt).SetUpdatedAt(s.createdAt).
			SetRouterSyncedAt(s.createdAt) // demo data: taken as already on the router, nothing to push
		if s.staticIP != "" {
			nc.SetStaticIP(s.staticIP)
		}
		if s.mac != "" {
			nc.SetMACAddress(s.mac)
		}
		if !s.expiresAt.IsZero() {
			nc.SetExpiresAt(s.expiresAt)
		}
		if s.suspensionReason != "" {
			nc.SetSuspensionReason(s.suspensionReason).SetSuspendedAt(s.suspendedAt)
		}
	}).Save(ctx)
	if err != nil {
		return fmt.Errorf("seed: create subscribers: %w", err)
	}
	res.Subscribers = len(nus)
	res.CustomerUsername = nus[0].Username

	// The oldest month is mostly settled, the current one mostly open; unpaid
	// invoices are OVERDUE exactly when their due date has passed.
	mixes := []statusMix{{paid: 0.88, partial: 0.04}, {paid: 0.72, partial: 0.08}, {paid: 0.40, partial: 0.12}}
	type demoPay struct {
		inv int // index into invoices
		payFact
	}
	var (
		invs    []*ent.InvoiceCreate
		pays    []demoPay
		invSeq  = yearCounts{}
		paySeq  = yearCounts{}
		periodN = make([]period, 0, len(periods)*len(subs))
	)
	for m, per := range periods {
		for i, s := range subs {
			pkg := demoPackages[s.pkg]
			amount := pkg.price
			taxAmt := tax(amount, p.taxBP)
			r := newRNG(demoSeed, 2, uint64(i), uint64(m))
			f := billInvoice(&r, amount+taxAmt, per, now, mixes[min(m, len(mixes)-1)])
			invSeq[per.year]++
			ic := c.Invoice.Create().
				SetNetworkUserID(nus[i].ID).SetPackageID(pkgs[s.pkg].ID).
				SetNumber(invoiceNumber(p.invoicePrefix, per.year, invSeq[per.year])).
				SetAmount(money.Money(amount)).SetTax(money.Money(taxAmt)).SetTotal(money.Money(amount + taxAmt)).
				SetAmountPaid(money.Money(f.amountPaid)).SetStatus(invoice.Status(f.status)).
				SetPeriodStart(per.start).SetPeriodEnd(per.end).SetIssuedAt(per.start).SetDueDate(per.due).
				SetCreatedAt(per.start).SetUpdatedAt(f.updatedAt)
			if !f.paidAt.IsZero() {
				ic.SetPaidAt(f.paidAt)
			}
			for _, pf := range f.pays[:f.n] {
				pays = append(pays, demoPay{inv: len(invs), payFact: pf})
			}
			invs = append(invs, ic)
			periodN = append(periodN, per)
		}
	}
	saved, err := c.Invoice.CreateBulk(invs...).Save(ctx)
	if err != nil {
		return fmt.Errorf("seed: create invoices: %w", err)
	}
	res.Invoices = len(saved)

	// Payment numbers follow the order payments were made.
	slices.SortStableFunc(pays, func(a, b demoPay) int { return a.at.Compare(b.at) })
	pcs := make([]*ent.PaymentCreate, len(pays))
	for k, dp := range pays {
		inv := saved[dp.inv]
		year := periodN[dp.inv].yearOf(dp.at)
		paySeq[year]++
		number := paymentNumber(year, paySeq[year])
		pc := c.Payment.Create().
			SetNetworkUserID(inv.NetworkUserID).SetInvoiceID(inv.ID).
			SetNumber(number).SetAmount(money.Money(dp.amount)).
			SetMethod(payment.Method(dp.method)).SetStatus(payment.Status(dp.status)).
			SetIdempotencyKey("seed:" + number).
			SetCreatedAt(dp.at).SetUpdatedAt(dp.at)
		if dp.method != "CASH" {
			pc.SetTransactionID(transactionID(number))
		} else if dp.status == statusCompleted {
			pc.SetCollectedByID(admin.ID)
		}
		if dp.status == statusCompleted {
			pc.SetPaidAt(dp.at)
		} else {
			pc.SetFailureReason(dp.failure)
		}
		pcs[k] = pc
	}
	if len(pcs) > 0 {
		if _, err := c.Payment.CreateBulk(pcs...).Save(ctx); err != nil {
			return fmt.Errorf("seed: create payments: %w", err)
		}
	}
	res.Payments = len(pcs)

	seqs := sequenceRows(invSeq, paySeq)
	if _, err := c.Sequence.MapCreateBulk(seqs, func(sc *ent.SequenceCreate, i int) {
		sc.SetName(seqs[i][0].(string)).SetValue(seqs[i][1].(int64))
	}).Save(ctx); err != nil {
		return fmt.Errorf("seed: create sequences: %w", err)
	}
	return nil
}

// demoUsername is a readable, unique username such as "rahim.ahmed07".
func demoUsername(s subscriberFact, i int) string {
	name := []rune{}
	for _, r := range s.fullName {
		switch {
		case r == ' ':
			name = append(name, '.')
		case r >= 'A' && r <= 'Z':
			name = append(name, r+'a'-'A')
		default:
			name = append(name, r)
		}
	}
	return fmt.Sprintf("%s%02d", string(name), i+1)
}

// transactionID is the provider's reference for a non-cash payment, unique per tenant.
func transactionID(number string) string {
	return "TRX" + number[len(PaymentPrefix)+1:]
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GeneratePassword returns a random password of n characters from an
// alphabet without look-alike characters, drawn from crypto/rand.
func GeneratePassword(n int) (string, error) {
	size := big.NewInt(int64(len(passwordAlphabet)))
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, size)
		if err != nil {
			return "", fmt.Errorf("seed: generate a password: %w", err)
		}
		b[i] = passwordAlphabet[k.Int64()]
	}
	return string(b), nil
}
