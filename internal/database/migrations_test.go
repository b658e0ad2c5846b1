package database_test

import (
	"context"
	"testing"

	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/migrations"
)

// TestMigrationsMatchSchema fails when ent/schema changed without a new
// migration: Atlas replays migrations/ into an empty database and diffs it
// against ent/schema; any difference would have been written as a new file.
func TestMigrationsMatchSchema(t *testing.T) {
	ctx := context.Background()
	src, err := migrations.Dir()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := database.MemDirFrom(src)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := database.Diff(ctx, testenv.PostgresURL(t), mem, "check")
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		files, _ := mem.Files()
		last := files[len(files)-1]
		t.Fatalf("migrations/ does not match ent/schema; run `make migrate-diff NAME=...` and commit the result. Missing:\n%s", last.Bytes())
	}
}

func TestMigrateAppliesEverythingOnce(t *testing.T) {
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, testenv.PostgresURL(t), database.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	applied, err := db.Migrate(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := migrations.Dir()
	files, _ := src.Files()
	if len(applied) != len(files) {
		t.Fatalf("applied %d of %d migrations", len(applied), len(files))
	}
	again, err := db.Migrate(ctx, t.Logf)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run applied %v, %v", again, err)
	}
	rep, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pending) != 0 || len(rep.Applied) != len(files) {
		t.Fatalf("status after migrate: %s", rep)
	}
}
