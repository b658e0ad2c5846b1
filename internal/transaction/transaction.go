// Package transaction owns the one rule for running a unit of work in a
// database transaction: join the transaction already in the context (a
// GraphQL mutation's, opened by entgql.Transactioner, or an outer service
// call's), or open one and commit it when the work succeeds.
package transaction

import (
	"context"
	"fmt"

	"github.com/ispgraph/ispgraph/ent"
)

// Run runs fn in the transaction of ctx when there is one, else in a new
// transaction of client that commits when fn returns nil and rolls back
// otherwise. fn receives a context carrying the transaction (so nested calls
// join it) and the transactional client; every read, write and outbox job of
// fn commits or rolls back together.
func Run(ctx context.Context, client *ent.Client, fn func(ctx context.Context, c *ent.Client) error) error {
	if tx := ent.TxFromContext(ctx); tx != nil {
		return fn(ctx, tx.Client())
	}
	tx, err := client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	ctx = ent.NewContext(ent.NewTxContext(ctx, tx), tx.Client())
	if err := fn(ctx, tx.Client()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
