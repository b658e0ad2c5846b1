// Package tenancy owns the privacy rules that keep tenants apart. The tenant
// mixin in ent/schema installs them on every tenant-owned entity, so isolation
// is enforced once, in the data layer, and fails closed: no viewer, no data.
package tenancy

import (
	"context"

	"entgo.io/ent"
	"entgo.io/ent/entql"

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
		return privacy.Skip
	})
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
