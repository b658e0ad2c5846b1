// Package tenancy owns the privacy rules that keep tenants apart. The tenant
// mixin in ent/schema installs them on every tenant-owned entity, so isolation
// is enforced once, in the data layer, and fails closed: no viewer, no data.
package tenancy

import (
	"context"

	"entgo.io/ent"
	"entgo.io/ent/entql"

	entc "github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/privacy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// tenantFilter is implemented by the generated filters of tenant-owned entities.
type tenantFilter interface {
	WhereTenantID(entql.IntP)
}

// idFilter is implemented by every generated filter.
type idFilter interface {
	WhereID(entql.IntP)
}

// FilterByTenant restricts every query and update/delete of a tenant-owned
// entity to the viewer's tenant and denies the operation when there is none.
func FilterByTenant() privacy.QueryMutationRule {
	return privacy.FilterFunc(func(ctx context.Context, f privacy.Filter) error {
		v := viewer.FromContext(ctx)
		if !v.HasTenant() {
			return privacy.Denyf("tenancy: no tenant in context")
		}
		tf, ok := f.(tenantFilter)
		if !ok {
			return privacy.Denyf("tenancy: %T is not tenant-scoped", f)
		}
		tf.WhereTenantID(entql.IntEQ(v.TenantID))
		if v.Kind == viewer.Customer {
			return filterCustomer(v, f)
		}
		return privacy.Skip
	})
}

// networkUserFilter is implemented by the filters of entities that belong to
// one subscriber (invoices, payments, sessions, tokens).
type networkUserFilter interface {
	WhereNetworkUserID(entql.IntP)
}

// filterCustomer narrows what a portal customer reaches, inside its tenant, to
// its own subscriber record and what belongs to it, plus the tenant's packages
// (to compare plans). Every other entity is denied, so a new entity is closed
// to customers until it is added here.
func filterCustomer(v *viewer.Viewer, f privacy.Filter) error {
	if v.NetworkUserID <= 0 {
		return privacy.Denyf("tenancy: customer viewer without a subscriber")
	}
	switch f := f.(type) {
	case *entc.NetworkUserFilter:
		f.WhereID(entql.IntEQ(v.NetworkUserID))
	case *entc.InvoiceFilter, *entc.PaymentFilter, *entc.NetworkSessionFilter, *entc.AuthTokenFilter:
		f.(networkUserFilter).WhereNetworkUserID(entql.IntEQ(v.NetworkUserID))
	case *entc.ServicePackageFilter:
		// the tenant's packages: not personal data
	default:
		return privacy.Denyf("tenancy: customers cannot reach %T", f)
	}
	return privacy.Skip
}

// FilterOwnTenant restricts queries on the tenants table to the viewer's own tenant.
func FilterOwnTenant() privacy.QueryMutationRule {
	return privacy.FilterFunc(func(ctx context.Context, f privacy.Filter) error {
		v := viewer.FromContext(ctx)
		if !v.HasTenant() {
			return privacy.Denyf("tenancy: no tenant in context")
		}
		idf, ok := f.(idFilter)
		if !ok {
			return privacy.Denyf("tenancy: %T has no id", f)
		}
		idf.WhereID(entql.IntEQ(v.TenantID))
		return privacy.Skip
	})
}

// DenyMutation refuses a mutation outright; system work bypasses it explicitly
// with Bypass.
func DenyMutation(reason string) privacy.MutationRule {
	return privacy.MutationRuleFunc(func(context.Context, ent.Mutation) error {
		return privacy.Denyf("tenancy: %s", reason)
	})
}

// Bypass returns a context that skips every privacy rule. It exists for work that
// is not done for any one tenant (migrations, seeding, resolving a login's tenant)
// and is deliberately easy to grep for.
func Bypass(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}
