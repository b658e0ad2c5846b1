package auth

import (
	"context"
	"fmt"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/authtoken"
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
