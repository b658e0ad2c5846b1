package workers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/mikrotik"
	"github.com/ispgraph/ispgraph/internal/notify"
)

// BulkSmsHandler runs SendBulkSms through notify.SendBulk: BatchSize rows at
// a time, at most Rate messages per second, each row claimed before it is
// sent, so a retry sends only what was not sent.
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

	sent, failed, err := notify.SendBulk(ctx, h.Client, h.HTTP, a.TenantID, a.BatchID, h.BatchSize, h.Rate, log)
	if err != nil {
		return err
	}
	log.Info("bulk sms batch done", "sent", sent, "failed", failed)
	return nil
}

// HotspotOtpHandler runs SendHotspotOtp: the router service makes the
// sign-up code at send time and sends it through the tenant's SMS provider.
type HotspotOtpHandler struct {
	Client   *ent.Client
	Mikrotik *mikrotik.Service
	HTTP     *http.Client
	Logger   *slog.Logger
}

// Send is the SendHotspotOtp handler. A request that can no longer be sent
// (used, replaced, expired, or its delivery row gone) ends the job.
func (h *HotspotOtpHandler) Send(job *work.Job) error {
	var a jobs.SendHotspotOtpArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	send := func(ctx context.Context, to, text string) (string, error) {
		t, err := h.Client.Tenant.Get(ctx, a.TenantID)
		if err != nil {
			return "", err
		}
		p, err := notify.SMSProviderFromSettings(t.Settings)
		if err != nil {
			return "", err
		}
		return p.Send(ctx, h.HTTP, to, text)
	}
	err := h.Mikrotik.SendOTP(ctx, a, send)
	if err != nil && !mikrotik.Retryable(err) {
		h.Logger.Warn("sign-up code not sent; not retrying", "job", job.Name, "hotspot_user_id", a.HotspotUserID, "error", err)
		return nil
	}
	return err
}
