package resolvers

import (
	"github.com/ispgraph/ispgraph/graph/model"
	"github.com/ispgraph/ispgraph/internal/billing"
)

func generatePayload(res billing.GenerateResult) *model.GenerateInvoicesPayload {
	return &model.GenerateInvoicesPayload{
		Period:      res.Period.String(),
		PeriodStart: res.Period.Start.UTC(),
		PeriodEnd:   res.Period.End.UTC(),
		Created:     res.Created,
		Existing:    res.Existing,
		Skipped:     res.Skipped,
	}
}
