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
// sends only what was not sent. A provider that is unavailable stops the
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
			n, ok, err := Claim(ctx, client, n)
			if err != nil {
				return sent, failed, err
			}
			if !ok {
				continue // another run took it
			}
			select {
			case <-ctx.Done():
				return sent, failed, ctx.Err()
			case <-tick.C:
			}
			ref, err := provider.Send(ctx, hc, n.Recipient, n.Body)
			if err != nil {
				var se *SMSError
				upd := client.Notification.UpdateOneID(n.ID).SetError(truncate(err.Error(), 500))
				if errors.As(err, &se) && se.Permanent {
					failed++
					if err := upd.SetStatus(notification.StatusFAILED).Exec(ctx); err != nil {
						return sent, failed, err
					}
					continue
				}
				_ = upd.Exec(ctx)
				log.Warn("sms provider unavailable: the rest of the batch waits for the retry", "sent", sent, "error", err)
				return sent, failed, err
			}
			sent++
			upd := client.Notification.UpdateOneID(n.ID).SetStatus(notification.StatusSENT).SetSentAt(time.Now()).ClearError()
			if ref != "" {
				upd.SetProviderRef(ref)
			}
			if err := upd.Exec(ctx); err != nil {
				return sent, failed, err
			}
		}
	}
	return sent, failed, nil
}

// Claim takes a QUEUED notification for sending: a compare-and-set on its
// attempts, so of two runs only one sends it. ok is false when another run
// took it.
func Claim(ctx context.Context, client *ent.Client, n *ent.Notification) (*ent.Notification, bool, error) {
	c, err := client.Notification.Update().
		Where(notification.ID(n.ID), notification.StatusEQ(notification.StatusQUEUED), notification.Attempts(n.Attempts)).
		AddAttempts(1).Save(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("claim delivery: %w", err)
	}
	return n, c == 1, nil
}

// truncate keeps an error message short enough for a row.
func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n]
}
