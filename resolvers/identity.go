package resolvers

import (
	"context"
	"slices"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/role"
	"github.com/ispgraph/ispgraph/graph/model"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

func (r *Resolver) customerLogin(ctx context.Context, in model.CustomerLoginInput) (*model.AuthPayload, error) {
	info := reqinfo.From(ctx)
	token, expires, err := r.Auth.CustomerLogin(ctx, auth.CustomerLoginInput{
		Tenant:   deref(in.Tenant),
		Username: in.Username,
		Password: in.Password,
		Host:     info.Host,
		Address:  info.Address,
	})
	if err != nil {
		return nil, err
	}
	return &model.AuthPayload{Token: token, ExpiresAt: expires}, nil
}

func (r *Resolver) permissionCatalogue() []*model.Permission {
	all := authz.All()
	out := make([]*model.Permission, len(all))
	for i, p := range all {
		out[i] = &model.Permission{Name: p, Description: authz.Description(p)}
	}
	return out
}

// createRole creates a role from catalogue permissions the editor holds.
func (r *Resolver) createRole(ctx context.Context, in ent.CreateRoleInput) (*ent.Role, error) {
	perms, err := authz.Normalize(in.Permissions)
	if err != nil {
		return nil, err
	}
	if err := authz.CheckRoleEdit(viewer.FromContext(ctx), false, nil, perms); err != nil {
		return nil, err
	}
	in.Permissions = perms
	return r.client(ctx).Role.Create().SetInput(in).Save(ctx)
}

// updateRole edits a role. The role row is locked while the change is
// checked against what it holds now (authz.CheckRoleEdit), so two edits
// cannot each pass against a state the other replaces.
func (r *Resolver) updateRole(ctx context.Context, id int, in ent.UpdateRoleInput) (*ent.Role, error) {
	c := r.client(ctx)
	cur, err := c.Role.Query().Where(role.ID(id)).ForUpdate().Only(ctx)
	if err != nil {
		return nil, err
	}
	admin := authz.IsAdminRole(cur.Name, cur.Builtin)
	if admin && in.Name != nil && *in.Name != cur.Name {
		return nil, apperr.E(apperr.Forbidden, "the admin role cannot be renamed: it is the role that always holds every permission")
	}
	if in.Permissions != nil || in.AppendPermissions != nil {
		before := slices.Sorted(slices.Values(authz.RolePermissions(cur.Name, cur.Builtin, cur.Permissions)))
		want := in.Permissions
		if want == nil {
			want = before
		}
		after, err := authz.Normalize(append(append([]string{}, want...), in.AppendPermissions...))
		if err != nil {
			return nil, err
		}
		if !admin || !slices.Equal(before, after) {
			if err := authz.CheckRoleEdit(viewer.FromContext(ctx), admin, before, after); err != nil {
				return nil, err
			}
		}
		in.Permissions, in.AppendPermissions = after, nil
	}
	return c.Role.UpdateOneID(id).SetInput(in).Save(ctx)
}

// seal encrypts a write-only secret from an input in place. Nil stays nil
// (not given); "" stays "" (cleared).
func (r *Resolver) seal(p **string) error {
	if *p == nil || **p == "" {
		return nil
	}
	if r.Secrets == nil {
		return apperr.E(apperr.Internal, "secrets cannot be stored: the server has no secret key")
	}
	s, err := r.Secrets.Seal(**p)
	if err != nil {
		return err
	}
	*p = &s
	return nil
}

func (r *Resolver) setGatewayConfiguration(ctx context.Context, id int, conf map[string]any) (*ent.PaymentGateway, error) {
	if r.Gateways == nil {
		return nil, apperr.E(apperr.Internal, "gateway configuration cannot be stored: the server has no secret key")
	}
	sealed, summary, err := r.Gateways.Seal(conf)
	if err != nil {
		return nil, err
	}
	return r.client(ctx).PaymentGateway.UpdateOneID(id).
		SetConfigEncrypted(sealed).
		SetConfigSummary(summary).
		Save(ctx)
}
