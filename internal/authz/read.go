package authz

import (
	"slices"
	"strings"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// ReadKind says how a GraphQL object type's read permission is decided.
type ReadKind int

// The kinds of read rule.
const (
	// ReadNested: a value that lives inside another type (page info,
	// statistics, a mutation's answer). It is readable wherever its parent
	// was; a Query field returning it must declare its own directive.
	ReadNested ReadKind = iota
	// ReadPublic: readable without a credential (login answers).
	ReadPublic
	// ReadAuthenticated: readable by any caller with a credential of the
	// tenant.
	ReadAuthenticated
	// ReadAnyOf: readable by a caller holding at least one of Permissions.
	ReadAnyOf
)

// ReadRule is who may read an object type, wherever a field returns it: a
// root field, node(id)/nodes(ids), or a field of another type.
type ReadRule struct {
	Kind        ReadKind
	Permissions []string // for ReadAnyOf
}

func anyOf(perms ...string) ReadRule { return ReadRule{Kind: ReadAnyOf, Permissions: perms} }

// readRules is the one table of read permissions, by GraphQL object type
// name. Every object type of the schema has an entry here, or is the
// <Type>Connection or <Type>Edge of one that has (resolvers' tests and the
// server's start-up check fail otherwise). Customers' self:* permissions sit
// beside the staff ones: the data layer narrows a customer to its own rows.
var readRules = map[string]ReadRule{
	// Entities.
	"APIKey":         anyOf(APIKeysManage),
	"AuditLog":       anyOf(AuditRead),
	"BillingReport":  anyOf(ReportsRun),
	"HotspotUser":    anyOf(HotspotRead),
	"Invoice":        anyOf(BillingRead, SelfBillingRead),
	"NetworkSession": anyOf(RoutersRead, SelfSessionsRead),
	"NetworkUser":    anyOf(NetworkUsersRead, SelfProfileRead),
	"Notification":   anyOf(BillingRead),
	"Package":        anyOf(PackagesRead, SelfPackagesRead),
	"Payment":        anyOf(BillingRead, SelfBillingRead),
	"PaymentGateway": anyOf(GatewaysManage),
	"Role":           anyOf(StaffManage),
	"Router":         anyOf(RoutersRead),
	"User":           anyOf(StaffManage),
	"Tenant":         {Kind: ReadAuthenticated}, // the caller's own tenant
	// Partner endpoints, what was sent to them and how it went.
	"WebhookEndpoint": anyOf(WebhooksManage),
	"WebhookDelivery": anyOf(WebhooksManage),
	"WebhookAttempt":  anyOf(WebhooksManage),

	// Views computed for a caller.
	"Dashboard":         anyOf(ReportsRun),
	"CustomerDashboard": anyOf(SelfBillingRead),
	"JobQueue":          anyOf(JobsRead),
	"DeadJob":           anyOf(JobsRead),
	"Viewer":            {Kind: ReadAuthenticated},
	"Permission":        {Kind: ReadAuthenticated},
	"RouterDriftItem":   anyOf(RoutersManage),
	// Where the tenant's SMS goes is for those who may change it.
	"SMSProviderSettings": anyOf(SettingsManage),

	// Answers of public mutations.
	"AuthPayload":       {Kind: ReadPublic},
	"HotspotOtpRequest": {Kind: ReadPublic},
	"HotspotSignIn":     {Kind: ReadPublic},

	// Parts of other types and mutation answers: the field that returns
	// their parent was checked.
	"PageInfo":                   {Kind: ReadNested},
	"InvoiceCounts":              {Kind: ReadNested},
	"InvoiceStats":               {Kind: ReadNested},
	"RevenueStats":               {Kind: ReadNested},
	"ServiceTypeCount":           {Kind: ReadNested},
	"SubscriberStats":            {Kind: ReadNested},
	"GenerateInvoicesPayload":    {Kind: ReadNested},
	"StartInvoicePaymentPayload": {Kind: ReadNested},
	"CustomerUsage":              {Kind: ReadNested},
	"WarmCachePayload":           {Kind: ReadNested},
	"BulkSmsBatch":               {Kind: ReadNested},
	"RouterImportResult":         {Kind: ReadNested},
	"CreateAPIKeyPayload":        {Kind: ReadNested},
	"WebhookEndpointSecret":      {Kind: ReadNested},
	"CreateTenantPayload":        {Kind: ReadNested},
	"Tax":                        {Kind: ReadNested},
	"MailSenderSettings":         {Kind: ReadNested},
}

// platformTypes are what a platform operator reads without naming a tenant:
// tenants, and what createTenant answers (the tenant's first admin and role).
var platformTypes = map[string]bool{
	"Tenant": true, "User": true, "Role": true, "Tax": true,
	"MailSenderSettings": true, "SMSProviderSettings": true, "CreateTenantPayload": true,
}

// PlatformReadable reports whether a platform operator acting in no tenant
// may read values of typeName (a <T>Connection or <T>Edge as T).
func PlatformReadable(typeName string) bool {
	base := strings.TrimSuffix(strings.TrimSuffix(typeName, "Connection"), "Edge")
	return platformTypes[base]
}

// readOverrides are fields whose value is the caller itself, readable
// whatever the type's rule says: a staff user reads its own record through
// viewer { user } without staff:manage.
var readOverrides = map[string]ReadRule{
	"Viewer.user": {Kind: ReadAuthenticated},
}

// ReadRuleOf returns the read rule of GraphQL object type typeName. A
// <T>Connection or <T>Edge takes the rule of T. ok is false when the table
// has no rule for it.
func ReadRuleOf(typeName string) (r ReadRule, ok bool) {
	if r, ok := readRules[typeName]; ok {
		return r, true
	}
	for _, suffix := range []string{"Connection", "Edge"} {
		if base, cut := strings.CutSuffix(typeName, suffix); cut && base != "" {
			if r, ok := readRules[base]; ok {
				return r, true
			}
		}
	}
	return ReadRule{}, false
}

// FieldReadOverride returns the rule of field object.field when it differs
// from the rule of the type it returns.
func FieldReadOverride(object, field string) (ReadRule, bool) {
	r, ok := readOverrides[object+"."+field]
	return r, ok
}

// Allows reports whether v may read a value under rule r.
func (r ReadRule) Allows(v *viewer.Viewer) bool {
	switch r.Kind {
	case ReadPublic, ReadNested:
		return true
	case ReadAuthenticated:
		return v != nil && v.HasTenant()
	case ReadAnyOf:
		if v == nil || !v.HasTenant() {
			return false
		}
		return slices.ContainsFunc(r.Permissions, v.Can)
	}
	return false
}

// CheckRead returns nil when v may read a value of typeName under rule r,
// UNAUTHENTICATED when there is no viewer and FORBIDDEN naming what is
// missing otherwise.
func (r ReadRule) CheckRead(v *viewer.Viewer, typeName string) error {
	if r.Allows(v) {
		return nil
	}
	if v == nil || !v.HasTenant() {
		return apperr.E(apperr.Unauthenticated, "you are not logged in: log in and send Authorization: Bearer <token>")
	}
	if len(r.Permissions) == 1 {
		return apperr.E(apperr.Forbidden, "reading a %s needs the %q permission: ask your administrator", typeName, r.Permissions[0])
	}
	return apperr.E(apperr.Forbidden, "reading a %s needs one of the permissions %q: ask your administrator", typeName, r.Permissions)
}
