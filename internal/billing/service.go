package billing

import (
	"context"
	"fmt"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/sequence"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/database"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Number prefixes and sequence names; the seeder (internal/seed) writes the
// same sequences rows, so numbering continues where seeded data stops.
const (
	// PaymentPrefix starts every payment number: PAY-2026-000001.
	PaymentPrefix = "PAY"
	// InvoiceSequence names the sequences row of a year's invoice numbers.
	InvoiceSequence = "invoice:%d"
	// PaymentSequence names the sequences row of a year's payment numbers.
	PaymentSequence = "payment:%d"
)

// now returns the service's clock reading.
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// inTx runs fn in the transaction of ctx when there is one (a GraphQL
// mutation's, opened by entgql.Transactioner), else in a new transaction it
// commits when fn succeeds. Either way every read, write and outbox job of fn
// commits or rolls back together.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, c *ent.Client) error) error {
	if tx := ent.TxFromContext(ctx); tx != nil {
		return fn(ctx, tx.Client())
	}
	// A transaction of our own that hit a deadlock or a serialization
	// failure is run again from the start, a bounded number of times; inside
	// a caller's transaction the caller retries (the GraphQL front door does).
	var err error
	for attempt := 1; attempt <= database.MaxTxAttempts; attempt++ {
		if err = s.runTx(ctx, fn); !database.Retryable(err) {
			return err
		}
	}
	return err
}

// runTx runs fn in one new transaction.
func (s *Service) runTx(ctx context.Context, fn func(ctx context.Context, c *ent.Client) error) error {
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("billing: begin: %w", err)
	}
	if err := fn(ent.NewTxContext(ctx, tx), tx.Client()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("billing: commit: %w", err)
	}
	return nil
}

// forUpdate locks the selected rows until the transaction ends. On Postgres
// it is SELECT ... FOR UPDATE; SQLite has no row locks and needs none: the
// embedded default opens every transaction with BEGIN IMMEDIATE, which
// serialises writers for the whole database.
func forUpdate(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
}

// tenantID returns the tenant the context acts for.
func tenantID(ctx context.Context) (int, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return 0, apperr.E(apperr.Unauthenticated, "log in first: send Authorization: Bearer <token>")
	}
	return v.TenantID, nil
}

// lockSequence returns the tenant's counter called name, creating it at zero
// when missing, locked until the transaction ends: whoever holds it is the
// only one numbering, and a rolled-back transaction gives its numbers back.
func lockSequence(ctx context.Context, c *ent.Client, name string) (*ent.Sequence, error) {
	id, err := c.Sequence.Create().SetName(name).SetValue(0).
		OnConflictColumns(sequence.FieldTenantID, sequence.FieldName).Ignore().
		ID(ctx)
	if err != nil {
		return nil, fmt.Errorf("billing: sequence %s: %w", name, err)
	}
	q := c.Sequence.Query().Where(sequence.ID(id))
	q.Modify(forUpdate)
	seq, err := q.Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("billing: lock sequence %s: %w", name, err)
	}
	return seq, nil
}

// nextNumber takes the next value of the tenant's counter called name.
func nextNumber(ctx context.Context, c *ent.Client, name string) (int64, error) {
	seq, err := lockSequence(ctx, c, name)
	if err != nil {
		return 0, err
	}
	seq, err = c.Sequence.UpdateOne(seq).AddValue(1).Save(ctx)
	if err != nil {
		return 0, fmt.Errorf("billing: advance sequence %s: %w", name, err)
	}
	return seq.Value, nil
}

// formatNumber renders a document number: INV-2026-000123.
func formatNumber(prefix string, year int, n int64) string {
	return fmt.Sprintf("%s-%d-%06d", prefix, year, n)
}

// notFound turns ent's not-found into a NOT_FOUND naming what was looked for.
func notFound(err error, what string) error {
	if ent.IsNotFound(err) {
		return apperr.Wrap(apperr.NotFound, err, "%s not found in your tenant (check the id)", what)
	}
	return err
}

// conflict is a refused state change.
func conflict(format string, args ...any) error {
	return apperr.E(apperr.Conflict, format, args...)
}
