package outbox_test

import (
	"context"
	"testing"

	"github.com/ispgraph/ispgraph/ent/outboxjob"
	_ "github.com/ispgraph/ispgraph/ent/runtime"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/testenv"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

func TestEnqueueInTransaction(t *testing.T) {
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, testenv.PostgresURL(t), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx, t.Logf); err != nil {
		t.Fatal(err)
	}
	ten := db.Client.Tenant.Create().SetName("A").SetSlug("a").SetDomain("a.example").SaveX(tenancy.Bypass(ctx))
	tctx := viewer.ForTenant(ctx, ten.ID)

	// Rolled back: nothing is written.
	tx, _ := db.Client.Tx(tctx)
	if err := outbox.Enqueue(tctx, tx.Client(), jobs.ProcessPaymentArgs{TenantID: ten.ID, PaymentID: 7}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	if n := db.Client.OutboxJob.Query().CountX(tctx); n != 0 {
		t.Fatalf("rolled-back enqueue left %d rows", n)
	}

	// Committed twice with one dedup key: one row.
	for i := 0; i < 2; i++ {
		tx, _ := db.Client.Tx(tctx)
		if err := outbox.Enqueue(tctx, tx.Client(), jobs.ProcessPaymentArgs{TenantID: ten.ID, PaymentID: 7}, outbox.DedupKey("pay:7")); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	rows := db.Client.OutboxJob.Query().Where(outboxjob.JobName(jobs.ProcessPayment)).AllX(tctx)
	if len(rows) != 1 || rows[0].Status != outboxjob.StatusPENDING {
		t.Fatalf("rows: %+v", rows)
	}
	var back jobs.ProcessPaymentArgs
	if err := jobs.FromMap(rows[0].Args, &back); err != nil || back.PaymentID != 7 || back.TenantID != ten.ID {
		t.Fatalf("decoded %+v, %v", back, err)
	}
}
