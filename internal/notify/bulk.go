package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/notification"
)

// SendBulk sends the QUEUED notification rows of one bulk SMS batch of the
// tenant in ctx through the tenant's HTTP SMS provider, batchSize rows at a
// time and at most rate messages per second. Each row is claimed before it is
// sent and marked SENT (or FAILED on a permanent refusal) after, so a rerun
// sends only what was not sent, and two runs never send one row twice. A provider that is unavailable stops the
// batch with an error (the rest waits for the retry).
func SendBulk(ctx context.Context, client *ent.Client, hc *http.Client, tenantID int, batchID string, batchSize int, rate float64, log *slog.Logger) (sent, failed int, err error) {
	ten, err := client.Tenant.Get(ctx, tenantID)
	if err != nil {
		return sent, failed, fmt.Errorf("load tenant: %w", err)
	}
	provider, err := SMSProviderFromSettings(ten.Settings)
	if err != nil {
		return sent, failed, err
	}
	gap := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(gap)
	defer tick.Stop()
	lastID := 0
	for {
		rows, err := client.Notification.Query().
			Where(notification.BatchID(batchID), notification.StatusEQ(notification.StatusQUEUED), notification.IDGT(lastID)).
			Order(ent.Asc(notification.FieldID)).Limit(batchSize).All(ctx)
		if err != nil {
			return sent, failed, fmt.Errorf("load batch: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		for _, n := range rows {
			lastID = n.ID
			select {
			case <-ctx.Done():
				return sent, failed, ctx.Err()
			case <-tick.C:
			}
			c, err := Claim(ctx, client, n.ID)
			if err != nil {
				return sent, failed, err
			}
			if c == nil {
				continue // another run sent it or is sending it
			}
			ref, err := provider.Send(ctx, hc, c.N.Recipient, c.N.Body)
			if err != nil {
				var se *SMSError
				permanent := errors.As(err, &se) && se.Permanent
				if ferr := c.Failed(ctx, err, permanent); ferr != nil {
					return sent, failed, ferr
				}
				if permanent {
					failed++
					continue
				}
				log.Warn("sms provider unavailable: the rest of the batch waits for the retry", "sent", sent, "error", err)
				return sent, failed, err
			}
			sent++
			if err := c.Sent(ctx, ref, time.Now()); err != nil {
				return sent, failed, err
			}
		}
	}
	return sent, failed, nil
}

// Claimed is a notification taken for sending. Its row stays locked, in a
// transaction of its own, until Sent, Failed or Release: a second run (a
// duplicate job, a retried one, an outbox row reopened) that reaches the same
// row waits for this one and then finds it no longer QUEUED. A compare-and-set
// on its own is not enough: a run that read the row after this claim but
// before its SENT mark would claim it again. If the process dies mid-send the
// transaction rolls back, the row is QUEUED again and a retry sends it.
// Every write to the row while it is claimed goes through the Claimed (a
// write through another connection would wait for this lock forever).
type Claimed struct {
	tx *ent.Tx
	N  *ent.Notification // the row as claimed, attempts counted
}

// Claim takes the QUEUED notification id for sending and counts the attempt.
// It returns nil, nil when the row is not QUEUED (sent or given up by another
// run). The caller must end the claim with Sent, Failed or Release.
func Claim(ctx context.Context, client *ent.Client, id int) (*Claimed, error) {
	tx, err := client.Tx(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	n, err := tx.Notification.Update().
		Where(notification.ID(id), notification.StatusEQ(notification.StatusQUEUED)).
		AddAttempts(1).Save(ctx)
	if err == nil && n == 1 {
		var row *ent.Notification
		if row, err = tx.Notification.Get(ctx, id); err == nil {
			return &Claimed{tx: tx, N: row}, nil
		}
	}
	_ = tx.Rollback()
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	return nil, nil
}

// Sent marks the claimed row SENT with the provider's reference and ends the
// claim.
func (c *Claimed) Sent(ctx context.Context, ref string, at time.Time) error {
	upd := c.tx.Notification.UpdateOneID(c.N.ID).SetStatus(notification.StatusSENT).SetSentAt(at).ClearError()
	if ref != "" {
		upd.SetProviderRef(ref)
	}
	if err := upd.Exec(ctx); err != nil {
		_ = c.tx.Rollback()
		return fmt.Errorf("record delivery sent: %w", err)
	}
	return c.tx.Commit()
}

// Failed records why the send failed and ends the claim: a permanent failure
// marks the row FAILED; otherwise it stays QUEUED for the retry.
func (c *Claimed) Failed(ctx context.Context, cause error, permanent bool) error {
	upd := c.tx.Notification.UpdateOneID(c.N.ID).SetError(truncate(cause.Error(), 500))
	if permanent {
		upd.SetStatus(notification.StatusFAILED)
	}
	if err := upd.Exec(ctx); err != nil {
		_ = c.tx.Rollback()
		return fmt.Errorf("record delivery failure: %w", err)
	}
	return c.tx.Commit()
}

// Client is the claim's transaction, for writes that belong with the send
// (they commit with Sent or Failed and roll back with Release). A write to
// the database while a claim is held must go through it: through another
// connection it could wait on this claim (the row lock, or SQLite's single
// writer in the embedded mode).
func (c *Claimed) Client() *ent.Client { return c.tx.Client() }

// Release ends the claim without recording anything (the row is QUEUED again
// with its attempt uncounted). It is a no-op after Sent or Failed.
func (c *Claimed) Release() { _ = c.tx.Rollback() }

// truncate keeps an error message short enough for a row.
func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n]
}
