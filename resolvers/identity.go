package resolvers

import (
	"context"
	"reflect"

	"github.com/ispgraph/ispgraph/ent"
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

// checkRole validates a role's permissions and that the editor holds every one
// it grants: staff:manage must not be a way to escalate one's own rights.
func checkRole(ctx context.Context, perms []string) ([]string, error) {
	out, err := authz.Normalize(perms)
	if err != nil {
		return nil, err
	}
	if err := authz.CheckGrant(viewer.FromContext(ctx), out); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Resolver) createRole(ctx context.Context, in ent.CreateRoleInput) (*ent.Role, error) {
	perms, err := checkRole(ctx, in.Permissions)
	if err != nil {
		return nil, err
	}
	in.Permissions = perms
	return r.client(ctx).Role.Create().SetInput(in).Save(ctx)
}

func (r *Resolver) updateRole(ctx context.Context, id int, in ent.UpdateRoleInput) (*ent.Role, error) {
	if in.Permissions != nil || in.AppendPermissions != nil {
		perms, err := checkRole(ctx, append(append([]string{}, in.Permissions...), in.AppendPermissions...))
		if err != nil {
			return nil, err
		}
		if in.Permissions != nil {
			in.Permissions, in.AppendPermissions = perms, nil
		}
	}
	return r.client(ctx).Role.UpdateOneID(id).SetInput(in).Save(ctx)
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

func (r *Resolver) setPortalPassword(ctx context.Context, id int, password *string) (*ent.NetworkUser, error) {
	upd := r.client(ctx).NetworkUser.UpdateOneID(id)
	if password == nil || *password == "" {
		upd.ClearPortalPasswordHash()
	} else {
		h, err := auth.HashPassword(*password)
		if err != nil {
			return nil, err
		}
		upd.SetPortalPasswordHash(h)
	}
	return upd.Save(ctx)
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

// checkNode refuses a node the caller may not read: node(id) reaches every
// entity type, so it checks the read permission of the type it found. The
// tenant (and, for customers, ownership) was already enforced by ent.
func checkNode(ctx context.Context, n ent.Noder) error {
	if n == nil {
		return nil
	}
	t := reflect.TypeOf(n)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return authz.CheckRead(viewer.FromContext(ctx), t.Name())
}
