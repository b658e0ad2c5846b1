package dbmigrate_test

import (
	"strings"
	"testing"

	"github.com/ispgraph/ispgraph/internal/dbmigrate"
)

// TestLintExpandContract feeds Lint a first migration that creates tables
// (always fine) and a second one per case: each statement that would break
// the release still running is refused, the same statement in a contract file
// naming an earlier migration passes, and expand-only changes pass.
func TestLintExpandContract(t *testing.T) {
	const first = v1 + "_init.sql"
	init := `CREATE TABLE "users" ("id" bigint NOT NULL, "name" character varying NOT NULL, "tenant_id" bigint NOT NULL, PRIMARY KEY ("id"));
CREATE INDEX "user_tenant_id_name" ON "users" ("tenant_id", "name");
CREATE TYPE "mood" AS ENUM ('a', 'b');
`
	cases := []struct {
		name, stmt string
		want       string // substring of the problem; "" = allowed
	}{
		{"drop table", `DROP TABLE "users";`, "drops an object"},
		{"drop column", `ALTER TABLE "users" DROP COLUMN "name";`, "drops a column"},
		{"rename column", `ALTER TABLE "users" RENAME COLUMN "name" TO "full_name";`, "renames"},
		{"rename table", `ALTER TABLE "users" RENAME TO "staff";`, "renames"},
		{"change type", `ALTER TABLE "users" ALTER COLUMN "name" TYPE character varying(20);`, "type"},
		{"set not null", `ALTER TABLE "users" ALTER COLUMN "name" SET NOT NULL;`, "NOT NULL"},
		{"not null without default", `ALTER TABLE "users" ADD COLUMN "email" character varying NOT NULL;`, "without a default"},
		{"locking index", `CREATE INDEX "users_name" ON "users" ("name");`, "CONCURRENTLY"},
		{"add nullable column", `ALTER TABLE "users" ADD COLUMN "email" character varying NULL;`, ""},
		{"not null with default", `ALTER TABLE "users" ADD COLUMN "active" boolean NOT NULL DEFAULT true;`, ""},
		{"drop index", `DROP INDEX "user_tenant_id_name";`, ""},
		{"drop constraint and default", `ALTER TABLE "users" DROP CONSTRAINT "x", ALTER COLUMN "name" DROP DEFAULT;`, ""},
		{"concurrent index", "-- atlas:txmode none\n\nCREATE INDEX CONCURRENTLY \"users_name\" ON \"users\" (\"name\");", ""},
		{"new table with index", `CREATE TABLE "tags" ("id" bigint NOT NULL, PRIMARY KEY ("id"));
CREATE INDEX "tags_id" ON "tags" ("id");`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			found, err := dbmigrate.Lint(memDir(t, map[string]string{first: init, v2 + "_change.sql": c.stmt + "\n"}))
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if len(found) != 0 {
					t.Fatalf("refused an expand-safe change: %v", found)
				}
				return
			}
			if len(found) != 1 || !strings.Contains(found[0].Problem, c.want) || found[0].File != v2+"_change.sql" {
				t.Fatalf("findings %v; want one in %s about %q", found, v2+"_change.sql", c.want)
			}
			if c.name == "locking index" {
				return // not a contract matter: CONCURRENTLY or the locking-index mark
			}
			marked := dbmigrate.ContractDirective + " " + v1 + "\n" + c.stmt + "\n"
			found, err = dbmigrate.Lint(memDir(t, map[string]string{first: init, v2 + "_contract.sql": marked}))
			if err != nil || len(found) != 0 {
				t.Fatalf("contract step refused: %v %v", found, err)
			}
		})
	}

	t.Run("contract must name an earlier migration", func(t *testing.T) {
		body := dbmigrate.ContractDirective + " " + v3 + "\n" + `DROP TABLE "users";` + "\n"
		found, err := dbmigrate.Lint(memDir(t, map[string]string{first: init, v2 + "_contract.sql": body}))
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 1 || !strings.Contains(found[0].Problem, "not an earlier migration") {
			t.Fatalf("findings %v", found)
		}
	})
	t.Run("locking index with a reason", func(t *testing.T) {
		body := dbmigrate.LockingIndexDirective + " users holds one row per staff member\n" + `CREATE INDEX "users_name" ON "users" ("name");` + "\n"
		found, err := dbmigrate.Lint(memDir(t, map[string]string{first: init, v2 + "_index.sql": body}))
		if err != nil || len(found) != 0 {
			t.Fatalf("findings %v %v", found, err)
		}
	})
}
