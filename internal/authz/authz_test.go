package authz_test

import (
	"slices"
	"testing"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

func TestCatalogue(t *testing.T) {
	want := []string{
		"network_users:read", "network_users:write", "billing:read", "billing:write",
		"payments:record", "routers:manage", "gateways:manage", "reports:run", "sms:send",
		"staff:manage", "cache:warm", "packages:read", "packages:write", "hotspot:read",
		"hotspot:write", "routers:read", "audit:read", "api_keys:manage", "webhooks:manage", "jobs:read", "jobs:manage", "settings:manage",
	}
	all := authz.All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d permissions, want %d: %v", len(all), len(want), all)
	}
	for _, p := range want {
		if !slices.Contains(all, p) || !authz.Valid(p) || authz.Description(p) == "" {
			t.Errorf("%q missing from the catalogue or without a description", p)
		}
	}
	for _, p := range []string{"", "billing", "billing:delete", "BILLING:READ", authz.SelfBillingRead} {
		if authz.Valid(p) {
			t.Errorf("Valid(%q) = true", p)
		}
	}
	all[0] = "mutated"
	if authz.All()[0] == "mutated" {
		t.Error("All() returns shared storage")
	}
}

func TestCustomerPermissionsNeverStaff(t *testing.T) {
	for _, p := range authz.CustomerPermissions() {
		if authz.Valid(p) {
			t.Errorf("customer permission %q is a staff permission", p)
		}
	}
	v := &viewer.Viewer{Kind: viewer.Customer, TenantID: 1, Permissions: authz.CustomerPermissions()}
	for _, p := range authz.All() {
		if v.Can(p) {
			t.Errorf("a customer viewer holds staff permission %q", p)
		}
	}
}

func TestDefaultRoles(t *testing.T) {
	roles := authz.DefaultRoles()
	names := map[string]authz.RoleSpec{}
	for _, r := range roles {
		if r.Description == "" {
			t.Errorf("role %q has no description", r.Name)
		}
		for _, p := range r.Permissions {
			if !authz.Valid(p) {
				t.Errorf("role %q holds unknown permission %q", r.Name, p)
			}
		}
		if _, err := authz.Normalize(r.Permissions); err != nil {
			t.Errorf("role %q: %v", r.Name, err)
		}
		names[r.Name] = r
	}
	for _, n := range []string{"admin", "manager", "operator", "accountant", "staff"} {
		if _, ok := names[n]; !ok {
			t.Errorf("default role %q missing", n)
		}
	}
	if got := names["admin"].Permissions; !slices.Equal(got, authz.All()) {
		t.Errorf("admin holds %v, want every permission", got)
	}
	// Only admins hand out access.
	for _, r := range roles {
		if r.Name == "admin" {
			continue
		}
		for _, p := range []string{authz.StaffManage, authz.APIKeysManage, authz.GatewaysManage} {
			if slices.Contains(r.Permissions, p) {
				t.Errorf("role %q holds %q", r.Name, p)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	got, err := authz.Normalize([]string{authz.BillingWrite, authz.BillingRead, authz.BillingWrite})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{authz.BillingRead, authz.BillingWrite}; !slices.Equal(got, want) {
		t.Errorf("Normalize = %v, want %v", got, want)
	}
	_, err = authz.Normalize([]string{authz.BillingRead, "billing:delete"})
	if apperr.CodeOf(err) != apperr.BadUserInput {
		t.Errorf("unknown permission: err = %v (code %s), want BAD_USER_INPUT", err, apperr.CodeOf(err))
	}
}

func TestCheck(t *testing.T) {
	if err := authz.Check(nil, authz.BillingRead); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Errorf("no viewer: %v", err)
	}
	v := &viewer.Viewer{Kind: viewer.Staff, TenantID: 1, Permissions: []string{authz.BillingRead}}
	if err := authz.Check(v, authz.BillingRead); err != nil {
		t.Errorf("held permission: %v", err)
	}
	if err := authz.Check(v, authz.BillingWrite); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("missing permission: %v", err)
	}
}
