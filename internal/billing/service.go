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
	"github.com/ispgraph/ispgraph/internal/transaction"
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

// inTx runs fn in the transaction of ctx or a new one (transaction.Run).
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, c *ent.Client) error) error {
	return transaction.Run(ctx, s.Client, fn)
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
