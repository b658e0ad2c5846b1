package workers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/notification"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/notify"
)

// BulkSmsHandler runs SendBulkSms: it sends the QUEUED notification rows of
// one batch through the tenant's HTTP SMS provider, BatchSize rows at a time
// and at most Rate messages per second. Each row is claimed before it is sent
// and marked SENT (or FAILED on a permanent refusal) after, so a retry sends
// only what was not sent.
type BulkSmsHandler struct {
	Client    *ent.Client
	HTTP      *http.Client
	BatchSize int
	Rate      float64
	Logger    *slog.Logger
}

// Send is the SendBulkSms handler.
func (h *BulkSmsHandler) Send(job *work.Job) error {
	var a jobs.SendBulkSmsArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	log := h.Logger.With("job", job.Name, "job_id", job.ID, "tenant_id", a.TenantID, "batch_id", a.BatchID)

	ten, err := h.Client.Tenant.Get(ctx, a.TenantID)
	if err != nil {
		return fmt.Errorf("load tenant: %w", err)
	}
	provider, err := notify.SMSProviderFromSettings(ten.Settings)
	if err != nil {
		return err
	}
	gap := time.Duration(float64(time.Second) / h.Rate)
	tick := time.NewTicker(gap)
	defer tick.Stop()
	sent, failed := 0, 0
	lastID := 0
	for {
		rows, err := h.Client.Notification.Query().
			Where(notification.BatchID(a.BatchID), notification.StatusEQ(notification.StatusQUEUED), notification.IDGT(lastID)).
			Order(ent.Asc(notification.FieldID)).Limit(h.BatchSize).All(ctx)
		if err != nil {
			return fmt.Errorf("load batch: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		for _, n := range rows {
			lastID = n.ID
			n, ok, err := claimRow(ctx, h.Client, n)
			if err != nil {
				return err
			}
			if !ok {
				continue // another run took it
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
			ref, err := provider.Send(ctx, h.HTTP, n.Recipient, n.Body)
			if err != nil {
				var se *notify.SMSError
				upd := h.Client.Notification.UpdateOneID(n.ID).SetError(truncate(err.Error(), 500))
				if errors.As(err, &se) && se.Permanent {
					failed++
					if err := upd.SetStatus(notification.StatusFAILED).Exec(ctx); err != nil {
						return err
					}
					continue
				}
				_ = upd.Exec(ctx)
				log.Warn("sms provider unavailable: the rest of the batch waits for the retry", "sent", sent, "error", err)
				return err
			}
			sent++
			upd := h.Client.Notification.UpdateOneID(n.ID).SetStatus(notification.StatusSENT).SetSentAt(time.Now()).ClearError()
			if ref != "" {
				upd.SetProviderRef(ref)
			}
			if err := upd.Exec(ctx); err != nil {
				return err
			}
		}
	}
	log.Info("bulk sms batch done", "sent", sent, "failed", failed)
	return nil
}
