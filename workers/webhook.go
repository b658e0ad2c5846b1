package workers

import (
	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/webhook"
)

// WebhookHandler runs DeliverWebhook: one attempt of one partner webhook
// delivery (webhook.Service.Deliver). The endpoint's failures are recorded
// and rescheduled by the service; the job fails only when the database does.
type WebhookHandler struct {
	Webhooks *webhook.Service
}

// Deliver is the DeliverWebhook handler.
func (h *WebhookHandler) Deliver(job *work.Job) error {
	var a jobs.DeliverWebhookArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	return h.Webhooks.Deliver(ctx, a)
}
