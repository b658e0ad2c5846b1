package billing

import (
	"context"
	"fmt"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/invoice"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// OverdueReason is the suspension reason the overdue routine writes (the
// seeder uses the same words). Only subscribers suspended with it are
// reactivated automatically when they pay.
const OverdueReason = "Overdue invoice"

// OverdueResult says what one run of the overdue routine did.
type OverdueResult struct {
	// MarkedOverdue counts invoices that became OVERDUE; Suspended,
	// subscribers suspended because of them.
	MarkedOverdue, Suspended int
}

// ProcessOverdue is the overdue routine for the tenant in ctx (the scheduler
// calls it through ProcessOverdueAll, or per tenant with viewer.ForTenant):
// every PENDING invoice whose due date has passed becomes OVERDUE (an
// "overdue" invoice e-mail is enqueued), and every ACTIVE subscriber with an
// invoice that became OVERDUE in this run is suspended with OverdueReason and
// its router told to disable it. The due date already holds the tenant's
// grace days, so they are counted once. Running it again changes nothing
// until another invoice falls due. All in one transaction.
func (s *Service) ProcessOverdue(ctx context.Context) (OverdueResult, error) {
	var res OverdueResult
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		res = OverdueResult{}
		tid, err := tenantID(ctx)
		if err != nil {
			return err
		}
		now := s.now()
		q := c.Invoice.Query().
			Where(PastDue(now)).
			Order(ent.Asc(invoice.FieldID))
		q.Modify(forUpdate)
		due, err := q.All(ctx)
		if err != nil {
			return fmt.Errorf("billing: due invoices: %w", err)
		}
		if len(due) == 0 {
			return nil
		}
		ids := make([]int, len(due))
		userSet := map[int]bool{}
		var users []int
		for i, inv := range due {
			ids[i] = inv.ID
			if !userSet[inv.NetworkUserID] {
				userSet[inv.NetworkUserID] = true
				users = append(users, inv.NetworkUserID)
			}
		}
		if res.MarkedOverdue, err = c.Invoice.Update().Where(invoice.IDIn(ids...)).
			SetStatus(invoice.StatusOVERDUE).Save(ctx); err != nil {
			return fmt.Errorf("billing: mark overdue: %w", err)
		}
		for _, inv := range due {
			if err := outbox.Enqueue(ctx, c, jobs.SendInvoiceEmailArgs{TenantID: tid, InvoiceID: inv.ID, EmailKind: "overdue"},
				outbox.DedupKey(fmt.Sprintf("invoice:%d:overdue", inv.ID))); err != nil {
				return err
			}
		}
		uq := c.NetworkUser.Query().
			Where(networkuser.IDIn(users...), networkuser.StatusEQ(networkuser.StatusACTIVE)).
			Order(ent.Asc(networkuser.FieldID))
		uq.Modify(forUpdate)
		nus, err := uq.All(ctx)
		if err != nil {
			return fmt.Errorf("billing: subscribers to suspend: %w", err)
		}
		for _, nu := range nus {
			if _, err := s.suspend(ctx, c, nu, OverdueReason); err != nil {
				return err
			}
			res.Suspended++
		}
		return nil
	})
	return res, err
}

// ProcessOverdueAll runs ProcessOverdue for every ACTIVE tenant, each in its
// own transaction, and returns the results by tenant id. It stops at the
// first error.
func (s *Service) ProcessOverdueAll(ctx context.Context) (map[int]OverdueResult, error) {
	// Listing tenants is not work for one tenant.
	ids, err := s.Client.Tenant.Query().Where(tenant.StatusEQ(tenant.StatusACTIVE)).IDs(tenancy.Bypass(ctx))
	if err != nil {
		return nil, fmt.Errorf("billing: tenants: %w", err)
	}
	out := make(map[int]OverdueResult, len(ids))
	for _, id := range ids {
		r, err := s.ProcessOverdue(viewer.ForTenant(ctx, id))
		if err != nil {
			return out, fmt.Errorf("billing: overdue routine of tenant %d: %w", id, err)
		}
		out[id] = r
	}
	return out, nil
}

// SuspendNetworkUser suspends a subscriber's service for a reason (staff);
// its router is told to disable it.
func (s *Service) SuspendNetworkUser(ctx context.Context, id int, reason string) (*ent.NetworkUser, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, apperr.E(apperr.BadUserInput, "give a reason for the suspension")
	}
	var out *ent.NetworkUser
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		nu, err := lockNetworkUser(ctx, c, id)
		if err != nil {
			return err
		}
		if nu.Status == networkuser.StatusSUSPENDED {
			return conflict("subscriber %s is already suspended (%s)", nu.Username, deref(nu.SuspensionReason))
		}
		if out, err = s.suspend(ctx, c, nu, reason); err != nil {
			return err
		}
		return audit.Decision(ctx, c, "network_user.suspend", "NetworkUser", nu.ID, map[string]any{"status": "SUSPENDED", "reason": reason})
	})
	return out, err
}

// ActivateNetworkUser reactivates a suspended, inactive or expired
// subscriber (staff); its router is told to enable it. Unpaid overdue
// invoices stay as they are: the overdue routine suspends again only when
// another invoice falls due.
func (s *Service) ActivateNetworkUser(ctx context.Context, id int, reason string) (*ent.NetworkUser, error) {
	var out *ent.NetworkUser
	err := s.inTx(ctx, func(ctx context.Context, c *ent.Client) error {
		nu, err := lockNetworkUser(ctx, c, id)
		if err != nil {
			return err
		}
		if nu.Status == networkuser.StatusACTIVE {
			return conflict("subscriber %s is already active", nu.Username)
		}
		if out, err = s.activate(ctx, c, nu); err != nil {
			return err
		}
		return audit.Decision(ctx, c, "network_user.activate", "NetworkUser", nu.ID, map[string]any{"status": "ACTIVE", "from": string(nu.Status), "reason": strings.TrimSpace(reason)})
	})
	return out, err
}

// suspend changes a locked subscriber to SUSPENDED and enqueues the router action.
func (s *Service) suspend(ctx context.Context, c *ent.Client, nu *ent.NetworkUser, reason string) (*ent.NetworkUser, error) {
	now := s.now()
	out, err := c.NetworkUser.UpdateOne(nu).SetStatus(networkuser.StatusSUSPENDED).
		SetSuspensionReason(reason).SetSuspendedAt(now).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("billing: suspend %s: %w", nu.Username, err)
	}
	return out, nil
}

// activate changes a locked subscriber to ACTIVE. The router follows through
// the provisioning hook on subscribers (internal/mikrotik), in this transaction.
func (s *Service) activate(ctx context.Context, c *ent.Client, nu *ent.NetworkUser) (*ent.NetworkUser, error) {
	out, err := c.NetworkUser.UpdateOne(nu).SetStatus(networkuser.StatusACTIVE).
		ClearSuspensionReason().ClearSuspendedAt().Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("billing: activate %s: %w", nu.Username, err)
	}
	return out, nil
}
