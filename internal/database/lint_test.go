package database_test

import (
	"testing"

	"github.com/ispgraph/ispgraph/internal/dbmigrate"
	"github.com/ispgraph/ispgraph/migrations"
)

// TestMigrationsExpandContract is the CI lint of docs/migrations.md: no file
// in migrations/ drops, renames or narrows what the previous release uses,
// unless it is a marked contract step.
func TestMigrationsExpandContract(t *testing.T) {
	dir, err := migrations.Dir()
	if err != nil {
		t.Fatal(err)
	}
	found, err := dbmigrate.Lint(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s", f)
	}
	if len(found) > 0 {
		t.Log("see docs/migrations.md: split the change into an expand migration and a later contract migration marked \"" + dbmigrate.ContractDirective + " <expand version>\"")
	}
}
