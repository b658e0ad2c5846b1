//go:build ignore

// entc.go generates the ent client and the entgql GraphQL schema from
// ent/schema. Run it through `go generate ./...` at the repository root.
package main

import (
	"fmt"
	"log"
	"sort"
	"strings"
	"unicode"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
	"github.com/vektah/gqlparser/v2/ast"
)

// authenticatedNode declares the permission of the generated node and nodes
// fields: any authenticated caller; the resolver then checks the read
// permission of the type it found (authz.NodePermissions).
func authenticatedNode(_ *gen.Graph, s *ast.Schema) error {
	q := s.Types["Query"]
	if q == nil {
		return nil
	}
	for _, f := range q.Fields {
		if f.Name == "node" || f.Name == "nodes" {
			f.Directives = append(f.Directives, &ast.Directive{Name: "authenticated"})
		}
	}
	return nil
}

// refusableEdges are required edges whose target the caller may not be
// allowed to read (the read table in internal/authz): GraphQL answers a
// refused non-null field by nulling its parent, so a billing:read key would
// lose the whole invoice for its subscriber. In the API they are nullable;
// the database keeps them required.
var refusableEdges = map[string][]string{
	"Invoice":        {"networkUser"},
	"Payment":        {"networkUser"},
	"NetworkSession": {"router"},
}

// nullableEdges makes the refusableEdges nullable in the schema.
func nullableEdges(_ *gen.Graph, s *ast.Schema) error {
	for typ, fields := range refusableEdges {
		def := s.Types[typ]
		if def == nil {
			return fmt.Errorf("nullableEdges: no type %s", typ)
		}
		for _, name := range fields {
			f := def.Fields.ForName(name)
			if f == nil {
				return fmt.Errorf("nullableEdges: no field %s.%s", typ, name)
			}
			f.Type.NonNull = false
		}
	}
	return nil
}

func main() {
	ex, err := entgql.NewExtension(
		entgql.WithConfigPath("gqlgen.yml"),
		entgql.WithSchemaGenerator(),
		entgql.WithSchemaPath("graph/ent.graphqls"),
		entgql.WithWhereInputs(true),
		entgql.WithNodeDescriptor(false),
		entgql.WithSchemaHook(authenticatedNode, nullableEdges, describe),
	)
	if err != nil {
		log.Fatalf("creating entgql extension: %v", err)
	}
	err = entc.Generate("./ent/schema", &gen.Config{
		Target:  "./ent",
		Package: "github.com/ispgraph/ispgraph/ent",
		Features: []gen.Feature{
			gen.FeaturePrivacy,
			gen.FeatureEntQL,
			gen.FeatureIntercept,
			gen.FeatureGlobalID,
			gen.FeatureVersionedMigration,
			gen.FeatureLock,
			gen.FeatureUpsert,
			gen.FeatureModifier,
			gen.FeatureExecQuery,
		},
	}, entc.Extensions(ex), entc.TemplateFiles("ent/template/namedset.tmpl"))
	if err != nil {
		log.Fatalf("running ent codegen: %v", err)
	}
}

// Descriptions of the generated schema. ent field comments become
// descriptions by themselves; describe fills the rest, so that every type,
// field and enum value a client sees says what it means (TestSchemaDescribed
// in cmd/ispgraph fails on a missing one). Money is a decimal string in the
// tenant's currency; Time is RFC 3339.

// typeDocs describes the entity types.
var typeDocs = map[string]string{
	"APIKey":          "An API key of the tenant: a bearer credential for machine clients, limited to its scopes. The secret itself is shown only once, when created.",
	"AuditLog":        "One audited action: who did what to which entity, from where, in which request. Audit entries are never changed.",
	"BillingReport":   "A billing report requested by staff and built in the background by a job; its rows are downloaded once status is DONE.",
	"HotspotUser":     "A hotspot customer who signs in with a phone number and a one-time code.",
	"Invoice":         "A bill for one subscriber and one billing period. Amounts are in the tenant's currency.",
	"NetworkSession":  "One PPPoE or hotspot session seen on a router, from its start until the router stops reporting it.",
	"NetworkUser":     "A subscriber of the ISP: a PPPoE, hotspot or static-IP account on one of its routers, billed for a package.",
	"Notification":    "An SMS or e-mail sent (or to be sent) by the tenant: invoice notices, reminders, bulk SMS, one-time codes.",
	"Package":         "A service package (plan) the ISP sells: bandwidth, price and billing cycle.",
	"Payment":         "A payment by a subscriber: cash or bank transfer recorded by staff, or an online payment through a gateway.",
	"PaymentGateway":  "An online payment provider account configured by the tenant.",
	"Role":            "A named set of permissions assigned to staff users.",
	"Router":          "A MikroTik router managed through the RouterOS API; subscribers and sessions live on it.",
	"Tenant":          "An ISP using ispgraph. Every other record belongs to exactly one tenant.",
	"User":            "A staff user of a tenant, who signs in with e-mail and password and acts with the permissions of a role.",
	"WebhookEndpoint": "A partner's endpoint the tenant's events are posted to, signed with the endpoint's secret (docs/payments.md). The secret is shown only once, when created or rotated.",
	"WebhookDelivery": "One event posted to one webhook endpoint, with every attempt made.",
	"WebhookAttempt":  "One attempt to post a webhook delivery and what came of it.",
	"Query":           "The root of every read.",
}

// commonFieldDocs describes fields every entity shares.
var commonFieldDocs = map[string]string{
	"id":        "Globally unique, opaque identifier of this object (usable with the node query).",
	"createdAt": "When this record was created (RFC 3339).",
	"updatedAt": "When this record was last changed (RFC 3339).",
}

// fieldDocs describes entity fields, by "Type.field", or by "field" for all
// types that carry it with the same meaning.
var fieldDocs = map[string]string{
	"APIKey.name":                  "Label chosen by staff to recognise the key.",
	"APIKey.prefix":                "First characters of the secret, shown to tell keys apart; the secret itself is never shown again.",
	"APIKey.scopes":                "Permissions the key may use (e.g. billing:read); a request with the key can do nothing else.",
	"APIKey.expiresAt":             "When the key stops working (RFC 3339); null when it does not expire.",
	"APIKey.lastUsedAt":            "When a request last authenticated with the key (RFC 3339); null if never used.",
	"APIKey.revokedAt":             "When the key was revoked (RFC 3339); null while it is valid.",
	"APIKey.rateLimitPerMinute":    "Maximum requests per minute with this key; null for the server's default.",
	"APIKey.createdByID":           "ID of the staff user who created the key.",
	"APIKey.createdBy":             "The staff user who created the key.",
	"AuditLog.actorKind":           "Kind of actor: user (staff), api_key, customer, platform or system.",
	"AuditLog.actorID":             "Database ID of the actor within its kind; null for the system.",
	"AuditLog.actorLabel":          "Human-readable actor, e.g. the staff user's e-mail or the key's name.",
	"AuditLog.action":              "What was done, e.g. invoice.create or payment.record.",
	"AuditLog.entityType":          "Type of the entity acted on, e.g. Invoice.",
	"AuditLog.entityID":            "Database ID of the entity acted on; null when the action has no single entity.",
	"AuditLog.requestID":           "ID of the HTTP request that did it (the X-Request-ID response header).",
	"AuditLog.address":             "IP address of the caller.",
	"BillingReport.type":           "Which report this is.",
	"BillingReport.status":         "Where the background build stands.",
	"BillingReport.error":          "Why the build failed; null unless status is FAILED.",
	"BillingReport.requestedByID":  "ID of the staff user who requested the report.",
	"BillingReport.requestedBy":    "The staff user who requested the report.",
	"BillingReport.startedAt":      "When the job started building the report (RFC 3339).",
	"BillingReport.finishedAt":     "When the build finished or failed (RFC 3339).",
	"HotspotUser.phone":            "Phone number the customer signs in with (E.164).",
	"HotspotUser.username":         "Username of the customer's hotspot account on the router.",
	"HotspotUser.verified":         "Whether the phone number was confirmed with a one-time code.",
	"HotspotUser.status":           "Whether the customer may use the hotspot.",
	"HotspotUser.expiresAt":        "When the customer's access ends (RFC 3339); null without a time limit.",
	"HotspotUser.macAddress":       "MAC address of the customer's device, when known.",
	"HotspotUser.packageID":        "ID of the package the customer bought, if any.",
	"HotspotUser.package":          "The package the customer bought, if any.",
	"Query.roles":                  "Roles of the caller's tenant, built-in ones included.",
	"HotspotUser.sessions":         "Hotspot sessions of this customer, newest first unless ordered otherwise.",
	"Invoice.networkUserID":        "ID of the subscriber billed.",
	"Invoice.networkUser":          "The subscriber billed; null when the caller may not read subscribers.",
	"Invoice.packageID":            "ID of the package billed, if any.",
	"Invoice.package":              "The package billed, if any.",
	"Invoice.number":               "Invoice number, unique in the tenant: the tenant's invoice prefix and a sequence.",
	"Invoice.amount":               "Amount before tax, in the tenant's currency (decimal string).",
	"Invoice.tax":                  "Tax on the amount, in the tenant's currency (decimal string).",
	"Invoice.total":                "Amount due: amount plus tax, in the tenant's currency (decimal string).",
	"Invoice.amountPaid":           "Sum of completed payments applied so far, in the tenant's currency (decimal string).",
	"Invoice.creditApplied":        "Part of the total paid from the subscriber's credit, in the tenant's currency (decimal string).",
	"Invoice.status":               "Where the invoice stands.",
	"Invoice.periodStart":          "Start of the service period billed (RFC 3339).",
	"Invoice.periodEnd":            "End of the service period billed (RFC 3339).",
	"Invoice.issuedAt":             "When the invoice was issued (RFC 3339).",
	"Invoice.dueDate":              "When payment is due (RFC 3339); after it (and the tenant's grace days) the invoice is overdue.",
	"Invoice.paidAt":               "When the invoice became fully paid (RFC 3339); null while any amount is due.",
	"Invoice.notes":                "Free text printed on the invoice; empty when none.",
	"Invoice.payments":             "Payments made against this invoice.",
	"NetworkSession.routerID":      "ID of the router the session runs on.",
	"NetworkSession.router":        "The router the session runs on; null when the caller may not read routers.",
	"NetworkSession.networkUserID": "ID of the subscriber of a PPPoE session; null for hotspot sessions or unknown users.",
	"NetworkSession.networkUser":   "The subscriber of a PPPoE session, if known.",
	"NetworkSession.hotspotUserID": "ID of the hotspot customer of a hotspot session, if known.",
	"NetworkSession.hotspotUser":   "The hotspot customer of a hotspot session, if known.",
	"NetworkSession.kind":          "PPPoE or hotspot session.",
	"NetworkSession.username":      "Username the session authenticated with on the router.",
	"NetworkSession.address":       "IP address the router assigned to the session.",
	"NetworkSession.callerID":      "Caller ID the router reports: the client's MAC address.",
	"NetworkSession.uptimeSeconds": "Seconds the session has been up, as last reported by the router.",
	"NetworkSession.bytesIn":       "Bytes received from the client, as last reported by the router.",
	"NetworkSession.bytesOut":      "Bytes sent to the client, as last reported by the router.",
	"NetworkSession.startedAt":     "When the session started (RFC 3339).",
	"NetworkSession.lastSeenAt":    "When the router last reported the session (RFC 3339).",
	"NetworkSession.endedAt":       "When the session ended (RFC 3339); null while active.",
	"NetworkSession.status":        "Whether the session is still active.",
	"NetworkUser.username":         "Login of the subscriber's account on the router (PPPoE secret name).",
	"NetworkUser.fullName":         "Subscriber's full name.",
	"NetworkUser.email":            "Subscriber's e-mail address; empty when none. Invoices are mailed to it.",
	"NetworkUser.phone":            "Subscriber's phone number; SMS notices are sent to it.",
	"NetworkUser.address":          "Subscriber's postal or installation address.",
	"NetworkUser.serviceType":      "How the subscriber connects: PPPoE, hotspot or static IP.",
	"NetworkUser.status":           "Whether the subscriber may connect; SUSPENDED and EXPIRED accounts are disabled on the router.",
	"NetworkUser.billingType":      "Prepaid (pays before the period) or postpaid (invoiced after).",
	"NetworkUser.packageID":        "ID of the subscribed package.",
	"NetworkUser.package":          "The subscribed package.",
	"NetworkUser.routerID":         "ID of the router the subscriber's account lives on.",
	"NetworkUser.router":           "The router the subscriber's account lives on.",
	"NetworkUser.staticIP":         "Fixed IP address given to the subscriber, if any.",
	"NetworkUser.macAddress":       "MAC address bound to the subscriber, if any.",
	"NetworkUser.expiresAt":        "When the subscription expires (RFC 3339); null without an end.",
	"NetworkUser.suspensionReason": "Why the subscriber was suspended; null when not suspended.",
	"NetworkUser.suspendedAt":      "When the subscriber was suspended (RFC 3339); null when not suspended.",
	"NetworkUser.credit":           "Prepaid balance the subscriber holds, in the tenant's currency (decimal string); applied to new invoices.",
	"NetworkUser.invoices":         "Invoices of this subscriber.",
	"NetworkUser.payments":         "Payments of this subscriber.",
	"NetworkUser.sessions":         "PPPoE sessions of this subscriber.",
	"Notification.channel":         "SMS or e-mail.",
	"Notification.recipient":       "Phone number or e-mail address it is sent to.",
	"Notification.subject":         "Subject line (e-mail); empty for SMS.",
	"Notification.body":            "Text of the message.",
	"Notification.status":          "Whether it was sent.",
	"Notification.providerRef":     "Message ID given by the SMS or mail provider, once accepted.",
	"Notification.error":           "Why the last attempt failed, if it did.",
	"Notification.attempts":        "How many times sending was attempted.",
	"Notification.batchID":         "ID of the bulk SMS batch it belongs to, if any.",
	"Notification.invoiceID":       "ID of the invoice it is about, if any.",
	"Notification.invoice":         "The invoice it is about, if any.",
	"Notification.sentAt":          "When the provider accepted it (RFC 3339); null while it is queued or if it failed.",
	"Package.name":                 "Name shown to staff and customers.",
	"Package.description":          "Longer description shown to customers; empty when none.",
	"Package.bandwidthUpKbps":      "Upload speed limit in kilobits per second.",
	"Package.bandwidthDownKbps":    "Download speed limit in kilobits per second.",
	"Package.price":                "Price per billing cycle, tax excluded unless the tenant's taxes are inclusive, in the tenant's currency (decimal string).",
	"Package.billingCycle":         "How often the package is billed.",
	"Package.validityDays":         "Days of service one payment buys.",
	"Package.routerProfile":        "Name of the PPP or hotspot user profile on the router that applies the limits.",
	"Package.status":               "Whether the package can be sold.",
	"Package.networkUsers":         "Subscribers on this package.",
	"Payment.networkUserID":        "ID of the paying subscriber.",
	"Payment.networkUser":          "The paying subscriber; null when the caller may not read subscribers.",
	"Payment.invoiceID":            "ID of the invoice paid, if the payment is for one.",
	"Payment.invoice":              "The invoice paid, if any.",
	"Payment.paymentGatewayID":     "ID of the online payment gateway used, if any.",
	"Payment.gateway":              "The online payment gateway used, if any.",
	"Payment.number":               "Payment (receipt) number, unique in the tenant.",
	"Payment.amount":               "Amount paid, in the tenant's currency (decimal string).",
	"Payment.method":               "How it was paid.",
	"Payment.status":               "Where the payment stands.",
	"Payment.transactionID":        "Transaction reference from the gateway or bank, if any.",
	"Payment.failureReason":        "Why the payment failed, if it did.",
	"Payment.paidAt":               "When the money was received (RFC 3339); null until completed.",
	"Payment.refundedAt":           "When it was refunded (RFC 3339); null unless refunded.",
	"Payment.collectedByID":        "ID of the staff user who recorded a cash or bank payment.",
	"Payment.collectedBy":          "The staff user who recorded a cash or bank payment.",
	"PaymentGateway.provider":      "Which payment provider this account is with.",
	"PaymentGateway.name":          "Label shown to staff and customers.",
	"PaymentGateway.active":        "Whether customers can pay through it.",
	"PaymentGateway.testMode":      "Whether it talks to the provider's sandbox: no real money moves.",
	"Role.name":                    "Name of the role, unique in the tenant.",
	"Role.description":             "What the role is for; empty when none.",
	"Role.permissions":             "Permissions granted, e.g. billing:read, billing:write, network:write.",
	"Role.builtin":                 "Whether the role comes with every tenant; built-in roles cannot be changed or deleted.",
	"Router.name":                  "Label chosen by staff.",
	"Router.host":                  "Host name or IP address of the router's API.",
	"Router.apiPort":               "TCP port of the RouterOS API (8728 plain, 8729 TLS by default).",
	"Router.useTLS":                "Whether the API is reached over TLS.",
	"Router.username":              "RouterOS user ispgraph logs in as (the password is never shown).",
	"Router.status":                "Whether ispgraph manages this router.",
	"Router.apiStatus":             "Whether the router answered the last health check.",
	"Router.lastCheckedAt":         "When the last health check ran (RFC 3339).",
	"Router.lastSyncedAt":          "When subscribers were last synchronised to the router (RFC 3339).",
	"Router.lastError":             "Error of the last failed check or sync; null after a success.",
	"Router.responseTimeMs":        "How long the router took to answer the last health check, in milliseconds.",
	"Router.cpuLoad":               "CPU load in percent at the last health check.",
	"Router.routerosVersion":       "RouterOS version reported at the last health check.",
	"Router.networkUsers":          "Subscribers whose accounts live on this router.",
	"Router.sessions":              "Sessions seen on this router.",
	"Tenant.name":                  "Name of the ISP.",
	"Tenant.slug":                  "Short unique identifier of the tenant, used in URLs and logins.",
	"Tenant.domain":                "Domain of the ISP's customer portal; empty when none.",
	"Tenant.subdomain":             "Subdomain under the platform's domain, if one is used.",
	"Tenant.status":                "Whether the tenant may use the service; a suspended tenant's callers are refused.",
	"Tenant.timezone":              "IANA time zone of the ISP, e.g. Asia/Dhaka; billing periods and reports use it.",
	"Tenant.currency":              "ISO 4217 currency code of all money amounts of the tenant.",
	"Tenant.invoicePrefix":         "Prefix of invoice numbers.",
	"Tenant.graceDays":             "Days after the due date before an unpaid invoice is overdue.",
	"User.name":                    "Staff user's display name.",
	"User.email":                   "E-mail address the user signs in with.",
	"User.roleID":                  "ID of the user's role.",
	"User.role":                    "The user's role, which gives the permissions.",
	"User.active":                  "Whether the user may sign in; disabled users are refused.",
	"User.lastLoginAt":             "When the user last signed in (RFC 3339).",
	"WebhookEndpoint.deliveries":   "Deliveries of events to this endpoint.",
	"WebhookDelivery.endpoint":     "The endpoint the event is posted to.",
	"WebhookDelivery.attempts":     "Every attempt made, oldest first.",
	"WebhookAttempt.delivery":      "The delivery attempted.",
}

// enumDocs describes enum values, by "Enum.VALUE".
var enumDocs = map[string]string{
	"BillingReportStatus.QUEUED":            "Waiting for a worker.",
	"BillingReportStatus.RUNNING":           "Being built.",
	"BillingReportStatus.DONE":              "Built; the rows can be read.",
	"BillingReportStatus.FAILED":            "The build failed; see error.",
	"BillingReportType.MONTHLY_REVENUE":     "Payments received per month.",
	"BillingReportType.AR_AGING":            "Unpaid invoice totals by how long they are overdue.",
	"BillingReportType.COLLECTIONS":         "Payments collected, by method and staff user.",
	"BillingReportType.OVERDUE_SUBSCRIBERS": "Subscribers with overdue invoices.",
	"HotspotUserStatus.PENDING":             "Signed up, phone number not yet verified.",
	"HotspotUserStatus.ACTIVE":              "May use the hotspot.",
	"HotspotUserStatus.EXPIRED":             "Access time has run out.",
	"HotspotUserStatus.SUSPENDED":           "Blocked by staff.",
	"InvoiceStatus.DRAFT":                   "Not issued yet; can still change.",
	"InvoiceStatus.PENDING":                 "Issued and awaiting payment.",
	"InvoiceStatus.PAID":                    "Fully paid.",
	"InvoiceStatus.OVERDUE":                 "Unpaid past the due date and the tenant's grace days.",
	"InvoiceStatus.CANCELLED":               "Cancelled; nothing is owed.",
	"NetworkSessionKind.PPPOE":              "A PPPoE session of a subscriber.",
	"NetworkSessionKind.HOTSPOT":            "A hotspot session.",
	"NetworkSessionStatus.ACTIVE":           "Still reported by the router.",
	"NetworkSessionStatus.CLOSED":           "Ended.",
	"NetworkUserBillingType.PREPAID":        "Pays before the period of service.",
	"NetworkUserBillingType.POSTPAID":       "Is invoiced after the period of service.",
	"NetworkUserServiceType.PPPOE":          "Connects with a PPPoE account.",
	"NetworkUserServiceType.HOTSPOT":        "Connects through the hotspot.",
	"NetworkUserServiceType.STATIC":         "Has a fixed IP address.",
	"NetworkUserStatus.ACTIVE":              "May connect.",
	"NetworkUserStatus.INACTIVE":            "Not yet or no longer in service; disabled on the router.",
	"NetworkUserStatus.SUSPENDED":           "Blocked by staff or for non-payment; disabled on the router.",
	"NetworkUserStatus.EXPIRED":             "The subscription ran out; disabled on the router.",
	"NetworkUserStatus.DELETED":             "Removed; kept for its invoices and payments.",
	"NotificationChannel.SMS":               "A text message.",
	"NotificationChannel.EMAIL":             "An e-mail.",
	"NotificationStatus.QUEUED":             "Waiting to be sent (or retried).",
	"NotificationStatus.SENT":               "Accepted by the provider.",
	"NotificationStatus.FAILED":             "Sending failed for good; see error.",
	"PackageBillingCycle.DAILY":             "Billed every day.",
	"PackageBillingCycle.MONTHLY":           "Billed every month.",
	"PackageBillingCycle.ONETIME":           "Billed once.",
	"PackageStatus.ACTIVE":                  "On sale.",
	"PackageStatus.INACTIVE":                "No longer sold; existing subscribers keep it.",
	"PaymentGatewayProvider.MANUAL":         "No provider: payments confirmed by staff.",
	"PaymentGatewayProvider.STRIPE":         "Stripe.",
	"PaymentGatewayProvider.SSLCOMMERZ":     "SSLCommerz.",
	"PaymentGatewayProvider.BKASH":          "bKash mobile wallet.",
	"PaymentGatewayProvider.NAGAD":          "Nagad mobile wallet.",
	"PaymentMethod.CASH":                    "Cash, recorded by staff.",
	"PaymentMethod.BANK_TRANSFER":           "Bank transfer, recorded by staff.",
	"PaymentMethod.CARD":                    "Card payment.",
	"PaymentMethod.MOBILE_WALLET":           "Mobile wallet payment.",
	"PaymentMethod.GATEWAY":                 "Online payment through a payment gateway.",
	"PaymentStatus.PENDING":                 "Started, money not yet confirmed.",
	"PaymentStatus.COMPLETED":               "Money received.",
	"PaymentStatus.FAILED":                  "Did not go through; see failureReason.",
	"PaymentStatus.REFUNDED":                "Paid, then refunded.",
	"RouterAPIStatus.UNKNOWN":               "Not checked yet.",
	"RouterAPIStatus.ONLINE":                "Answered the last health check.",
	"RouterAPIStatus.OFFLINE":               "Did not answer the last health check.",
	"RouterStatus.ACTIVE":                   "Managed: checked and synchronised.",
	"RouterStatus.INACTIVE":                 "Not managed for now.",
	"RouterStatus.ERROR":                    "Managed, but the last operation failed; see lastError.",
	"WebhookDeliveryStatus.PENDING":         "Not delivered yet; another attempt is planned.",
	"WebhookDeliveryStatus.DELIVERED":       "The endpoint answered 2xx.",
	"WebhookDeliveryStatus.FAILED":          "Every attempt failed; redeliverWebhook tries again.",
	"TenantStatus.ACTIVE":                   "In service.",
	"TenantStatus.INACTIVE":                 "Not in service.",
	"TenantStatus.SUSPENDED":                "Suspended by the platform: its callers are refused.",
}

// predicateDocs are the where-input suffixes, longest first.
var predicateDocs = []struct{ suffix, doc string }{
	{"ContainsFold", "contains this text, ignoring case"},
	{"EqualFold", "equals this text, ignoring case"},
	{"HasPrefix", "starts with this text"},
	{"HasSuffix", "ends with this text"},
	{"Contains", "contains this text"},
	{"NotNil", "is set (pass true)"},
	{"IsNil", "is null (pass true)"},
	{"NotIn", "is none of these values"},
	{"NEQ", "differs from this value"},
	{"GTE", "is greater than or equal to this value"},
	{"LTE", "is less than or equal to this value"},
	{"GT", "is greater than this value"},
	{"LT", "is less than this value"},
	{"In", "is one of these values"},
}

// fieldDoc finds the description of field name of entity typ.
func fieldDoc(s *ast.Schema, typ, name string) string {
	if d, ok := fieldDocs[typ+"."+name]; ok {
		return d
	}
	if d, ok := commonFieldDocs[name]; ok {
		return d
	}
	if def := s.Types[typ]; def != nil {
		if f := def.Fields.ForName(name); f != nil && f.Description != "" {
			return f.Description
		}
	}
	return ""
}

// describe fills the descriptions of the generated schema.
func describe(_ *gen.Graph, s *ast.Schema) error {
	var names []string
	for name := range s.Types {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		def := s.Types[name]
		switch {
		case strings.HasSuffix(name, "WhereInput"):
			describeWhere(s, def, strings.TrimSuffix(name, "WhereInput"))
		case strings.HasSuffix(name, "OrderField") && def.Kind == ast.Enum:
			for _, v := range def.EnumValues {
				if v.Description == "" {
					v.Description = "Order by " + lowerCamel(v.Name) + "."
				}
			}
		case strings.HasPrefix(name, "Create") && strings.HasSuffix(name, "Input"),
			strings.HasPrefix(name, "Update") && strings.HasSuffix(name, "Input"):
			ent := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(name, "Create"), "Update"), "Input")
			describeMutationInput(s, def, ent)
		case def.Kind == ast.Enum:
			for _, v := range def.EnumValues {
				if v.Description == "" {
					v.Description = enumDocs[name+"."+v.Name]
				}
			}
		case name == "Query":
			for _, f := range def.Fields {
				if f.Description == "" {
					f.Description = fieldDocs["Query."+f.Name]
				}
				if f.Description == "" && f.Type.NamedType != "" && strings.HasSuffix(f.Type.NamedType, "Connection") {
					f.Description = strings.TrimSuffix(f.Type.NamedType, "Connection") + " records of the caller's tenant, as a Relay connection: paginate with first/after or last/before, filter with where, sort with orderBy."
				}
			}
		default:
			for _, f := range def.Fields {
				if f.Description == "" {
					f.Description = fieldDoc(s, name, f.Name)
				}
			}
		}
		if def.Description == "" {
			def.Description = typeDocs[name]
		}
	}
	return nil
}

// describeWhere describes a where input of entity ent.
func describeWhere(s *ast.Schema, def *ast.Definition, ent string) {
	if def.Description == "" {
		def.Description = "Filters " + ent + " records: every given condition must hold."
	}
	entDef := s.Types[ent]
	for _, f := range def.Fields {
		if f.Description != "" {
			continue
		}
		switch {
		case f.Name == "not":
			f.Description = "Records that do not match this filter."
		case f.Name == "and":
			f.Description = "Records that match all of these filters."
		case f.Name == "or":
			f.Description = "Records that match at least one of these filters."
		case strings.HasPrefix(f.Name, "has") && strings.HasSuffix(f.Name, "With"):
			f.Description = "Records with a " + lowerFirst(strings.TrimSuffix(strings.TrimPrefix(f.Name, "has"), "With")) + " matching at least one of these filters."
		case strings.HasPrefix(f.Name, "has") && entDef != nil && entDef.Fields.ForName(lowerFirst(strings.TrimPrefix(f.Name, "has"))) != nil:
			f.Description = "Records that have (true) or do not have (false) a " + lowerFirst(strings.TrimPrefix(f.Name, "has")) + "."
		default:
			base, what := f.Name, "equals this value"
			for _, p := range predicateDocs {
				if strings.HasSuffix(f.Name, p.suffix) && len(f.Name) > len(p.suffix) {
					base, what = strings.TrimSuffix(f.Name, p.suffix), p.doc
					break
				}
			}
			f.Description = "Records whose " + base + " " + what + "."
		}
	}
}

// describeMutationInput describes the generated create and update inputs.
func describeMutationInput(s *ast.Schema, def *ast.Definition, ent string) {
	if def.Description == "" {
		if strings.HasPrefix(def.Name, "Create") {
			def.Description = "The fields of a new " + ent + "."
		} else {
			def.Description = "Changes to a " + ent + ": only the given fields change."
		}
	}
	for _, f := range def.Fields {
		if f.Description != "" {
			continue
		}
		switch {
		case strings.HasPrefix(f.Name, "clear"):
			f.Description = "Set " + lowerFirst(strings.TrimPrefix(f.Name, "clear")) + " to null."
		case strings.HasPrefix(f.Name, "append"):
			f.Description = "Values appended to " + lowerFirst(strings.TrimPrefix(f.Name, "append")) + "."
		case strings.HasPrefix(f.Name, "add") && strings.HasSuffix(f.Name, "IDs"):
			f.Description = "IDs added to the " + lowerFirst(strings.TrimSuffix(strings.TrimPrefix(f.Name, "add"), "IDs")) + " edge."
		case strings.HasPrefix(f.Name, "remove") && strings.HasSuffix(f.Name, "IDs"):
			f.Description = "IDs removed from the " + lowerFirst(strings.TrimSuffix(strings.TrimPrefix(f.Name, "remove"), "IDs")) + " edge."
		default:
			f.Description = fieldDoc(s, ent, f.Name)
		}
	}
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	// Leading acronyms (MACAddress, IP) stay readable in lower case.
	i := 0
	for i < len(r) && unicode.IsUpper(r[i]) && (i+1 == len(r) || i == 0 || unicode.IsUpper(r[i+1])) {
		r[i] = unicode.ToLower(r[i])
		i++
	}
	return string(r)
}

// lowerCamel turns an enum name such as CREATED_AT into createdAt.
func lowerCamel(s string) string {
	parts := strings.Split(strings.ToLower(s), "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
