package database_test

import (
	"slices"
	"strings"
	"testing"

	"entgo.io/ent/dialect/sql/schema"

	"github.com/ispgraph/ispgraph/ent/migrate"
)

// The plan of docs/scaling.md: tenants is a Citus reference table and every
// other table is distributed by tenant_id. These are the known departures from
// what Citus requires, each explained there; the test fails when one is added
// (or when one is fixed and still listed, so the list only shrinks).
var (
	// referenceTables have no tenant_id and are replicated to every node.
	referenceTables = []string{"tenants"}
	// indexesNotLeadingWithTenant serve cross-tenant work that runs as a
	// multi-shard query under Citus.
	indexesNotLeadingWithTenant = []string{
		"outbox.outboxjob_status_available_at", // the relay polls every tenant's due jobs
		"outbox.outboxjob_status_enqueued_at",  // the sweeper finds every tenant's rows whose effect is overdue
		"users.user_setup_token_hash",          // an invitation is accepted before its tenant is known
	}
	// globalUniqueColumns are unique across tenants: Citus cannot enforce
	// uniqueness without the distribution column.
	globalUniqueColumns = []string{
		"api_keys.prefix",             // a partner key is looked up by its prefix before the tenant is known
		"auth_tokens.token_hash",      // a bearer token is looked up by its hash before the tenant is known
		"users.user_setup_token_hash", // an invitation token likewise
	}
)

func columnNames(cs []*schema.Column) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// TestSchemaStaysDistributable keeps the schema on the Citus path of
// docs/scaling.md: every table but the reference tables carries a NOT NULL
// tenant_id, every index leads with it and every unique index includes it
// (minus the listed exceptions), and every foreign key points at a reference
// table or at another tenant table (co-locatable by tenant_id).
func TestSchemaStaysDistributable(t *testing.T) {
	tenantTables := map[string]bool{}
	for _, tb := range migrate.Tables {
		var tenant *schema.Column
		for _, c := range tb.Columns {
			if c.Name == "tenant_id" {
				tenant = c
			}
		}
		switch {
		case slices.Contains(referenceTables, tb.Name):
			if tenant != nil {
				t.Errorf("%s is listed as a reference table but has tenant_id", tb.Name)
			}
		case tenant == nil:
			t.Errorf("table %s has no tenant_id: every tenant-owned table carries it (the tenant mixin); a shared table belongs in referenceTables and docs/scaling.md", tb.Name)
		case tenant.Nullable:
			t.Errorf("%s.tenant_id is nullable: Citus rejects rows with a NULL distribution column", tb.Name)
		default:
			tenantTables[tb.Name] = true
		}
	}
	if len(tenantTables) < 10 {
		t.Fatalf("only %d tenant tables found", len(tenantTables))
	}

	var notLeading, globalUnique []string
	for _, tb := range migrate.Tables {
		if !tenantTables[tb.Name] {
			continue
		}
		for _, ix := range tb.Indexes {
			cols := columnNames(ix.Columns)
			if cols[0] != "tenant_id" {
				notLeading = append(notLeading, tb.Name+"."+ix.Name)
			}
			if ix.Unique && !slices.Contains(cols, "tenant_id") {
				globalUnique = append(globalUnique, tb.Name+"."+ix.Name)
			}
		}
		for _, c := range tb.Columns {
			if c.Unique {
				globalUnique = append(globalUnique, tb.Name+"."+c.Name)
			}
		}
		for _, fk := range tb.ForeignKeys {
			ref := fk.RefTable.Name
			if !slices.Contains(referenceTables, ref) && !tenantTables[ref] {
				t.Errorf("foreign key %s of %s points at %s, neither a reference table nor a tenant table", fk.Symbol, tb.Name, ref)
			}
		}
	}
	slices.Sort(notLeading)
	slices.Sort(globalUnique)
	want := slices.Clone(indexesNotLeadingWithTenant)
	slices.Sort(want)
	if !slices.Equal(notLeading, want) {
		t.Errorf("indexes not leading with tenant_id: %s\nwant exactly: %s\n(an index for a tenant's query leads with tenant_id; a cross-tenant one is listed and explained in docs/scaling.md)",
			strings.Join(notLeading, ", "), strings.Join(want, ", "))
	}
	want = slices.Clone(globalUniqueColumns)
	slices.Sort(want)
	if !slices.Equal(globalUnique, want) {
		t.Errorf("uniqueness without tenant_id: %s\nwant exactly: %s\n(make it unique per tenant, or list and explain it in docs/scaling.md)",
			strings.Join(globalUnique, ", "), strings.Join(want, ", "))
	}
}
