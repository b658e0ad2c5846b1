package server

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/ispgraph/ispgraph/internal/database"
)

// lagTolerant are the root query fields whose answers may trail the primary
// by up to the replica's maximum lag (ISPGRAPH_REPLICA_MAX_LAG): lists,
// dashboards and reports. A query made only of these (and __typename) may be
// served by DATABASE_REPLICA_URL; everything else — mutations, node and
// nodes (a page about one thing, often opened right after changing it),
// viewer, users, roles and API keys (who may do what) — reads the primary.
// Even a lag-tolerant query reads the primary when its caller wrote within
// the lag, and cached values are always filled from the primary
// (internal/database, internal/cache).
var lagTolerant = map[string]bool{
	"__typename":        true,
	"auditLogs":         true,
	"billingReports":    true,
	"customerDashboard": true,
	"dashboard":         true,
	"hotspotUsers":      true,
	"invoices":          true,
	"networkSessions":   true,
	"networkUsers":      true,
	"notifications":     true,
	"packages":          true,
	"paymentGateways":   true,
	"payments":          true,
	"routers":           true,
}

// routeReads marks an operation's context lag-tolerant when it is a query
// whose every root field is in lagTolerant.
func routeReads(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil &&
		oc.Operation.Operation == ast.Query && onlyLagTolerant(oc) {
		ctx = database.LagTolerant(ctx)
	}
	return next(ctx)
}

// onlyLagTolerant reports whether every root field the operation selects
// (after fragments, @skip and @include) is lag-tolerant.
func onlyLagTolerant(oc *graphql.OperationContext) bool {
	fields := graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Query"})
	if len(fields) == 0 {
		return false
	}
	for _, f := range fields {
		if !lagTolerant[f.Name] {
			return false
		}
	}
	return true
}
