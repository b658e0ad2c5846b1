package billing

import (
	"context"
	"fmt"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
)

// RenewalInvoice is the invoice a subscriber pays to renew service, or to buy
// packageID (nil keeps the current package): the oldest open invoice when
// there is one (a package can only be changed without any); otherwise, after
// the package change (it must be ACTIVE), the current period's invoice,
// created when missing, or the next period's when the current one is paid. Paying it settles it as any invoice does; a PREPAID subscriber
// is served until the period's end (renewPrepaid).
func (s *Service) RenewalInvoice(ctx context.Context, networkUserID int, packageID *int) (*ent.Invoice, error) {
	var out *ent.Invoice
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		nu, err := lockNetworkUser(ctx, c, networkUserID)
		if err != nil {
			return err
		}
		switch nu.Status {
		case networkuser.StatusACTIVE, networkuser.StatusSUSPENDED, networkuser.StatusEXPIRED:
		default:
			return conflict("subscriber %s is %s: ask the ISP to reactivate the account", nu.Username, nu.Status)
		}
		oldest, err := c.Invoice.Query().Where(invoice.NetworkUserID(nu.ID), invoice.StatusIn(OpenStatuses...)).
			Order(ent.Asc(invoice.FieldPeriodStart), ent.Asc(invoice.FieldID)).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return err
		}
		change := packageID != nil && (nu.PackageID == nil || *nu.PackageID != *packageID)
		if oldest != nil && change {
			return conflict("pay the open invoice %s before changing the package", oldest.Number)
		}
		if oldest != nil {
			out = oldest
			return nil
		}
		if change {
			pkg, err := c.ServicePackage.Get(ctx, *packageID)
			if err != nil {
				return notFound(err, "package")
			}
			if pkg.Status != servicepackage.StatusACTIVE {
				return conflict("package %s is not offered any more", pkg.Name)
			}
			if err := c.NetworkUser.UpdateOne(nu).SetPackageID(pkg.ID).Exec(ctx); err != nil {
				return fmt.Errorf("billing: change package of %s: %w", nu.Username, err)
			}
			if err := audit.Decision(ctx, c, "network_user.package", "NetworkUser", nu.ID, map[string]any{"package": pkg.Name}); err != nil {
				return err
			}
		}
		_, loc, err := s.tenantLoc(ctx, c)
		if err != nil {
			return err
		}
		now := s.now()
		for _, at := range []int{0, 1} {
			period := PeriodAt(now.In(loc).AddDate(0, at, 0), loc, 0).String()
			inv, _, err := s.GenerateInvoice(ctx, nu.ID, period)
			if err != nil {
				return err
			}
			switch inv.Status {
			case invoice.StatusPENDING, invoice.StatusOVERDUE:
				out = inv
				return nil
			case invoice.StatusPAID:
				continue
			default:
				return conflict("invoice %s for %s is %s: ask the ISP", inv.Number, period, inv.Status)
			}
		}
		return apperr.E(apperr.Conflict, "subscriber %s has paid the current and the next period already", nu.Username)
	})
	return out, err
}

// renewPrepaid serves a PREPAID subscriber until the end of the period of an
// invoice that was just paid, and reactivates one the expiry routine had set
// EXPIRED.
func (s *Service) renewPrepaid(ctx context.Context, c *ent.Client, nu *ent.NetworkUser, inv *ent.Invoice, why string) error {
	if nu.BillingType != networkuser.BillingTypePREPAID {
		return nil
	}
	if nu.ExpiresAt != nil && !nu.ExpiresAt.Before(inv.PeriodEnd) && nu.Status != networkuser.StatusEXPIRED {
		return nil
	}
	upd := c.NetworkUser.UpdateOne(nu)
	if nu.ExpiresAt == nil || nu.ExpiresAt.Before(inv.PeriodEnd) {
		upd.SetExpiresAt(inv.PeriodEnd)
	}
	reactivate := nu.Status == networkuser.StatusEXPIRED && (nu.ExpiresAt == nil || inv.PeriodEnd.After(s.now()))
	if reactivate {
		upd.SetStatus(networkuser.StatusACTIVE)
	}
	if err := upd.Exec(ctx); err != nil {
		return fmt.Errorf("billing: renew %s: %w", nu.Username, err)
	}
	if reactivate {
		return audit.Decision(ctx, c, "network_user.activate", "NetworkUser", nu.ID, map[string]any{"status": "ACTIVE", "from": "EXPIRED", "reason": "renewed: " + why})
	}
	return nil
}
