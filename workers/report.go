package workers

import (
	"log/slog"
	"time"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
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
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	s, _ := jobs.SpecOf(job.Name)
	return report.Generate(ctx, h.Client, a.TenantID, a.ReportID, now, uint(job.Fails)+1 >= s.Attempts, log)
}
