package billing

import (
	"context"
	"fmt"
	"github.com/ispgraph/ispgraph/internal/tax"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/payment"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/outbox"
)

// GenerateResult says what GenerateInvoices did.
type GenerateResult struct {
	Period Period
	// Created counts new invoices; Existing, subscribers already billed for
	// the period; Skipped, subscribers not billed (one-time package already
	// billed, or joined after the period).
	Created, Existing, Skipped int
}

// generateBatch is the number of subscribers locked and billed per round.
const generateBatch = 500

// billing is what generating invoices for a tenant and period needs.
type billingRun struct {
	tenant *ent.Tenant
	loc    *time.Location
	period Period
	now    time.Time
	seq    *ent.Sequence // locked for the whole transaction
	next   int64         // last number handed out
}

// begin loads the tenant, parses the period and locks the period's invoice
// counter. The counter is locked before any subscriber, always, so two
// generators never wait for each other in opposite order.
func (s *Service) begin(ctx context.Context, c *ent.Client, period string) (*billingRun, error) {
	tid, err := tenantID(ctx)
	if err != nil {
		return nil, err
	}
	t, err := c.Tenant.Get(ctx, tid)
	if err != nil {
		return nil, fmt.Errorf("billing: tenant: %w", err)
	}
	loc, err := LoadLocation(t.Timezone)
	if err != nil {
		return nil, err
	}
	now := s.now()
	p, err := ParsePeriod(period, now, loc, t.GraceDays)
	if err != nil {
		return nil, err
	}
	seq, err := lockSequence(ctx, c, fmt.Sprintf(InvoiceSequence, p.Year))
	if err != nil {
		return nil, err
	}
	return &billingRun{tenant: t, loc: loc, period: p, now: now, seq: seq, next: seq.Value}, nil
}

// finish stores the last number handed out.
func (r *billingRun) finish(ctx context.Context, c *ent.Client) error {
	if r.next == r.seq.Value {
		return nil
	}
	if err := c.Sequence.UpdateOne(r.seq).SetValue(r.next).Exec(ctx); err != nil {
		return fmt.Errorf("billing: advance invoice numbers: %w", err)
	}
	return nil
}

// outcome of billing one subscriber.
type outcome int

const (
	billed outcome = iota
	alreadyBilled
	notBilled
)

// bill creates the invoice of one locked subscriber for the run's period
// unless it exists. prior is the subscriber's invoice for the period, if
// any; onetime, its earlier invoice for a one-time package, if any.
func (s *Service) bill(ctx context.Context, c *ent.Client, r *billingRun, nu *ent.NetworkUser, pkg *ent.ServicePackage, prior, onetime *ent.Invoice) (*ent.Invoice, outcome, error) {
	p := r.period
	switch {
	case prior != nil:
		return prior, alreadyBilled, nil
	case onetime != nil:
		return onetime, notBilled, nil
	case nu.CreatedAt.After(p.End):
		return nil, notBilled, nil
	}
	from := p.Start
	if nu.CreatedAt.After(from) {
		from = nu.CreatedAt
	}
	ch := ComputeCharge(pkg.Price, pkg.BillingCycle, DaysBetween(from, p.End, r.loc), tax.Effective(r.tenant.Taxes, r.tenant.TaxRateBp))

	// Credit from earlier overpayments pays the new invoice first.
	applied := min(nu.Credit, ch.Total)
	applied = max(applied, 0)
	r.next++
	create := c.Invoice.Create().
		SetNetworkUserID(nu.ID).SetPackageID(pkg.ID).
		SetNumber(formatNumber(r.tenant.InvoicePrefix, p.Year, r.next)).
		SetAmount(ch.Amount).SetTax(ch.Tax).SetTotal(ch.Total).
		SetAmountPaid(applied).SetCreditApplied(applied).
		SetPeriodStart(p.Start.UTC()).SetPeriodEnd(p.End.UTC()).
		SetIssuedAt(r.now).SetDueDate(p.Due.UTC()).
		SetNotes(chargeNote(pkg, ch, applied))
	if applied == ch.Total {
		create.SetStatus(invoice.StatusPAID).SetPaidAt(r.now)
	} else {
		create.SetStatus(invoice.StatusPENDING)
	}
	inv, err := create.Save(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("billing: create invoice for %s: %w", nu.Username, err)
	}
	if applied > 0 {
		if err := c.NetworkUser.UpdateOne(nu).AddCredit(-applied).Exec(ctx); err != nil {
			return nil, 0, fmt.Errorf("billing: apply credit of %s: %w", nu.Username, err)
		}
	}
	if err := outbox.Enqueue(ctx, c,
		jobs.SendInvoiceEmailArgs{TenantID: r.tenant.ID, InvoiceID: inv.ID, EmailKind: "new"},
		outbox.DedupKey(fmt.Sprintf("invoice:%d:new", inv.ID))); err != nil {
		return nil, 0, err
	}
	return inv, billed, nil
}

func chargeNote(pkg *ent.ServicePackage, ch Charge, credit money.Money) string {
	var note string
	switch pkg.BillingCycle {
	case servicepackage.BillingCycleDAILY:
		note = fmt.Sprintf("%s: %d days at %s ÷ %d", pkg.Name, ch.Days, pkg.Price, DailyDivisor)
	case servicepackage.BillingCycleONETIME:
		note = fmt.Sprintf("%s: one-time charge", pkg.Name)
	default:
		note = fmt.Sprintf("%s: monthly charge", pkg.Name)
	}
	if credit > 0 {
		note += fmt.Sprintf("; credit applied %s", credit)
	}
	return note
}

// GenerateInvoice bills one subscriber for period ("YYYY-MM" in the tenant's
// time zone, "" for the current month). It returns the subscriber's existing
// invoice for the period, and created false, when there is one.
func (s *Service) GenerateInvoice(ctx context.Context, networkUserID int, period string) (inv *ent.Invoice, created bool, err error) {
	err = s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		r, err := s.begin(ctx, c, period)
		if err != nil {
			return err
		}
		q := c.NetworkUser.Query().Where(networkuser.ID(networkUserID))
		q.Modify(forUpdate)
		nu, err := q.Only(ctx)
		if err != nil {
			return notFound(err, "subscriber")
		}
		if nu.PackageID == nil {
			return apperr.E(apperr.BadUserInput, "subscriber %s has no package: assign one before billing", nu.Username)
		}
		pkg, err := c.ServicePackage.Get(ctx, *nu.PackageID)
		if err != nil {
			return fmt.Errorf("billing: package of %s: %w", nu.Username, err)
		}
		prior, err := c.Invoice.Query().
			Where(invoice.NetworkUserID(nu.ID), invoice.PeriodStart(r.period.Start.UTC())).
			Only(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return err
		}
		var onetime *ent.Invoice
		if prior == nil && pkg.BillingCycle == servicepackage.BillingCycleONETIME {
			onetime, err = c.Invoice.Query().
				Where(invoice.NetworkUserID(nu.ID), invoice.PackageID(pkg.ID), invoice.StatusNEQ(invoice.StatusCANCELLED)).
				First(ctx)
			if err != nil && !ent.IsNotFound(err) {
				return err
			}
			if onetime != nil {
				return conflict("subscriber %s was already billed for one-time package %s on invoice %s", nu.Username, pkg.Name, onetime.Number)
			}
		}
		if prior == nil && nu.CreatedAt.After(r.period.End) {
			return apperr.E(apperr.BadUserInput, "subscriber %s joined after period %s", nu.Username, r.period)
		}
		var out outcome
		inv, out, err = s.bill(ctx, c, r, nu, pkg, prior, nil)
		if err != nil {
			return err
		}
		created = out == billed
		return r.finish(ctx, c)
	})
	return inv, created, err
}

// GenerateInvoices bills every ACTIVE subscriber with a package for period
// ("YYYY-MM" in the tenant's time zone, "" for the current month). Running it
// again for a period creates nothing new; running it concurrently creates no
// duplicate and leaves no gap in the numbers.
func (s *Service) GenerateInvoices(ctx context.Context, period string) (GenerateResult, error) {
	var res GenerateResult
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		res = GenerateResult{}
		r, err := s.begin(ctx, c, period)
		if err != nil {
			return err
		}
		res.Period = r.period
		pkgs, err := c.ServicePackage.Query().All(ctx)
		if err != nil {
			return fmt.Errorf("billing: packages: %w", err)
		}
		byID := make(map[int]*ent.ServicePackage, len(pkgs))
		for _, p := range pkgs {
			byID[p.ID] = p
		}
		start := r.period.Start.UTC()
		last := 0
		for {
			// Subscribers are locked in id order, the order every billing
			// change locks them in.
			q := c.NetworkUser.Query().
				Where(networkuser.IDGT(last), networkuser.StatusEQ(networkuser.StatusACTIVE), networkuser.PackageIDNotNil()).
				Order(ent.Asc(networkuser.FieldID)).Limit(generateBatch)
			q.Modify(forUpdate)
			nus, err := q.All(ctx)
			if err != nil {
				return fmt.Errorf("billing: subscribers: %w", err)
			}
			if len(nus) == 0 {
				break
			}
			last = nus[len(nus)-1].ID
			ids := make([]int, len(nus))
			for i, nu := range nus {
				ids[i] = nu.ID
			}
			existing, err := c.Invoice.Query().
				Where(invoice.NetworkUserIDIn(ids...), invoice.PeriodStart(start)).All(ctx)
			if err != nil {
				return err
			}
			prior := make(map[int]*ent.Invoice, len(existing))
			for _, inv := range existing {
				prior[inv.NetworkUserID] = inv
			}
			// Earlier invoices of one-time packages, per subscriber and package.
			onetimeIDs := []int{}
			for _, p := range pkgs {
				if p.BillingCycle == servicepackage.BillingCycleONETIME {
					onetimeIDs = append(onetimeIDs, p.ID)
				}
			}
			onetime := map[[2]int]*ent.Invoice{}
			if len(onetimeIDs) > 0 {
				ots, err := c.Invoice.Query().
					Where(invoice.NetworkUserIDIn(ids...), invoice.PackageIDIn(onetimeIDs...), invoice.StatusNEQ(invoice.StatusCANCELLED)).
					All(ctx)
				if err != nil {
					return err
				}
				for _, inv := range ots {
					onetime[[2]int{inv.NetworkUserID, *inv.PackageID}] = inv
				}
			}
			for _, nu := range nus {
				pkg := byID[*nu.PackageID]
				if pkg == nil {
					res.Skipped++
					continue
				}
				_, out, err := s.bill(ctx, c, r, nu, pkg, prior[nu.ID], onetime[[2]int{nu.ID, pkg.ID}])
				if err != nil {
					return err
				}
				switch out {
				case billed:
					res.Created++
				case alreadyBilled:
					res.Existing++
				default:
					res.Skipped++
				}
			}
			if len(nus) < generateBatch {
				break
			}
		}
		return r.finish(ctx, c)
	})
	return res, err
}

// CancelInvoice cancels an invoice that has no completed or pending
// payments. Credit it had taken returns to the subscriber.
func (s *Service) CancelInvoice(ctx context.Context, id int, reason string) (*ent.Invoice, error) {
	if reason == "" {
		return nil, apperr.E(apperr.BadUserInput, "give a reason for cancelling the invoice")
	}
	var out *ent.Invoice
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		inv, err := lockInvoice(ctx, c, id)
		if err != nil {
			return err
		}
		if err := checkTransition(inv, invoice.StatusCANCELLED); err != nil {
			return err
		}
		n, err := c.Payment.Query().
			Where(payment.InvoiceID(inv.ID), payment.StatusIn(payment.StatusCOMPLETED, payment.StatusPENDING)).
			Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return conflict("invoice %s has %d completed or pending payment(s): refund or fail them before cancelling", inv.Number, n)
		}
		nu, err := lockNetworkUser(ctx, c, inv.NetworkUserID)
		if err != nil {
			return err
		}
		if inv.CreditApplied > 0 {
			if err := c.NetworkUser.UpdateOne(nu).AddCredit(inv.CreditApplied).Exec(ctx); err != nil {
				return err
			}
		}
		note := inv.Notes
		if note != "" {
			note += "; "
		}
		out, err = c.Invoice.UpdateOne(inv).SetStatus(invoice.StatusCANCELLED).
			SetAmountPaid(0).SetCreditApplied(0).
			SetNotes(note + "cancelled: " + reason).Save(ctx)
		if err != nil {
			return err
		}
		if inv.Status == invoice.StatusOVERDUE {
			// It may have been the last thing keeping the subscriber suspended.
			if err := s.reactivateIfSettled(ctx, c, nu, "invoice "+inv.Number+" cancelled"); err != nil {
				return err
			}
		}
		return audit.Decision(ctx, c, "invoice.cancel", "Invoice", inv.ID, map[string]any{"status": "CANCELLED", "from": string(inv.Status), "reason": reason})
	})
	return out, err
}

// lockInvoice reads an invoice of the tenant and locks it until the
// transaction ends.
func lockInvoice(ctx context.Context, c *ent.Client, id int) (*ent.Invoice, error) {
	q := c.Invoice.Query().Where(invoice.ID(id))
	q.Modify(forUpdate)
	inv, err := q.Only(ctx)
	if err != nil {
		return nil, notFound(err, "invoice")
	}
	return inv, nil
}

// lockNetworkUser reads a subscriber of the tenant and locks it until the
// transaction ends.
func lockNetworkUser(ctx context.Context, c *ent.Client, id int) (*ent.NetworkUser, error) {
	q := c.NetworkUser.Query().Where(networkuser.ID(id))
	q.Modify(forUpdate)
	nu, err := q.Only(ctx)
	if err != nil {
		return nil, notFound(err, "subscriber")
	}
	return nu, nil
}
