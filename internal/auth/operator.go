package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// OperatorKeyPrefix starts every platform operator's key.
const OperatorKeyPrefix = "isop_"

// OperatorTenantHeader is the request header a platform operator names the
// tenant to act in with. Nothing else lets an operator into a tenant.
const OperatorTenantHeader = "X-Ispgraph-Tenant"

// OperatorKey is one platform operator's credential: a name for the audit log
// and the SHA-256 of the key (the key itself is never configured in clear).
type OperatorKey struct {
	Name string
	Hash []byte
}

// ParseOperatorKeys reads ISPGRAPH_OPERATOR_KEYS: name:sha256hex, comma-separated.
func ParseOperatorKeys(s string) ([]OperatorKey, error) {
	var out []OperatorKey
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, h, ok := strings.Cut(item, ":")
		b, err := hex.DecodeString(h)
		if !ok || name == "" || err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("ISPGRAPH_OPERATOR_KEYS: %q is not name:<sha256 hex of the key>", name)
		}
		out = append(out, OperatorKey{Name: name, Hash: b})
	}
	return out, nil
}

// ErrOperatorNeedsTenant is the refusal of a tenant field to a platform
// operator who named no tenant.
func ErrOperatorNeedsTenant() error {
	return apperr.E(apperr.BadUserInput,
		"platform operators act inside a tenant only when they name it: send the %s header with the tenant's slug", OperatorTenantHeader)
}

// authenticateOperator turns an operator key and the tenant header into an
// Operator viewer holding every permission in that tenant; without the header,
// into a platform-scope Operator viewer with no tenant. The tenant's status
// does not stop an operator: helping suspended tenants is part of the job.
func (s *Service) authenticateOperator(ctx context.Context, key, tenantSlug string) (*viewer.Viewer, error) {
	op := s.operator(key)
	if op == nil {
		return nil, apperr.E(apperr.Unauthenticated, "invalid operator key")
	}
	slug := strings.TrimSpace(tenantSlug)
	if slug == "" {
		// Platform scope: tenant management (@platform fields) only; every
		// tenant field refuses it (ErrOperatorNeedsTenant).
		return &viewer.Viewer{Kind: viewer.Operator, Label: "operator " + op.Name}, nil
	}
	// An operator has no tenant until this lookup gives it one.
	t, err := s.Client.Tenant.Query().Where(tenant.SlugEQ(slug)).Only(tenancy.Bypass(ctx))
	switch {
	case ent.IsNotFound(err):
		return nil, apperr.E(apperr.NotFound, "tenant %q not found", slug)
	case err != nil:
		return nil, fmt.Errorf("auth: operator tenant: %w", err)
	}
	return &viewer.Viewer{Kind: viewer.Operator, TenantID: t.ID, Permissions: authz.All(),
		Label: "operator " + op.Name, Currency: t.Currency}, nil
}

// operator returns the operator whose key this is, or nil.
func (s *Service) operator(key string) *OperatorKey {
	h := sha256.Sum256([]byte(key))
	var op *OperatorKey
	for i := range s.Operators {
		if subtle.ConstantTimeCompare(s.Operators[i].Hash, h[:]) == 1 {
			op = &s.Operators[i]
		}
	}
	return op
}

// OperatorName returns the name of the platform operator whose key this is;
// ok is false for any other string. For surfaces that belong to the whole
// deployment rather than a tenant (the jobs web UI).
func (s *Service) OperatorName(key string) (name string, ok bool) {
	if op := s.operator(strings.TrimSpace(key)); op != nil {
		return op.Name, true
	}
	return "", false
}
