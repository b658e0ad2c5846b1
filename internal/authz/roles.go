package authz

import (
	"slices"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// IsAdminRole reports whether a role is the tenant's built-in admin role,
// which always holds every permission of the catalogue.
func IsAdminRole(name string, builtin bool) bool {
	return builtin && name == RoleAdmin
}

// RolePermissions returns what a role grants: every permission for the
// admin role (also those added to the catalogue after it was stored), and
// otherwise the stored permissions that are in the catalogue, so a stale
// role cannot grant anything unknown.
func RolePermissions(name string, builtin bool, stored []string) []string {
	if IsAdminRole(name, builtin) {
		return All()
	}
	out := make([]string, 0, len(stored))
	for _, p := range stored {
		if Valid(p) {
			out = append(out, p)
		}
	}
	return out
}

// CheckRoleEdit checks that editor may change a role's permissions from
// before to after (both catalogue names, normalised): it may grant or
// remove only permissions it holds itself, so staff:manage is no way to
// escalate one's rights or to strip a role of rights one lacks. The admin
// role's permissions cannot be changed at all.
func CheckRoleEdit(editor *viewer.Viewer, adminRole bool, before, after []string) error {
	if adminRole {
		return apperr.E(apperr.Forbidden, "the admin role always holds every permission: its permissions cannot be changed (create another role instead)")
	}
	for _, p := range after {
		if !slices.Contains(before, p) && !editor.Can(p) {
			return apperr.E(apperr.Forbidden, "you cannot grant the %q permission: you do not hold it", p)
		}
	}
	for _, p := range before {
		if !slices.Contains(after, p) && !editor.Can(p) {
			return apperr.E(apperr.Forbidden, "you cannot remove the %q permission: you do not hold it", p)
		}
	}
	return nil
}
