// Package tenants owns a tenant's lifecycle: creating one with its default
// roles and first admin, changing and suspending it (platform operators, from
// the API or the command line), and the settings its own admins edit (time
// zone, currency, taxes, SMS gateway, e-mail sender). Who may call what is
// decided above it (the @platform and @perm directives); tenants are changed
// here under tenancy.Bypass because no tenant's policy covers another tenant.
package tenants

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/tenant"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/money"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/tax"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Service manages tenants. Audit may be nil (nothing recorded).
type Service struct {
	Client *ent.Client
	Auth   *auth.Service
	Audit  *audit.Recorder
}

// CreateInput is a new tenant and its first admin.
type CreateInput struct {
	Name, Slug, Domain string
	Subdomain          *string
	Timezone, Currency string
	AdminName          string
	AdminEmail         string
	AdminPassword      string
}

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// client returns the mutation's transaction when ctx has one.
func (s *Service) client(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return s.Client
}

// inTx runs fn in the transaction in ctx, or in a new one (the command line).
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if ent.FromContext(ctx) != nil {
		return fn(ctx)
	}
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("tenants: begin: %w", err)
	}
	if err := fn(ent.NewTxContext(ctx, tx)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("tenants: commit: %w", err)
	}
	return nil
}

// CheckTimezone refuses a name that is not an IANA time zone.
func CheckTimezone(tz string) error {
	if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
		return apperr.E(apperr.BadUserInput, "%q is not an IANA time zone (such as \"Asia/Dhaka\" or \"UTC\")", tz)
	}
	return nil
}

// CheckCurrency normalizes an ISO 4217 code or refuses it. Amounts are kept
// in the currency's minor unit, whatever its number of digits (0 for JPY, 3
// for KWD).
func CheckCurrency(code string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	if _, ok := money.MinorUnit(c); !ok {
		return "", apperr.E(apperr.BadUserInput, "%q is not an ISO 4217 currency code (such as \"USD\" or \"BDT\")", code)
	}
	return c, nil
}

// checkCurrencyChange refuses to change the currency of a tenant that has
// invoices or payments: they were issued and received in the old currency,
// and amounts carry no currency of their own. While it has none, a change
// that moves the number of fraction digits is refused too if packages exist,
// since their stored prices (minor units) would change value; the admin
// deletes or re-prices them in the new currency after the change otherwise.
func checkCurrencyChange(ctx context.Context, c *ent.Client, from, to string) error {
	if from == to {
		return nil
	}
	n, err := c.Invoice.Query().Limit(1).Count(ctx)
	if err != nil {
		return fmt.Errorf("tenants: count invoices: %w", err)
	}
	if n == 0 {
		if n, err = c.Payment.Query().Limit(1).Count(ctx); err != nil {
			return fmt.Errorf("tenants: count payments: %w", err)
		}
	}
	if n > 0 {
		return apperr.E(apperr.Conflict, "the currency cannot change from %s to %s: the tenant has invoices or payments in %s", from, to, from)
	}
	if money.DigitsOf(from) == money.DigitsOf(to) {
		return nil
	}
	if n, err = c.ServicePackage.Query().Limit(1).Count(ctx); err != nil {
		return fmt.Errorf("tenants: count packages: %w", err)
	}
	if n > 0 {
		return apperr.E(apperr.Conflict,
			"the currency cannot change from %s (%d decimal places) to %s (%d): package prices are stored in minor units and would change value; delete the packages first",
			from, money.DigitsOf(from), to, money.DigitsOf(to))
	}
	return nil
}

// Create creates a tenant with the default roles and its first admin (role
// admin), in one transaction.
func (s *Service) Create(ctx context.Context, in CreateInput) (*ent.Tenant, *ent.User, error) {
	slug := strings.ToLower(strings.TrimSpace(in.Slug))
	if !slugRE.MatchString(slug) {
		return nil, nil, apperr.E(apperr.BadUserInput, "slug %q: use lower case letters, digits and dashes (at most 63)", in.Slug)
	}
	name, domain := strings.TrimSpace(in.Name), strings.ToLower(strings.TrimSpace(in.Domain))
	if name == "" || domain == "" {
		return nil, nil, apperr.E(apperr.BadUserInput, "name and domain are required")
	}
	tz := in.Timezone
	if tz == "" {
		tz = "UTC"
	}
	if err := CheckTimezone(tz); err != nil {
		return nil, nil, err
	}
	cur := in.Currency
	if cur == "" {
		cur = "USD"
	}
	cur, err := CheckCurrency(cur)
	if err != nil {
		return nil, nil, err
	}
	email, err := auth.CheckEmail(in.AdminEmail)
	if err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(in.AdminName) == "" {
		return nil, nil, apperr.E(apperr.BadUserInput, "the admin's name is required")
	}
	if err := auth.CheckNewPassword(in.AdminPassword); err != nil {
		return nil, nil, err
	}
	hash, err := auth.HashPassword(in.AdminPassword)
	if err != nil {
		return nil, nil, err
	}
	var (
		t     *ent.Tenant
		admin *ent.User
	)
	err = s.inTx(ctx, func(ctx context.Context) error {
		c := s.client(ctx)
		var sub *string
		if in.Subdomain != nil && strings.TrimSpace(*in.Subdomain) != "" {
			v := strings.ToLower(strings.TrimSpace(*in.Subdomain))
			sub = &v
		}
		// A new tenant belongs to no tenant yet.
		t, err = c.Tenant.Create().
			SetName(name).SetSlug(slug).SetDomain(domain).SetNillableSubdomain(sub).
			SetTimezone(tz).SetCurrency(cur).
			Save(tenancy.Bypass(ctx))
		if ent.IsConstraintError(err) {
			return apperr.E(apperr.Conflict, "a tenant with slug %q, domain %q or that subdomain exists already", slug, domain)
		}
		if err != nil {
			return err
		}
		roles, err := s.Auth.EnsureDefaultRoles(ctx, t.ID)
		if err != nil {
			return err
		}
		admin, err = c.User.Create().
			SetTenantID(t.ID).SetName(strings.TrimSpace(in.AdminName)).SetEmail(email).
			SetPasswordHash(hash).SetRoleID(roles[authz.RoleAdmin].ID).
			Save(viewer.ForTenant(ctx, t.ID))
		if err != nil {
			return err
		}
		// The caller (an operator outside any tenant) cannot load the edge.
		admin.Edges.Role = roles[authz.RoleAdmin]
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	s.record(ctx, t.ID, "tenant.created", []string{"name", "slug", "domain", "timezone", "currency", "admin"})
	return t, admin, nil
}

// Update is what an operator may change of a tenant; nil leaves a field alone.
type Update struct {
	Name, Domain, Subdomain *string
	ClearSubdomain          bool
	Status                  *tenant.Status
}

// Update changes a tenant. Setting a status other than ACTIVE refuses the
// tenant's callers from their next request on.
func (s *Service) Update(ctx context.Context, id int, in Update) (*ent.Tenant, error) {
	upd := s.client(ctx).Tenant.UpdateOneID(id)
	var fields []string
	if in.Name != nil {
		if strings.TrimSpace(*in.Name) == "" {
			return nil, apperr.E(apperr.BadUserInput, "name must not be empty")
		}
		upd.SetName(strings.TrimSpace(*in.Name))
		fields = append(fields, "name")
	}
	if in.Domain != nil {
		if strings.TrimSpace(*in.Domain) == "" {
			return nil, apperr.E(apperr.BadUserInput, "domain must not be empty")
		}
		upd.SetDomain(strings.ToLower(strings.TrimSpace(*in.Domain)))
		fields = append(fields, "domain")
	}
	switch {
	case in.ClearSubdomain:
		upd.ClearSubdomain()
		fields = append(fields, "subdomain")
	case in.Subdomain != nil:
		upd.SetSubdomain(strings.ToLower(strings.TrimSpace(*in.Subdomain)))
		fields = append(fields, "subdomain")
	}
	if in.Status != nil {
		upd.SetStatus(*in.Status)
		fields = append(fields, "status")
	}
	// Operators change any tenant: no tenant's policy covers that.
	t, err := upd.Save(tenancy.Bypass(ctx))
	if ent.IsConstraintError(err) {
		return nil, apperr.E(apperr.Conflict, "another tenant has that domain or subdomain")
	}
	if ent.IsNotFound(err) {
		return nil, apperr.E(apperr.NotFound, "tenant not found")
	}
	if err != nil {
		return nil, err
	}
	s.record(ctx, t.ID, "tenant.updated", fields)
	return t, nil
}

// Suspend sets a tenant SUSPENDED: its staff, customers and partners are
// refused (FORBIDDEN, "tenant … is suspended") until it is set ACTIVE again.
func (s *Service) Suspend(ctx context.Context, id int) (*ent.Tenant, error) {
	st := tenant.StatusSUSPENDED
	t, err := s.Update(ctx, id, Update{Status: &st})
	if err != nil {
		return nil, err
	}
	s.record(ctx, t.ID, "tenant.suspended", nil)
	return t, nil
}

// BySlug finds a tenant by slug (the command line names tenants so).
func (s *Service) BySlug(ctx context.Context, slug string) (*ent.Tenant, error) {
	t, err := s.Client.Tenant.Query().Where(tenant.SlugEQ(slug)).Only(tenancy.Bypass(ctx))
	if ent.IsNotFound(err) {
		return nil, apperr.E(apperr.NotFound, "tenant %q not found", slug)
	}
	return t, err
}

// List returns every tenant, newest first (the command line).
func (s *Service) List(ctx context.Context) ([]*ent.Tenant, error) {
	return s.Client.Tenant.Query().Order(ent.Desc(tenant.FieldID)).All(tenancy.Bypass(ctx))
}

// Settings is what a tenant's admin may change; nil leaves a setting alone.
type Settings struct {
	Timezone, Currency, InvoicePrefix *string
	GraceDays                         *int
	Taxes                             []tax.Tax // replaces the list when TaxesSet
	TaxesSet                          bool
	SMS                               *notify.SMSProvider
	ClearSMS                          bool
	Mail                              *notify.MailSender
	ClearMail                         bool
	// PhoneCountryCode ("" removes it) and SuspensionMode
	// (mikrotik.SuspendDisable or SuspendAddressList).
	PhoneCountryCode, SuspensionMode *string
}

// UpdateSettings changes the settings of the viewer's own tenant.
func (s *Service) UpdateSettings(ctx context.Context, in Settings) (*ent.Tenant, error) {
	v, err := auth.RequirePermission(ctx, authz.SettingsManage)
	if err != nil {
		return nil, err
	}
	c := s.client(ctx)
	t, err := c.Tenant.Get(ctx, v.TenantID)
	if err != nil {
		return nil, err
	}
	upd := c.Tenant.UpdateOneID(t.ID)
	if in.Timezone != nil {
		if err := CheckTimezone(*in.Timezone); err != nil {
			return nil, err
		}
		upd.SetTimezone(*in.Timezone)
	}
	if in.Currency != nil {
		cur, err := CheckCurrency(*in.Currency)
		if err != nil {
			return nil, err
		}
		if err := checkCurrencyChange(ctx, c, t.Currency, cur); err != nil {
			return nil, err
		}
		upd.SetCurrency(cur)
	}
	if in.InvoicePrefix != nil {
		p := strings.TrimSpace(*in.InvoicePrefix)
		if p == "" || len(p) > 16 {
			return nil, apperr.E(apperr.BadUserInput, "invoicePrefix must have 1 to 16 characters")
		}
		upd.SetInvoicePrefix(p)
	}
	if in.GraceDays != nil {
		if *in.GraceDays < 0 || *in.GraceDays > 365 {
			return nil, apperr.E(apperr.BadUserInput, "graceDays must be between 0 and 365")
		}
		upd.SetGraceDays(*in.GraceDays)
	}
	if in.TaxesSet {
		if err := tax.Validate(in.Taxes); err != nil {
			return nil, apperr.E(apperr.BadUserInput, "%s", err.Error())
		}
		upd.SetTaxes(in.Taxes)
	}
	settings := map[string]any{}
	for k, val := range t.Settings {
		settings[k] = val
	}
	switch {
	case in.ClearSMS:
		delete(settings, "sms")
	case in.SMS != nil:
		if err := checkHTTPURL(in.SMS.URL); err != nil {
			return nil, err
		}
		settings["sms"] = map[string]any{"url": in.SMS.URL, "token": in.SMS.Token, "sender": in.SMS.Sender}
	}
	switch {
	case in.ClearMail:
		delete(settings, "mail")
	case in.Mail != nil:
		addr, err := auth.CheckEmail(in.Mail.Address)
		if err != nil {
			return nil, err
		}
		settings["mail"] = map[string]any{"name": strings.TrimSpace(in.Mail.Name), "address": addr}
	}
	if in.PhoneCountryCode != nil {
		cc, err := mikrotik.CheckPhoneCountryCode(*in.PhoneCountryCode)
		if err != nil {
			return nil, err
		}
		if cc == "" {
			delete(settings, mikrotik.SettingPhoneCountryCode)
		} else {
			settings[mikrotik.SettingPhoneCountryCode] = cc
		}
	}
	if m := in.SuspensionMode; m != nil {
		if *m != mikrotik.SuspendDisable && *m != mikrotik.SuspendAddressList {
			return nil, apperr.E(apperr.BadUserInput, "suspensionMode must be DISABLE or ADDRESS_LIST")
		}
		if prev, _ := settings[mikrotik.SettingSuspensionMode].(string); prev != *m && !(prev == "" && *m == mikrotik.SuspendDisable) {
			// Every router of the tenant follows the new mode now.
			if err := mikrotik.ReconcileAll(ctx, c); err != nil {
				return nil, err
			}
		}
		settings[mikrotik.SettingSuspensionMode] = *m
	}
	upd.SetSettings(settings)
	// A tenant's own admin changes only its own tenant (v.TenantID above);
	// the Tenant policy leaves tenant rows to operators, hence the bypass.
	// The mutation's own audit entry names the fields it set.
	return upd.Save(tenancy.Bypass(ctx))
}

func checkHTTPURL(u string) error {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return apperr.E(apperr.BadUserInput, "the SMS provider URL must start with https:// (or http://)")
	}
	return nil
}

// record audits a change of tenant id, by the viewer in ctx or, without one,
// by the command line.
func (s *Service) record(ctx context.Context, id int, action string, fields []string) {
	if s.Audit == nil {
		return
	}
	e := audit.Actor(ctx, audit.Entry{TenantID: id, Action: action, EntityType: "Tenant", EntityID: &id, Fields: fields, Outcome: "ok"})
	if viewer.FromContext(ctx) == nil {
		e.ActorKind, e.ActorLabel = "operator", "command line"
	}
	e.TenantID = id
	s.Audit.Record(ctx, e)
}
