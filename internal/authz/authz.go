// Package authz owns what a caller may do: the fixed catalogue of staff
// permissions that tenant roles are built from, the default roles a new tenant
// starts with, the self-service permissions of a portal customer, and the
// check that turns a missing permission into a FORBIDDEN error.
//
// The catalogue is fixed in code; roles are data (ent Role, editable per
// tenant) and may hold only names from the catalogue.
package authz

import (
	"slices"
	"strings"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// The staff permission catalogue. A role holds a subset of these.
const (
	NetworkUsersRead  = "network_users:read"  // list and view subscribers
	NetworkUsersWrite = "network_users:write" // create, edit, suspend and activate subscribers
	BillingRead       = "billing:read"        // view invoices, payments and balances
	BillingWrite      = "billing:write"       // generate, edit and cancel invoices; refund payments; send invoice e-mail
	PaymentsRecord    = "payments:record"     // record a payment against an invoice
	PackagesRead      = "packages:read"       // view service packages
	PackagesWrite     = "packages:write"      // create and edit service packages
	HotspotRead       = "hotspot:read"        // view hotspot users
	HotspotWrite      = "hotspot:write"       // create, edit and suspend hotspot users
	RoutersRead       = "routers:read"        // view routers and live sessions
	RoutersManage     = "routers:manage"      // add and edit routers, sync sessions, push changes to routers
	GatewaysManage    = "gateways:manage"     // configure payment gateways (their credentials)
	ReportsRun        = "reports:run"         // request and read billing reports and the dashboard
	SMSSend           = "sms:send"            // send bulk SMS
	StaffManage       = "staff:manage"        // manage staff users and edit roles
	CacheWarm         = "cache:warm"          // warm the tenant's cache
	AuditRead         = "audit:read"          // read the audit log
	APIKeysManage     = "api_keys:manage"     // create and revoke partner API keys
	WebhooksManage    = "webhooks:manage"     // register partner webhook endpoints, read their deliveries, redeliver
	JobsRead          = "jobs:read"           // view the tenant's background jobs
	JobsManage        = "jobs:manage"         // retry the tenant's dead jobs
	SettingsManage    = "settings:manage"     // edit the tenant's settings: time zone, currency, taxes, SMS, e-mail sender
)

// Permissions of a portal customer. They name only the customer's own data and
// never overlap the staff catalogue, so a staff permission check can never
// pass for a customer viewer.
const (
	SelfProfileRead  = "self:profile:read"  // the customer's own subscriber record and package
	SelfBillingRead  = "self:billing:read"  // the customer's own invoices, payments and balance
	SelfSessionsRead = "self:sessions:read" // the customer's own network sessions and usage
	SelfPackagesRead = "self:packages:read" // the tenant's active packages, to compare plans
	SelfBillingPay   = "self:billing:pay"   // pay the customer's own invoices online
)

// catalogue lists every staff permission with a description, in display order.
var catalogue = []struct{ name, description string }{
	{NetworkUsersRead, "List and view subscribers"},
	{NetworkUsersWrite, "Create, edit, suspend and activate subscribers"},
	{BillingRead, "View invoices, payments and balances"},
	{BillingWrite, "Generate, edit and cancel invoices, refund payments, send invoice e-mail"},
	{PaymentsRecord, "Record payments"},
	{PackagesRead, "View service packages"},
	{PackagesWrite, "Create and edit service packages"},
	{HotspotRead, "View hotspot users"},
	{HotspotWrite, "Create, edit and suspend hotspot users"},
	{RoutersRead, "View routers and live sessions"},
	{RoutersManage, "Add and edit routers, sync sessions, push changes to routers"},
	{GatewaysManage, "Configure payment gateways"},
	{ReportsRun, "Request billing reports and view the dashboard"},
	{SMSSend, "Send bulk SMS"},
	{StaffManage, "Manage staff users and roles"},
	{CacheWarm, "Warm the cache"},
	{AuditRead, "Read the audit log"},
	{APIKeysManage, "Create and revoke partner API keys"},
	{WebhooksManage, "Register partner webhook endpoints, see their deliveries and redeliver them"},
	{JobsRead, "View the tenant's background jobs"},
	{JobsManage, "Retry the tenant's dead background jobs"},
	{SettingsManage, "Edit the tenant's settings: time zone, currency, taxes, SMS gateway, e-mail sender"},
}

// All returns every staff permission of the catalogue, in display order.
func All() []string {
	out := make([]string, len(catalogue))
	for i, c := range catalogue {
		out[i] = c.name
	}
	return out
}

// Valid reports whether p is a staff permission of the catalogue.
func Valid(p string) bool {
	return Description(p) != ""
}

// Description returns a human description of staff permission p, or "" when p
// is not in the catalogue.
func Description(p string) string {
	for _, c := range catalogue {
		if c.name == p {
			return c.description
		}
	}
	return ""
}

// Normalize validates perms for storing in a role: it returns them sorted and
// without duplicates, or a BAD_USER_INPUT error naming every unknown permission.
func Normalize(perms []string) ([]string, error) {
	var unknown []string
	out := make([]string, 0, len(perms))
	for _, p := range perms {
		if !Valid(p) {
			unknown = append(unknown, p)
			continue
		}
		out = append(out, p)
	}
	if len(unknown) > 0 {
		return nil, apperr.E(apperr.BadUserInput, "unknown permission(s) %q: valid permissions are %s",
			unknown, strings.Join(All(), ", "))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CustomerPermissions returns what a portal customer may read about itself,
// and paying its own invoices online.
func CustomerPermissions() []string {
	return []string{SelfProfileRead, SelfBillingRead, SelfSessionsRead, SelfPackagesRead, SelfBillingPay}
}

// The names of the default roles.
const (
	RoleAdmin      = "admin"
	RoleManager    = "manager"
	RoleOperator   = "operator"
	RoleAccountant = "accountant"
	RoleStaff      = "staff"
)

// RoleSpec describes a role: its name, what it is for and its permissions.
type RoleSpec struct {
	Name        string
	Description string
	Permissions []string
}

// DefaultRoles returns the roles every new tenant starts with. Tenants may
// edit them afterwards; these are only the starting point.
func DefaultRoles() []RoleSpec {
	return []RoleSpec{
		// admin: the tenant's owner; everything, including staff, roles,
		// payment gateway credentials, partner API keys and webhooks.
		{
			Name:        RoleAdmin,
			Description: "Full access, including staff, roles, payment gateways and API keys",
			Permissions: All(),
		},
		// manager: runs the business day to day; everything except who may
		// sign in (staff, API keys) and where money is paid out (gateways).
		{
			Name:        RoleManager,
			Description: "Runs the business: subscribers, billing, packages, routers, reports and SMS",
			Permissions: []string{
				NetworkUsersRead, NetworkUsersWrite,
				BillingRead, BillingWrite, PaymentsRecord,
				PackagesRead, PackagesWrite,
				HotspotRead, HotspotWrite,
				RoutersRead, RoutersManage,
				ReportsRun, SMSSend, CacheWarm, AuditRead, JobsRead, JobsManage,
			},
		},
		// operator: network operations; provisions subscribers and hotspot
		// users and manages routers. Sees billing (is this customer paid up?)
		// but cannot change it.
		{
			Name:        RoleOperator,
			Description: "Network operations: subscribers, hotspot users and routers; billing read-only",
			Permissions: []string{
				NetworkUsersRead, NetworkUsersWrite,
				BillingRead,
				PackagesRead,
				HotspotRead, HotspotWrite,
				RoutersRead, RoutersManage,
				JobsRead,
			},
		},
		// accountant: invoices, payments and reports; reads subscribers and
		// packages to bill them, sends payment reminders by SMS and reads the
		// audit log to reconcile. No network or staff changes.
		{
			Name:        RoleAccountant,
			Description: "Invoices, payments, refunds, billing reports and payment reminders",
			Permissions: []string{
				NetworkUsersRead,
				BillingRead, BillingWrite, PaymentsRecord,
				PackagesRead,
				ReportsRun, SMSSend, AuditRead,
			},
		},
		// staff: the front desk; looks customers up and takes payments at the
		// counter, changes nothing else.
		{
			Name:        RoleStaff,
			Description: "Front desk: look up subscribers and record payments",
			Permissions: []string{
				NetworkUsersRead,
				BillingRead, PaymentsRecord,
				PackagesRead,
				HotspotRead,
			},
		},
	}
}

// Check returns nil when v holds perm, UNAUTHENTICATED when there is no viewer
// and FORBIDDEN naming the missing permission otherwise.
func Check(v *viewer.Viewer, perm string) error {
	if v == nil {
		return apperr.E(apperr.Unauthenticated, "you are not logged in: log in and send Authorization: Bearer <token>")
	}
	if !v.Can(perm) {
		return apperr.E(apperr.Forbidden, "you need the %q permission for this: ask your administrator", perm)
	}
	return nil
}

// CheckGrant refuses to let v hand out a permission it does not hold itself,
// whether by editing a role, assigning one or creating an API key's scopes:
// staff:manage must not be a way to escalate one's own rights.
func CheckGrant(v *viewer.Viewer, perms []string) error {
	for _, p := range perms {
		if !v.Can(p) {
			return apperr.E(apperr.Forbidden, "you cannot grant the %q permission: you do not hold it", p)
		}
	}
	return nil
}
