// Package viewer owns the identity of the caller of a request or job: who it is,
// which tenant it acts in and what it may do. The data layer reads it from the
// context to enforce tenant isolation; nothing else decides the tenant.
package viewer

import (
	"context"
	"slices"
)

// Kind says what sort of caller a viewer is.
type Kind int

// The kinds of caller.
const (
	Staff    Kind = iota + 1 // a tenant's staff user (login)
	Customer                 // a subscriber on the customer portal (customerLogin)
	Partner                  // a partner integration using an API key
	Operator                 // a platform operator acting inside a tenant, audited
	System                   // a worker or command acting for one tenant
)

// String names the kind for logs and audit records.
func (k Kind) String() string {
	switch k {
	case Staff:
		return "staff"
	case Customer:
		return "customer"
	case Partner:
		return "partner"
	case Operator:
		return "operator"
	case System:
		return "system"
	}
	return "unknown"
}

// Viewer is the caller of a request or job. TenantID is never zero for a viewer
// that may touch tenant data.
type Viewer struct {
	Kind          Kind
	TenantID      int
	UserID        int // staff or operator user
	NetworkUserID int // customer
	APIKeyID      int // partner
	TokenID       int // the bearer token used, for logout
	Role          string
	Permissions   []string
	// Label names the caller for the audit log: an e-mail, a username or an
	// API key's prefix. Never a secret.
	Label string
	// RateLimit is the caller's API calls per minute (0: the server default).
	RateLimit int
	// Currency is the ISO 4217 code of the tenant's currency, read with the
	// tenant when the credential is verified: the Money scalar formats and
	// parses amounts with its number of fraction digits. Empty: unknown
	// (two digits).
	Currency string
}

// Can reports whether the viewer holds perm. System viewers hold every permission.
func (v *Viewer) Can(perm string) bool {
	if v == nil {
		return false
	}
	if v.Kind == System {
		return true
	}
	return slices.Contains(v.Permissions, perm)
}

// HasTenant reports whether the viewer acts inside a tenant.
func (v *Viewer) HasTenant() bool { return v != nil && v.TenantID > 0 }

type ctxKey struct{}

// NewContext returns ctx carrying v.
func NewContext(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, ctxKey{}, v)
}

// FromContext returns the viewer in ctx, or nil.
func FromContext(ctx context.Context) *Viewer {
	v, _ := ctx.Value(ctxKey{}).(*Viewer)
	return v
}

// ForTenant returns a context for system work (jobs, commands) inside one tenant.
// It is the explicit way background code acts for a tenant; tenant isolation
// still applies to everything it reads and writes.
func ForTenant(ctx context.Context, tenantID int) context.Context {
	return NewContext(ctx, &Viewer{Kind: System, TenantID: tenantID})
}
