package workers

import (
	"context"
	"log/slog"
	"time"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/billingreport"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/report"
)

// ReportHandler runs GenerateBillingReport: it computes the rows of one
// BillingReport and stores them with status DONE. A report already DONE is
// left alone, and a rerun after a failure replaces the rows, so running it
// twice has the effect of once.
type ReportHandler struct {
	Client *ent.Client
	Logger *slog.Logger
	Now    func() time.Time
}

// Generate is the GenerateBillingReport handler.
func (h *ReportHandler) Generate(job *work.Job) error {
	var a jobs.GenerateBillingReportArgs
	if err := decode(job, &a, func() int { return a.TenantID }); err != nil {
		return err
	}
	ctx, cancel := tenantContext(job.Name, a.TenantID)
	defer cancel()
	log := h.Logger.With("job", job.Name, "job_id", job.ID, "tenant_id", a.TenantID, "report_id", a.ReportID)
	r, err := h.Client.BillingReport.Get(ctx, a.ReportID)
	if ent.IsNotFound(err) {
		log.Warn("report not found")
		return nil
	}
	if err != nil {
		return err
	}
	if r.Status == billingreport.StatusDONE {
		log.Info("report already done")
		return nil
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	if err := h.Client.BillingReport.UpdateOneID(r.ID).SetStatus(billingreport.StatusRUNNING).SetStartedAt(now).ClearError().Exec(ctx); err != nil {
		return err
	}
	rows, err := report.Compute(ctx, h.Client, a.TenantID, r.Type, r.Parameters, now)
	if err != nil {
		upd := h.Client.BillingReport.UpdateOneID(r.ID).SetError(truncate(err.Error(), 500))
		if s, _ := jobs.SpecOf(job.Name); uint(job.Fails)+1 >= s.Attempts { // last attempt
			upd.SetStatus(billingreport.StatusFAILED).SetFinishedAt(time.Now())
		}
		_ = upd.Exec(context.WithoutCancel(ctx))
		return err
	}
	log.Info("report done", "type", r.Type, "rows", len(rows))
	return h.Client.BillingReport.UpdateOneID(r.ID).
		SetRows(rows).SetStatus(billingreport.StatusDONE).SetFinishedAt(time.Now()).Exec(ctx)
}
