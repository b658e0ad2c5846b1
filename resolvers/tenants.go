package resolvers

import (
	"context"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/graph/model"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/reqinfo"
	"github.com/ispgraph/ispgraph/internal/tax"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/tenants"
)

func (r *Resolver) createTenant(ctx context.Context, in model.CreateTenantInput) (*model.CreateTenantPayload, error) {
	t, admin, err := r.Tenants.Create(ctx, tenants.CreateInput{
		Name: in.Name, Slug: in.Slug, Domain: in.Domain, Subdomain: in.Subdomain,
		Timezone: deref(in.Timezone), Currency: deref(in.Currency),
		AdminName: in.AdminName, AdminEmail: in.AdminEmail, AdminPassword: in.AdminPassword,
	})
	if err != nil {
		return nil, err
	}
	return &model.CreateTenantPayload{Tenant: t, Admin: admin}, nil
}

func (r *Resolver) updateTenant(ctx context.Context, id int, in model.UpdateTenantInput) (*ent.Tenant, error) {
	return r.Tenants.Update(ctx, id, tenants.Update{
		Name: in.Name, Domain: in.Domain, Subdomain: in.Subdomain,
		ClearSubdomain: in.ClearSubdomain != nil && *in.ClearSubdomain, Status: in.Status,
	})
}

// tenants lists every tenant for a platform operator: no tenant's policy
// covers the list, hence the explicit bypass behind @platform.
func (r *Resolver) tenants(ctx context.Context, after *ent.Cursor, first *int, before *ent.Cursor, last *int) (*ent.TenantConnection, error) {
	if err := r.checkPage(first, last); err != nil {
		return nil, err
	}
	return r.client(ctx).Tenant.Query().Paginate(tenancy.Bypass(ctx), after, r.defaultFirst(first, last), before, last,
		ent.WithTenantOrder(&ent.TenantOrder{Field: ent.TenantOrderFieldCreatedAt, Direction: "DESC"}))
}

func (r *Resolver) acceptInvite(ctx context.Context, in model.AcceptInviteInput) (*model.AuthPayload, error) {
	token, exp, err := r.Auth.AcceptInvite(ctx, in.Token, in.Password, reqinfo.From(ctx).Address)
	if err != nil {
		return nil, err
	}
	return &model.AuthPayload{Token: token, ExpiresAt: exp}, nil
}

func (r *Resolver) updateTenantSettings(ctx context.Context, in model.TenantSettingsInput) (*ent.Tenant, error) {
	s := tenants.Settings{
		Timezone: in.Timezone, Currency: in.Currency, InvoicePrefix: in.InvoicePrefix, GraceDays: in.GraceDays,
		ClearSMS: in.ClearSmsProvider != nil && *in.ClearSmsProvider, ClearMail: in.ClearMailSender != nil && *in.ClearMailSender,
		PhoneCountryCode: in.PhoneCountryCode,
	}
	if in.SuspensionMode != nil {
		m := in.SuspensionMode.String()
		s.SuspensionMode = &m
	}
	if in.Taxes != nil {
		s.TaxesSet, s.Taxes = true, make([]tax.Tax, 0, len(in.Taxes))
		for _, t := range in.Taxes {
			s.Taxes = append(s.Taxes, tax.Tax{Name: t.Name, RateBP: t.RateBp, Inclusive: t.Inclusive})
		}
	}
	if p := in.SmsProvider; p != nil {
		s.SMS = &notify.SMSProvider{URL: p.URL, Token: p.Token, Sender: p.Sender}
	}
	if m := in.MailSender; m != nil {
		s.Mail = &notify.MailSender{Name: m.Name, Address: m.Address}
	}
	return r.Tenants.UpdateSettings(ctx, s)
}

func currencyMinorUnit(t *ent.Tenant) int {
	n, _ := money.MinorUnit(t.Currency)
	return n
}

func tenantTaxes(t *ent.Tenant) []*model.Tax {
	out := make([]*model.Tax, 0, len(t.Taxes))
	for _, x := range tax.Effective(t.Taxes, t.TaxRateBp) {
		out = append(out, &model.Tax{Name: x.Name, RateBp: x.RateBP, Inclusive: x.Inclusive})
	}
	return out
}

func smsProvider(t *ent.Tenant) *model.SMSProviderSettings {
	p, err := notify.SMSProviderFromSettings(t.Settings)
	if err != nil {
		return nil
	}
	return &model.SMSProviderSettings{URL: p.URL, Sender: p.Sender, TokenSet: p.Token != ""}
}

func mailSender(t *ent.Tenant) *model.MailSenderSettings {
	s, ok := notify.MailSenderFromSettings(t.Settings)
	if !ok {
		return nil
	}
	return &model.MailSenderSettings{Name: s.Name, Address: s.Address}
}

func staffUpdate(in model.UpdateStaffUserInput) auth.StaffUserUpdate {
	return auth.StaffUserUpdate{Name: in.Name, RoleID: in.RoleID, Active: in.Active}
}
