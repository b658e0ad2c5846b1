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
// otherwise (and runs it again, at most MaxTxAttempts times in all,
// when the transaction fails on a deadlock or serialization failure). fn receives a context carrying the transaction (so nested calls
// join it) and the transactional client; every read, write and outbox job of
// fn commits or rolls back together.
func Run(ctx context.Context, client *ent.Client, fn func(ctx context.Context, c *ent.Client) error) error {
	if tx := ent.TxFromContext(ctx); tx != nil {
		return fn(ctx, tx.Client())
	}
	// A transaction of our own that hit a deadlock or a serialization
	// failure is run again from the start, a bounded number of times; inside
	// a caller's transaction the caller retries (the GraphQL front door does
	// for mutations).
	var err error
	for attempt := 1; attempt <= MaxTxAttempts; attempt++ {
		if err = runOnce(ctx, client, fn); !Retryable(err) {
			return err
		}
	}
	return err
}

// runOnce runs fn in one new transaction.
func runOnce(ctx context.Context, client *ent.Client, fn func(ctx context.Context, c *ent.Client) error) error {
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
