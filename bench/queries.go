// Package bench owns ispgraph's benchmark: the requests it drives (the same
// GraphQL documents partners and dashboards send), a small load generator
// with latency statistics, the scraping of the server's own figures (SQL
// statements per request, peak memory) and the markdown report. The command
// bench/cmd/bench runs it against Postgres; bench/baseline is the hand-written
// server it is compared with; explain_test.go proves, on the same data set,
// that the SQL behind these requests uses indexes.
package bench

// PartnerBilling is the partner billing query exactly as partners script it
// (DESIGN.md): a page of active subscribers with package, three newest
// invoices and their payments.
const PartnerBilling = `query PartnerBilling($first: Int!, $after: Cursor) {
  networkUsers(first: $first, after: $after, where: {status: ACTIVE}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id username fullName status serviceType balance
      package { id name price bandwidthDownKbps }
      invoices(first: 3, orderBy: {field: ISSUED_AT, direction: DESC}) {
        edges { node { id number status total amountPaid dueDate
          payments { id amount method status paidAt } } }
      }
    } }
  }
}`

// SubscriberDetail is one subscriber's page: the subscriber, its package and
// its twelve newest invoices with their payments.
const SubscriberDetail = `query SubscriberDetail($id: ID!) {
  node(id: $id) {
    id
    ... on NetworkUser {
      username fullName email phone status serviceType billingType expiresAt balance
      package { id name price bandwidthDownKbps bandwidthUpKbps }
      invoices(first: 12, orderBy: {field: ISSUED_AT, direction: DESC}) {
        edges { node { id number status amount tax total amountPaid issuedAt dueDate paidAt
          payments { id number amount method status paidAt } } }
      }
    }
  }
}`

// Dashboard is the staff dashboard (issue 4, item 2). ispgraph caches it
// (internal/cache, dashboard class); the baseline computes it every time.
const Dashboard = `query Dashboard {
  dashboard {
    subscribers { total active suspended byServiceType { serviceType total } }
    invoices { total pending overdue paid totalAmount paidAmount }
    revenue { today thisMonth thisYear }
    monthlyRecurringRevenue
    onlineSessions
  }
}`

// InvoiceExport is a partner's export of the invoices changed since a time,
// paged by keyset cursor over (updated_at, id).
const InvoiceExport = `query InvoiceExport($first: Int!, $after: Cursor, $since: Time!) {
  invoices(first: $first, after: $after, where: {updatedAtGTE: $since},
           orderBy: {field: UPDATED_AT, direction: ASC}) {
    pageInfo { hasNextPage endCursor }
    edges { node { id number status amount tax total amountPaid
      periodStart periodEnd issuedAt dueDate paidAt updatedAt } }
  }
}`

// ActiveCursors pages through a tenant's active subscribers cheaply, so the
// benchmark can ask the partner billing query for random pages.
const ActiveCursors = `query ActiveCursors($first: Int!, $after: Cursor) {
  networkUsers(first: $first, after: $after, where: {status: ACTIVE}) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id } }
  }
}`

// Login is the staff login mutation.
const Login = `mutation Login($tenant: String, $email: String!, $password: String!) {
  login(input: {tenant: $tenant, email: $email, password: $password}) { token expiresAt }
}`

// Page sizes the benchmark uses.
const (
	// BillingPageSize is the partner billing query's page (issue 4: first: 50).
	BillingPageSize = 50
	// ExportPageSize is the invoice export's page (issue 4: 500 per page).
	ExportPageSize = 500
	// DetailInvoices is how many invoices the subscriber detail shows.
	DetailInvoices = 12
)
