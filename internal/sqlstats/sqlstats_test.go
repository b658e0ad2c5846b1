package sqlstats_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/sqlstats"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

func TestCountsAndSlowLog(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	observed := 0
	var drv dialect.Driver
	db, err := database.OpenPostgres(context.Background(), testenv.PostgresURL(t), database.Options{
		Wrap: func(d dialect.Driver) dialect.Driver {
			drv = sqlstats.Wrap(d, logger, func(time.Duration) { observed++ })
			return drv
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	ctx, st := sqlstats.NewContext(context.Background())
	st.SetOperation("PartnerBilling")
	var rows entsql.Rows
	if err := drv.Query(ctx, "SELECT 1", []any{}, &rows); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	tx, err := drv.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Exec(ctx, "SELECT pg_sleep(0.15)", []any{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A statement outside any request is observed but counted nowhere.
	if err := drv.Exec(context.Background(), "SELECT 1", []any{}, nil); err != nil {
		t.Fatal(err)
	}
	if st.Count() != 2 || observed != 3 {
		t.Fatalf("counted %d statements in the request and observed %d in all; want 2 and 3", st.Count(), observed)
	}
	if st.Duration() < 150*time.Millisecond {
		t.Fatalf("SQL time %v is less than the sleep", st.Duration())
	}
	out := logs.String()
	if strings.Count(out, "slow SQL statement") != 1 || !strings.Contains(out, "operation=PartnerBilling") || !strings.Contains(out, "pg_sleep") {
		t.Fatalf("slow statement log:\n%s", out)
	}
}
