package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/authtoken"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// SetPortalPassword sets (or, with nil or "", removes) a subscriber's
// customer portal password and revokes every customer token issued to that
// subscriber, in the caller's transaction: whoever held the old password
// loses the portal at once, on every instance (the revocation bumps the
// subscriber's generation, which every cached verification checks).
func (s *Service) SetPortalPassword(ctx context.Context, networkUserID int, password *string) (*ent.NetworkUser, error) {
	c := s.client(ctx)
	upd := c.NetworkUser.UpdateOneID(networkUserID)
	if password == nil || *password == "" {
		upd.ClearPortalPasswordHash()
	} else {
		h, err := s.hashPassword(ctx, tenantOf(ctx), *password)
		if err != nil {
			return nil, err
		}
		upd.SetPortalPasswordHash(h)
	}
	nu, err := upd.Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.revokeCustomerTokens(ctx, c, nu.ID); err != nil {
		return nil, err
	}
	return nu, nil
}

// revokeCustomerTokens revokes every live customer token of a subscriber.
func (s *Service) revokeCustomerTokens(ctx context.Context, c *ent.Client, networkUserID int) error {
	err := c.AuthToken.Update().
		Where(authtoken.KindEQ(authtoken.KindCUSTOMER), authtoken.NetworkUserIDEQ(networkUserID), authtoken.RevokedAtIsNil()).
		SetRevokedAt(s.now()).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("auth: revoke customer tokens: %w", err)
	}
	return nil
}

// changePortalPassword changes the portal password of the customer viewer v
// after checking the current one, and revokes every other customer token of
// the subscriber (the caller's own stays).
func (s *Service) changePortalPassword(ctx context.Context, v *viewer.Viewer, current, next string) error {
	if err := CheckNewPassword(next); err != nil {
		return err
	}
	c := s.client(ctx)
	// The customer's own viewer may read its record but not write it.
	sys := viewer.ForTenant(ctx, v.TenantID)
	nu, err := c.NetworkUser.Get(sys, v.NetworkUserID)
	if err != nil {
		return err
	}
	ok := false
	if nu.PortalPasswordHash != nil {
		if ok, err = VerifyPassword(*nu.PortalPasswordHash, current); err != nil && !errors.Is(err, errMalformedHash) {
			return err
		}
	}
	if !ok {
		return apperr.E(apperr.Unauthenticated, "the current password is wrong")
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	if err := c.NetworkUser.UpdateOne(nu).SetPortalPasswordHash(hash).Exec(sys); err != nil {
		return err
	}
	err = c.AuthToken.Update().
		Where(authtoken.KindEQ(authtoken.KindCUSTOMER), authtoken.NetworkUserIDEQ(nu.ID), authtoken.RevokedAtIsNil(), authtoken.IDNEQ(v.TokenID)).
		SetRevokedAt(s.now()).
		Exec(sys)
	if err != nil {
		return fmt.Errorf("auth: revoke customer tokens: %w", err)
	}
	return nil
}
