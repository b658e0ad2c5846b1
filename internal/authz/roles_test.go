package authz_test

import (
	"slices"
	"testing"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

func TestCheckRoleEdit(t *testing.T) {
	// An editor with staff:manage and billing:read only.
	ed := &viewer.Viewer{Kind: viewer.Staff, TenantID: 1, Permissions: []string{authz.StaffManage, authz.BillingRead}}
	for _, c := range []struct {
		name          string
		admin         bool
		before, after []string
		want          apperr.Code
	}{
		{"grant held", false, nil, []string{authz.BillingRead}, ""},
		{"grant not held", false, nil, []string{authz.RoutersManage}, apperr.Forbidden},
		{"remove held", false, []string{authz.BillingRead, authz.RoutersManage}, []string{authz.RoutersManage}, ""},
		{"remove not held", false, []string{authz.BillingRead, authz.RoutersManage}, []string{authz.BillingRead}, apperr.Forbidden},
		{"keep not held", false, []string{authz.RoutersManage}, []string{authz.RoutersManage, authz.BillingRead}, ""},
		{"admin role", true, authz.All(), []string{authz.StaffManage}, apperr.Forbidden},
	} {
		err := authz.CheckRoleEdit(ed, c.admin, c.before, c.after)
		if got := codeOf(err); got != c.want {
			t.Errorf("%s: code %q (%v), want %q", c.name, got, err, c.want)
		}
	}
	// Even a holder of every permission cannot change the admin role.
	all := &viewer.Viewer{Kind: viewer.Staff, TenantID: 1, Permissions: authz.All()}
	if err := authz.CheckRoleEdit(all, true, authz.All(), authz.All()[1:]); codeOf(err) != apperr.Forbidden {
		t.Errorf("admin role edit by a full editor: %v", err)
	}
}

func TestRolePermissions(t *testing.T) {
	// The admin role holds every permission whatever is stored.
	if got := authz.RolePermissions(authz.RoleAdmin, true, []string{authz.BillingRead}); !slices.Equal(got, authz.All()) {
		t.Errorf("admin role grants %v, want every permission", got)
	}
	// A tenant role merely named admin is not the built-in one.
	if got := authz.RolePermissions(authz.RoleAdmin, false, []string{authz.BillingRead}); !slices.Equal(got, []string{authz.BillingRead}) {
		t.Errorf("non-builtin role named admin grants %v", got)
	}
	// Unknown names are dropped.
	if got := authz.RolePermissions("clerk", false, []string{"root:all", authz.BillingRead}); !slices.Equal(got, []string{authz.BillingRead}) {
		t.Errorf("stale role grants %v", got)
	}
}

func TestReadRules(t *testing.T) {
	billing := &viewer.Viewer{Kind: viewer.Partner, TenantID: 1, Permissions: []string{authz.BillingRead}}
	customer := &viewer.Viewer{Kind: viewer.Customer, TenantID: 1, Permissions: authz.CustomerPermissions()}
	for _, c := range []struct {
		typ  string
		v    *viewer.Viewer
		want apperr.Code
	}{
		{"Invoice", billing, ""},
		{"InvoiceConnection", billing, ""},
		{"PaymentEdge", billing, ""},
		{"Router", billing, apperr.Forbidden},
		{"RouterConnection", billing, apperr.Forbidden},
		{"User", billing, apperr.Forbidden},
		{"Role", billing, apperr.Forbidden},
		{"Invoice", customer, ""},
		{"Router", customer, apperr.Forbidden},
		{"Tenant", customer, ""},
		{"Invoice", nil, apperr.Unauthenticated},
		{"Viewer", nil, apperr.Unauthenticated},
		{"AuthPayload", nil, ""},
	} {
		r, ok := authz.ReadRuleOf(c.typ)
		if !ok {
			t.Errorf("%s: no rule", c.typ)
			continue
		}
		if got := codeOf(r.CheckRead(c.v, c.typ)); got != c.want {
			t.Errorf("%s for %v: %q, want %q", c.typ, c.v, got, c.want)
		}
	}
	for _, typ := range []string{"Brandnew", "BrandnewConnection", "Connection", "Edge"} {
		if _, ok := authz.ReadRuleOf(typ); ok {
			t.Errorf("%s has a rule", typ)
		}
	}
}

// codeOf is the error's code, "" for nil.
func codeOf(err error) apperr.Code {
	if err == nil {
		return ""
	}
	return apperr.CodeOf(err)
}
